//! Loading a policy module and evaluating requests the way kwctl and policy-server do.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wapc::WapcHost;

use crate::engine::{CompiledModule, InstructionCounter};
use crate::host::Host;
use crate::metadata::{self, EmbeddedMetadata};

/// A compiled module, ready to be instantiated once per request (as policy-server does).
pub struct Policy {
    module: CompiledModule,
    pub metadata: Option<EmbeddedMetadata>,
    counter: Option<InstructionCounter>,
}

impl Policy {
    pub fn load(module: &[u8]) -> Result<Self> {
        Self::load_with(module, None)
    }

    /// Loads the module on an engine that counts the instructions of every guest call (wasmtime
    /// fuel; see `engine`): slower code, so only for `run --count-instructions`, never for bench.
    pub fn load_counting(module: &[u8]) -> Result<Self> {
        Self::load_with(module, Some(InstructionCounter::default()))
    }

    fn load_with(module: &[u8], counter: Option<InstructionCounter>) -> Result<Self> {
        let metadata = metadata::read_embedded(module)
            .context("cannot read the module's embedded metadata")?
            .map(serde_json::from_value)
            .transpose()
            .context("the module's embedded metadata is malformed")?;
        let module = CompiledModule::new(&engine(counter.is_some())?, module, counter.clone())
            .map_err(|e| anyhow!("cannot compile the module: {e}"))?;
        Ok(Self {
            module,
            metadata,
            counter,
        })
    }

    /// The instructions the latest guest call (on any instance of this policy) executed, when
    /// loaded with `load_counting`.
    pub fn last_call_instructions(&self) -> Option<u64> {
        self.counter.as_ref().map(InstructionCounter::last_call)
    }

    /// The latest guest call's host calls with the instructions spent before each, when
    /// loaded with `load_counting` (empty otherwise).
    pub fn last_call_host_calls(&self) -> Vec<(String, u64)> {
        self.counter
            .as_ref()
            .map(InstructionCounter::last_call_host_calls)
            .unwrap_or_default()
    }

    /// A fresh instance whose host calls go to `host`.
    pub fn instantiate(&self, host: Arc<Host>) -> Result<WapcHost> {
        WapcHost::new(
            self.module.provider()?,
            Some(Box::new(
                move |_id, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                    host.call(binding, namespace, operation, payload)
                },
            )),
        )
        .map_err(|e| anyhow!("cannot initialise the module: {e}"))
    }

    /// Mutations are refused only when embedded metadata says `mutating: false`.
    pub fn allows_mutation(&self) -> bool {
        self.metadata.as_ref().is_none_or(|m| m.mutating)
    }
}

/// wasmtime's default engine (`Config::default()`: the proposals Rust policies use, not GC,
/// threads or the component model, which the runner's wasmtime leaves out), plus wasmtime's compilation
/// cache in its default directory (`~/.cache/wasmtime`, as kwctl's): a module is compiled once,
/// not on every run (about 0.4 s of CPU for the policy). Entries are keyed by the module's hash
/// and the compiler's version and settings; without a usable cache directory every run compiles.
/// `consume_fuel` instruments the code to count instructions (its own cache entries).
fn engine(consume_fuel: bool) -> Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::default();
    config.consume_fuel(consume_fuel);
    if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        config.cache(Some(cache));
    }
    wasmtime::Engine::new(&config).map_err(|e| anyhow!("cannot set up wasmtime: {e}"))
}

#[derive(Deserialize)]
struct SettingsVerdict {
    valid: bool,
    message: Option<String>,
}

/// Runs the guest's `validate_settings`; `Err` carries the message to show, worded like
/// policy-evaluator's.
pub fn validate_settings(instance: &WapcHost, settings: &Value) -> Result<(), String> {
    let answer = instance
        .call(
            "validate_settings",
            &serde_json::to_vec(settings).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("Error invoking settings validation callback: {e:?}"))?;
    let verdict: SettingsVerdict = serde_json::from_slice(&answer)
        .map_err(|e| format!("error: InvalidResponseWithError({e:?})"))?;
    if verdict.valid {
        Ok(())
    } else {
        Err(verdict.message.unwrap_or_default())
    }
}

