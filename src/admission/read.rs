//! Reading a `validate` payload in one pass that stops as soon as the request cannot concern the
//! policy. Most requests a cluster sends this policy are other Pods and StatefulSets. Hosts write
//! a request's `kind` before its `object` (the field order of their request type) and an object's
//! `metadata` before its `spec` (object keys sorted), so those are told apart from their first few
//! hundred bytes, and a request that does concern the policy is parsed once. (serde_json skips JSON
//! at about the cost of building it, so a separate first look would cost a reviewed request a
//! second pass.)
//!
//! serde's derive passes nothing from one field to the next, so the `kind` read leaves its review
//! in a thread-local for the `object` after it. Another key order only costs the early stop.
//! What the early stop changes, all of it about payloads hosts never send (they serialize parsed
//! values): a repeated `metadata` is decided by the first; what follows the stop (a repeated or
//! mistyped field, trailing text) is not read, so not refused; an object key serde_json reserves
//! (`$serde_json::private::RawValue`) is read as an ordinary key. The whole payload must be UTF-8,
//! though: it is checked before the parse, past the stop too.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use kubewarden_policy_sdk::request::{
    GroupVersionKind, GroupVersionResource, KubernetesAdmissionRequest, UserInfo,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Target, kind_target};
use crate::workload;

/// A `validate` payload read as far as it had to be.
pub enum Read<'a> {
    /// The request cannot concern the policy: the rest was not read.
    Skipped,
    /// The request, whole, and the policy settings, raw.
    Request(Box<KubernetesAdmissionRequest>, Option<&'a RawValue>),
}

/// Reads a payload; `Err` is the parser's, for a payload that is not a validation request.
pub fn read(payload: &[u8]) -> Result<Read<'_>, serde_json::Error> {
    SEEN_KIND.set(None);
    SKIPPED.set(false);
    // Checked to be UTF-8 once, not string by string as `from_slice` does (which cost an
    // injection 20,000 instructions, more than checking the whole payload costs the fast path).
    let text = std::str::from_utf8(payload).map_err(|error| {
        <serde_json::Error as de::Error>::custom(format_args!(
            "the payload is not UTF-8 text (from byte {})",
            error.valid_up_to()
        ))
    })?;
    match serde_json::from_str::<Payload>(text) {
        Ok(payload) => Ok(Read::Request(
            Box::new(payload.request.into_sdk()),
            payload.settings,
        )),
        // The early stop is an error on purpose: serde has no other way out of a parse.
        Err(_) if SKIPPED.get() => Ok(Read::Skipped),
        Err(error) => Err(error),
    }
}

thread_local! {
    /// The review of the request's kind, once read (`Some(None)`: a kind the policy does not review).
    static SEEN_KIND: Cell<Option<Option<Target>>> = const { Cell::new(None) };
    /// Set when the parse stopped because the request cannot concern the policy.
    static SKIPPED: Cell<bool> = const { Cell::new(false) };
}

/// Stops the parse: the request cannot concern the policy.
fn skip<E: de::Error>() -> E {
    SKIPPED.set(true);
    E::custom("not a request this policy reviews")
}

#[derive(Deserialize)]
struct Payload<'a> {
    request: Request,
    #[serde(default, borrow)]
    settings: Option<&'a RawValue>,
}

/// The SDK's `KubernetesAdmissionRequest`, field for field and attribute for attribute, so that
/// what is read parses or fails with the same error texts (but for the exceptions above): its
/// `kind` records its review, its `object` stops at a workload's `metadata` when that is not
/// DittoFS's.
#[derive(Deserialize, Default)]
#[serde(default, rename = "KubernetesAdmissionRequest")]
struct Request {
    uid: String,
    kind: SeenKind,
    resource: GroupVersionResource,
    #[serde(alias = "subResource")]
    sub_resource: String,
    #[serde(alias = "requestKind")]
    request_kind: GroupVersionKind,
    #[serde(alias = "requestResource")]
    request_resource: GroupVersionKind,
    #[serde(alias = "requestSubResource")]
    request_sub_resource: String,
    name: String,
    namespace: String,
    operation: String,
    #[serde(alias = "userInfo")]
    user_info: UserInfo,
    object: RequestObject,
    #[serde(alias = "oldObject")]
    old_object: Value,
    #[serde(alias = "dryRun", default)]
    dry_run: bool,
    options: HashMap<String, Value>,
}

impl Request {
    fn into_sdk(self) -> KubernetesAdmissionRequest {
        KubernetesAdmissionRequest {
            uid: self.uid,
            kind: self.kind.0,
            resource: self.resource,
            sub_resource: self.sub_resource,
            request_kind: self.request_kind,
            request_resource: self.request_resource,
            request_sub_resource: self.request_sub_resource,
            name: self.name,
            namespace: self.namespace,
            operation: self.operation,
            user_info: self.user_info,
            object: self.object.0,
            old_object: self.old_object,
            dry_run: self.dry_run,
            options: self.options,
        }
    }
}

/// The request's kind; a kind the policy does not review stops the parse.
#[derive(Default)]
struct SeenKind(GroupVersionKind);

impl<'de> Deserialize<'de> for SeenKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = GroupVersionKind::deserialize(deserializer)?;
        let target = kind_target(&kind);
        if target.is_none() {
            return Err(skip());
        }
        SEEN_KIND.set(Some(target));
        Ok(Self(kind))
    }
}

/// The request's object, built as a `Value`; a Pod or StatefulSet whose metadata is not a DittoFS
/// workload's (or that has none) stops the parse there.
#[derive(Default)]
struct RequestObject(Value);

impl<'de> Deserialize<'de> for RequestObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectVisitor).map(Self)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let workload = match SEEN_KIND.get() {
            Some(Some(Target::Workload(kind))) => Some(kind),
            _ => None,
        };
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if let Some(kind) = workload
                && key == "metadata"
                && workload::owning_dittoserver_by_metadata(kind, &value).is_none()
            {
                return Err(skip());
            }
            object.insert(key, value);
        }
        if workload.is_some() && !object.contains_key("metadata") {
            return Err(skip());
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(value.into())
    }
}
