//! The admission request as it arrives, with its objects left as raw JSON until the policy
//! knows it concerns them: most requests a cluster sends this policy are other Pods and
//! StatefulSets, and for those building the objects as `Value`s is most of the work.

use std::collections::HashMap;

use kubewarden_policy_sdk::request::{
    GroupVersionKind, GroupVersionResource, KubernetesAdmissionRequest as Parsed, UserInfo,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The SDK's `KubernetesAdmissionRequest`, field for field and attribute for attribute, so that
/// the same payloads parse or fail, with the same error texts (the type name included), except
/// that `object` and `oldObject` stay raw. Kept raw, an object is only checked to be well-formed
/// JSON: in an object the policy does not review, lone surrogates and numbers out of range (which
/// hosts, parsing the request themselves, never pass on) and nesting past serde_json's limit (which
/// kwctl does pass on) no longer get the request rejected as malformed; it is accepted untouched,
/// as any other workload.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KubernetesAdmissionRequest<'a> {
    uid: String,
    pub kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(alias = "subResource")]
    pub sub_resource: String,
    #[serde(alias = "requestKind")]
    request_kind: GroupVersionKind,
    #[serde(alias = "requestResource")]
    request_resource: GroupVersionKind,
    #[serde(alias = "requestSubResource")]
    request_sub_resource: String,
    name: String,
    namespace: String,
    pub operation: String,
    #[serde(alias = "userInfo")]
    user_info: UserInfo,
    #[serde(borrow)]
    object: Option<&'a RawValue>,
    #[serde(borrow, alias = "oldObject")]
    old_object: Option<&'a RawValue>,
    #[serde(alias = "dryRun", default)]
    dry_run: bool,
    options: HashMap<String, Value>,
}

/// What of an object decides whether a workload is a DittoFS one: its labels and owners.
#[derive(Deserialize)]
struct Glance {
    #[serde(default)]
    metadata: Option<MetadataGlance>,
}

#[derive(Deserialize)]
struct MetadataGlance {
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Option<Value>,
}

impl KubernetesAdmissionRequest<'_> {
    /// The object's labels and owner references, as an object holding only those (what
    /// `workload::owning_dittoserver` reads); `None` when they cannot be told apart this way
    /// (a duplicate key, a metadata that is not an object, …): then the caller parses it all.
    pub fn owner_fields(&self) -> Option<Value> {
        let glance: Glance = match self.object {
            None => return Some(Value::Null),
            Some(raw) => serde_json::from_slice(raw.get().as_bytes()).ok()?,
        };
        let mut metadata = Map::new();
        if let Some(found) = glance.metadata {
            if let Some(labels) = found.labels {
                metadata.insert("labels".to_owned(), labels);
            }
            if let Some(owners) = found.owner_references {
                metadata.insert("ownerReferences".to_owned(), owners);
            }
        }
        let mut object = Map::new();
        object.insert("metadata".to_owned(), Value::Object(metadata));
        Some(Value::Object(object))
    }

    /// The SDK's request, its objects parsed. Each is parsed inside two arrays, standing for the
    /// payload and the request it sits in, so that serde_json's nesting limit falls where it did
    /// when the whole payload was parsed at once.
    pub fn parse_objects(self) -> Result<Parsed, serde_json::Error> {
        let parse = |raw: Option<&RawValue>| match raw {
            None => Ok(Value::Null),
            Some(raw) => {
                let nested = format!("[[{}]]", raw.get());
                let mut outer: Value = serde_json::from_slice(nested.as_bytes())?;
                Ok(outer
                    .get_mut(0)
                    .and_then(|inner| inner.get_mut(0))
                    .map(Value::take)
                    .unwrap_or(Value::Null))
            }
        };
        Ok(Parsed {
            object: parse(self.object)?,
            old_object: parse(self.old_object)?,
            uid: self.uid,
            kind: self.kind,
            resource: self.resource,
            sub_resource: self.sub_resource,
            request_kind: self.request_kind,
            request_resource: self.request_resource,
            request_sub_resource: self.request_sub_resource,
            name: self.name,
            namespace: self.namespace,
            operation: self.operation,
            user_info: self.user_info,
            dry_run: self.dry_run,
            options: self.options,
        })
    }
}