/// The guest's answer to `validate` (SDK ValidationResponse, snake_case).
#[derive(Deserialize)]
struct GuestResponse {
    accepted: bool,
    message: Option<String>,
    code: Option<u16>,
    mutated_object: Option<Value>,
    audit_annotations: Option<HashMap<String, String>>,
    warnings: Option<Vec<String>>,
}

/// Kubernetes AdmissionResponse, serialised exactly like kwctl prints it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    pub audit_annotations: Option<HashMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

impl AdmissionResponse {
    fn reject(uid: &str, message: String, code: Option<u16>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            patch_type: None,
            patch: None,
            status: Some(Status {
                message: Some(message),
                code,
            }),
            audit_annotations: None,
            warnings: None,
        }
    }
}

/// policy-evaluator's `AdmissionRequest`: what kwctl requires of a request, and what it hands
/// the policy. Unknown fields are dropped and null optional fields are left out, as kwctl does.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_kind: Option<GroupVersionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_resource: Option<GroupVersionResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_sub_resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    operation: String,
    user_info: UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Value>,
}

#[derive(Deserialize, Serialize)]
struct GroupVersionKind {
    group: String,
    version: String,
    kind: String,
}

#[derive(Deserialize, Serialize)]
struct GroupVersionResource {
    group: String,
    version: String,
    resource: String,
}

/// k8s-openapi's `authentication/v1` UserInfo: every field optional.
#[derive(Deserialize, Serialize)]
struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<std::collections::BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

/// The AdmissionRequest of a bare request or of an AdmissionReview's `request`, checked and
/// normalised like kwctl 1.35 does before any evaluation, with kwctl's error texts: a request
/// kwctl refuses (a missing `kind`, a number as `uid`, …) is refused here too.
pub fn admission_request(input: Value) -> Result<Value> {
    let Value::Object(object) = input else {
        return Err(anyhow!("Invalid request object"));
    };
    let request = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        object
            .get("request")
            .cloned()
            .ok_or_else(|| anyhow!("invalid AdmissionReview object"))?
    } else {
        Value::Object(object)
    };
    let request: AdmissionRequest = serde_json::from_value(request)
        .map_err(|e| anyhow!("cannot build AdmissionRequest object from given input: {e}"))?;
    Ok(serde_json::to_value(request)?)
}

/// Evaluates one request; guest errors and traps become code 500, as in policy-server.
pub fn evaluate(
    instance: &WapcHost,
    request: &Value,
    settings: &Value,
    allow_mutation: bool,
) -> AdmissionResponse {
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let payload = serde_json::json!({"request": request, "settings": settings});
    let answer = match instance.call("validate", payload.to_string().as_bytes()) {
        Ok(answer) => answer,
        Err(error) => {
            return AdmissionResponse::reject(
                uid,
                format!("internal server error: {error}"),
                Some(500),
            );
        }
    };
    let guest: GuestResponse = match serde_json::from_slice(&answer) {
        Ok(guest) => guest,
        Err(error) => {
            return AdmissionResponse::reject(
                uid,
                format!("internal server error: unreadable policy response: {error}"),
                Some(500),
            );
        }
    };
    let object = request.get("object").filter(|object| !object.is_null());
    let patch = match (&guest.mutated_object, object) {
        (None, _) => None,
        (Some(_), None) => {
            return AdmissionResponse::reject(
                uid,
                "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed".to_owned(),
                None,
            );
        }
        (Some(mutated), Some(object)) => {
            let diff = json_patch::diff(object, mutated);
            (!diff.0.is_empty()).then_some(diff)
        }
    };
    if patch.is_some() && !allow_mutation {
        return AdmissionResponse::reject(
            uid,
            "The policy attempted to mutate the request, but it is currently configured to not allow mutations.".to_owned(),
            None,
        );
    }
    let patch = patch.map(|diff| {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_string(&diff).unwrap_or_default())
    });
    let status = (guest.message.is_some() || guest.code.is_some()).then_some(Status {
        message: guest.message,
        code: guest.code,
    });
    AdmissionResponse {
        uid: uid.to_owned(),
        allowed: guest.accepted,
        patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
        patch,
        status,
        audit_annotations: guest.audit_annotations,
        warnings: guest.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::Replay;
    use serde_json::json;

    /// A waPC guest whose `__guest_call` runs `body`; `data` is placed at offset 0.
    fn guest(body: &str, data: &str) -> Vec<u8> {
        let escaped = data.replace('\\', "\\\\").replace('"', "\\\"");
        wat::parse_str(format!(
            r#"(module
                 (import "wapc" "__guest_response" (func $respond (param i32 i32)))
                 (import "wapc" "__guest_error" (func $fail (param i32 i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 0) "{escaped}")
                 (func (export "wapc_init"))
                 (func (export "__guest_call") (param i32 i32) (result i32) {body}))"#
        ))
        .unwrap()
    }

    /// A guest that answers every call with `response`.
    fn answering(response: &Value) -> Vec<u8> {
        let text = response.to_string();
        guest(
            &format!(
                "(call $respond (i32.const 0) (i32.const {})) (i32.const 1)",
                text.len()
            ),
            &text,
        )
    }

    fn evaluate_with(module: &[u8], request: &Value, allow_mutation: bool) -> AdmissionResponse {
        let policy = Policy::load(module).unwrap();
        let host = Arc::new(Host::new(Vec::new(), Replay::new(Vec::new(), false)));
        evaluate(
            &policy.instantiate(host).unwrap(),
            request,
            &json!({}),
            allow_mutation,
        )
    }

    fn request() -> Value {
        json!({"uid": "u1", "operation": "CREATE", "object": {"a": 1, "keep": true}})
    }

    #[test]
    fn a_trap_is_an_internal_error_500() {
        let response = evaluate_with(&guest("unreachable", ""), &request(), true);
        assert_eq!(response.uid, "u1");
        assert!(!response.allowed);
        let status = response.status.unwrap();
        assert_eq!(status.code, Some(500));
        assert!(
            status
                .message
                .unwrap()
                .starts_with("internal server error: ")
        );
    }

    #[test]
    fn a_guest_error_is_an_internal_error_500() {
        let response = evaluate_with(
            &guest(
                "(call $fail (i32.const 0) (i32.const 4)) (i32.const 0)",
                "boom",
            ),
            &request(),
            true,
        );
        let status = response.status.unwrap();
        assert_eq!(status.code, Some(500));
        assert!(status.message.unwrap().contains("boom"));
    }

    #[test]
    fn mutations_become_a_base64_json_patch() {
        let module =
            answering(&json!({"accepted": true, "mutated_object": {"a": 2, "keep": true}}));
        let response = evaluate_with(&module, &request(), true);
        assert!(response.allowed);
        assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
        let patch = base64::engine::general_purpose::STANDARD
            .decode(response.patch.unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(patch, json!([{"op": "replace", "path": "/a", "value": 2}]));
        assert_eq!(
            serde_json::to_value(AdmissionResponse {
                patch: None,
                patch_type: None,
                ..response
            })
            .unwrap(),
            json!({"uid": "u1", "allowed": true, "auditAnnotations": null, "warnings": null})
        );
    }

    #[test]
    fn an_unchanged_mutated_object_gives_no_patch() {
        let module =
            answering(&json!({"accepted": true, "mutated_object": {"a": 1, "keep": true}}));
        let response = evaluate_with(&module, &request(), true);
        assert!(response.allowed && response.patch.is_none() && response.patch_type.is_none());
    }

    #[test]
    fn mutations_are_refused_when_not_allowed_or_on_delete() {
        let module = answering(&json!({"accepted": true, "mutated_object": {"a": 2}}));
        let refused = evaluate_with(&module, &request(), false);
        assert!(!refused.allowed);
        assert_eq!(
            refused.status.unwrap().message.unwrap(),
            "The policy attempted to mutate the request, but it is currently configured to not allow mutations."
        );
        let delete = json!({"uid": "u2", "operation": "DELETE", "object": null});
        let on_delete = evaluate_with(&module, &delete, true);
        assert!(!on_delete.allowed);
        assert!(
            on_delete
                .status
                .unwrap()
                .message
                .unwrap()
                .starts_with("Incoming object is null")
        );
    }

    #[test]
    fn rejections_carry_message_code_and_warnings() {
        let module =
            answering(&json!({"accepted": false, "message": "no", "code": 403, "warnings": ["w"]}));
        let response = evaluate_with(&module, &request(), true);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"uid": "u1", "allowed": false, "status": {"message": "no", "code": 403},
                   "auditAnnotations": null, "warnings": ["w"]})
        );
    }

    /// A guest whose start function and `__guest_call` both loop: the call `msg_length` times.
    fn looping() -> Vec<u8> {
        wat::parse_str(
            r#"(module
                 (import "wapc" "__guest_response" (func $respond (param i32 i32)))
                 (memory (export "memory") 1)
                 (func $spin (param $n i32)
                   (block $done (loop $again
                     (br_if $done (i32.eqz (local.get $n)))
                     (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                     (br $again))))
                 (func (export "wapc_init") (call $spin (i32.const 100000)))
                 (func (export "__guest_call") (param i32 i32) (result i32)
                   (call $spin (local.get 1))
                   (call $respond (i32.const 0) (i32.const 0))
                   (i32.const 1)))"#,
        )
        .unwrap()
    }

    #[test]
    fn instructions_are_counted_per_call_exactly_and_grow_with_the_work() {
        let policy = Policy::load_counting(&looping()).unwrap();
        let count = |payload: &[u8]| {
            let host = Arc::new(Host::new(Vec::new(), Replay::new(Vec::new(), false)));
            let instance = policy.instantiate(host).unwrap();
            instance.call("validate", payload).unwrap();
            policy.last_call_instructions().unwrap()
        };
        let ten = count(&[0; 10]);
        assert_eq!(count(&[0; 10]), ten, "the same call counts the same");
        let thousand = count(&[0; 1000]);
        // Each iteration runs the same operators (local.get, i32.eqz, br_if, local.get,
        // i32.const, i32.sub, local.set, br): 8 units; the start function's 100000 are not counted.
        assert_eq!(thousand - ten, 990 * 8);
        assert!(ten < 1000, "instantiation is not counted: {ten}");
        assert_eq!(
            Policy::load(&looping()).unwrap().last_call_instructions(),
            None
        );
    }

    /// A guest that looks up Secret ns/s and fails with whatever error text the host gave it,
    /// which kwctl then reports as `internal server error: Guest call failure: <text>`.
    fn forwarding_host_errors() -> Vec<u8> {
        let lookup = r#"{"api_version":"v1","kind":"Secret","name":"s","namespace":"ns","disable_cache":false}"#;
        wat::parse_str(format!(
            r#"(module
                 (import "wapc" "__host_call"
                   (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
                 (import "wapc" "__host_error_len" (func $error_len (result i32)))
                 (import "wapc" "__host_error" (func $error (param i32)))
                 (import "wapc" "__guest_error" (func $fail (param i32 i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 0) "kubewarden")
                 (data (i32.const 16) "kubernetes")
                 (data (i32.const 32) "get_resource")
                 (data (i32.const 64) "{escaped}")
                 (func (export "wapc_init"))
                 (func (export "__guest_call") (param i32 i32) (result i32) (local $len i32)
                   (drop (call $host_call (i32.const 0) (i32.const 10) (i32.const 16)
                     (i32.const 10) (i32.const 32) (i32.const 12) (i32.const 64) (i32.const {len})))
                   (local.set $len (call $error_len))
                   (call $error (i32.const 1024))
                   (call $fail (i32.const 1024) (local.get $len))
                   (i32.const 0)))"#,
            escaped = lookup.replace('"', "\\\""),
            len = lookup.len()
        ))
        .unwrap()
    }

    fn guest_failure(session: &str, backtrace: bool) -> String {
        let policy = Policy::load(&forwarding_host_errors()).unwrap();
        let grant = vec![crate::metadata::ContextAwareResource {
            api_version: "v1".into(),
            kind: "Secret".into(),
        }];
        let replay = Replay::new(crate::replay::parse(session).unwrap(), false);
        let host = Arc::new(Host::new(grant, replay).with_backtrace(backtrace));
        let response = evaluate(
            &policy.instantiate(host).unwrap(),
            &request(),
            &json!({}),
            true,
        );
        response.status.unwrap().message.unwrap()
    }

    #[test]
    fn each_host_call_is_listed_with_the_instructions_spent_before_it() {
        let policy = Policy::load_counting(&forwarding_host_errors()).unwrap();
        let host = Arc::new(Host::new(Vec::new(), Replay::new(Vec::new(), false)));
        let instance = policy.instantiate(host).unwrap();
        for _ in 0..2 {
            instance.call("validate", b"{}").ok();
            let calls = policy.last_call_host_calls();
            let [(call, before)] = calls.as_slice() else {
                panic!("one host call per guest call, listed once: {calls:?}");
            };
            assert_eq!(call, "kubernetes/get_resource");
            // Before the call, its eight operands; after it, three more calls and their operands.
            let total = policy.last_call_instructions().unwrap();
            assert!(*before >= 8 && *before < total, "{before} of {total}");
        }
        assert!(
            Policy::load(&forwarding_host_errors())
                .unwrap()
                .last_call_host_calls()
                .is_empty()
        );
    }

    /// kwctl 1.35 reports exactly this for the same guest and session (checked by hand).
    #[test]
    fn a_recorded_error_reaches_the_guest_as_kwctl_hands_it() {
        let session = "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Secret\n    name: s\n    namespace: ns\n    disable_cache: false\n  response:\n    type: Error\n    message: 'etcdserver: request timed out'\n";
        assert_eq!(
            guest_failure(session, false),
            "internal server error: Guest call failure: Callback evaluation failure: etcdserver: request timed out"
        );
        let with_backtrace = guest_failure(session, true);
        assert!(with_backtrace.starts_with(
            "internal server error: Guest call failure: Callback evaluation failure: etcdserver: request timed out\n\nStack backtrace:\n   0: "
        ));
        assert_eq!(
            guest_failure("[]", false),
            "internal server error: Guest call failure: Callback evaluation failure: the list of recorded responses is empty"
        );
    }

    /// A complete request as kwctl accepts it, with `fields` merged in.
    fn full_request(fields: Value) -> Value {
        let mut request = json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {"username": "admin"}, "object": {"a": 1}
        });
        for (key, value) in fields.as_object().unwrap() {
            request[key] = value.clone();
        }
        request
    }

    fn refusal(request: Value) -> String {
        admission_request(request).unwrap_err().to_string()
    }

    #[test]
    fn admission_reviews_are_unwrapped() {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                            "request": full_request(json!({"uid": "r"}))});
        assert_eq!(admission_request(review).unwrap()["uid"], "r");
        assert_eq!(
            admission_request(full_request(json!({"uid": "bare"}))).unwrap()["uid"],
            "bare"
        );
        assert_eq!(
            refusal(json!({"kind": "AdmissionReview"})),
            "invalid AdmissionReview object"
        );
        assert_eq!(refusal(json!([1])), "Invalid request object");
    }

    #[test]
    fn requests_kwctl_refuses_are_refused_with_its_text() {
        for field in ["uid", "kind", "resource", "operation", "userInfo"] {
            let mut request = full_request(json!({}));
            request.as_object_mut().unwrap().remove(field);
            assert_eq!(
                refusal(request),
                format!(
                    "cannot build AdmissionRequest object from given input: missing field `{field}`"
                )
            );
        }
        let kind_without_group = full_request(json!({"kind": {"version": "v1", "kind": "Pod"}}));
        assert!(refusal(kind_without_group).ends_with("missing field `group`"));
        assert_eq!(
            refusal(full_request(json!({"uid": 42}))),
            "cannot build AdmissionRequest object from given input: invalid type: integer `42`, expected a string"
        );
    }

    #[test]
    fn requests_are_normalised_like_kwctl_hands_them_over() {
        let request = admission_request(full_request(json!({
            "extra": 1, "object": null, "oldObject": {"b": 2}, "dryRun": null,
            "userInfo": {"username": "admin", "groups": null, "unknown": true}
        })))
        .unwrap();
        assert_eq!(
            request,
            json!({"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                   "resource": {"group": "", "version": "v1", "resource": "pods"},
                   "operation": "CREATE", "userInfo": {"username": "admin"},
                   "oldObject": {"b": 2}})
        );
        // Optional fields may be absent.
        let minimal = full_request(json!({}));
        let mut minimal = minimal.as_object().unwrap().clone();
        minimal.remove("object");
        admission_request(Value::Object(minimal)).unwrap();
    }
}
