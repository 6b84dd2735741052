//! The benchmark floor: parses the validation request exactly as the SDK does, then accepts.
//! `make bench` reports the policy's cost as ratios against this module.
//!
//! With settings `{"lookups": [GET_RESOURCE_REQUEST, …]}` it also makes those
//! `kubernetes/get_resource` host calls, in order, each payload sent as given (the JSON the
//! policy sends: api_version, kind, name, namespace, disable_cache, field_masks), and discards
//! the answers unread: the floor of a request that needs those lookups, which measures what the
//! host's calls cost under a given host.
//!
//! With `{"lists": [LIST_REQUEST, …]}` it likewise makes those
//! `kubernetes/list_resources_by_namespace` host calls, after the lookups, in order, each payload
//! sent as given (the SDK's ListResourcesByNamespaceRequest: api_version, kind, namespace,
//! label_selector, field_selector, field_masks), and discards the answers unread.
//!
//! With `{"calls": [{"operation": OPERATION, "payload": PAYLOAD}, …]}` it first makes those
//! `kubewarden/kubernetes/OPERATION` host calls (get_resource, list_resources_by_namespace,
//! can_i, …), in order, each payload sent as given, and discards the answers unread: the floor
//! of any request's exact host calls, in the order a replay session records them
//! (scripts/session-calls.py prints them from a session).
//!
//! With `{"response": TEXT}` it answers with TEXT, a ValidationResponse given as a JSON string,
//! instead of accepting: given the policy's own answer (a mutated object), it measures what the
//! host spends on a mutation (reading the object back, diffing it, encoding the patch).

use kubewarden_policy_sdk::request::ValidationRequest;
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use kubewarden_policy_sdk::wapc_guest::{self as guest, CallResult};
use kubewarden_policy_sdk::{accept_request, protocol_version_guest};

// The policy's allocator, the same file: the floor is built as the policy is, and an allocator
// speeds up the request parse both make.
#[cfg(target_arch = "wasm32")]
#[path = "../../../src/allocator.rs"]
mod allocator;

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: allocator::SizeClasses = allocator::SizeClasses::new();

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    guest::register_function("validate", validate);
    guest::register_function("validate_settings", validate_settings);
    guest::register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<serde_json::Value>::new(payload)?;
    std::hint::black_box(&request);
    if let Some(calls) = request.settings.get("calls").and_then(|c| c.as_array()) {
        for call in calls {
            let operation = call
                .get("operation")
                .and_then(|o| o.as_str())
                .unwrap_or_default();
            let payload = call.get("payload").unwrap_or(&serde_json::Value::Null);
            let answer = guest::host_call(
                "kubewarden",
                "kubernetes",
                operation,
                &serde_json::to_vec(payload)?,
            )?;
            std::hint::black_box(answer);
        }
    }
    if let Some(lookups) = request.settings.get("lookups").and_then(|l| l.as_array()) {
        for lookup in lookups {
            let answer = guest::host_call(
                "kubewarden",
                "kubernetes",
                "get_resource",
                &serde_json::to_vec(lookup)?,
            )?;
            std::hint::black_box(answer);
        }
    }
    if let Some(lists) = request.settings.get("lists").and_then(|l| l.as_array()) {
        for list in lists {
            let answer = guest::host_call(
                "kubewarden",
                "kubernetes",
                "list_resources_by_namespace",
                &serde_json::to_vec(list)?,
            )?;
            std::hint::black_box(answer);
        }
    }
    match request.settings.get("response").and_then(|r| r.as_str()) {
        Some(response) => Ok(response.as_bytes().to_vec()),
        None => accept_request(),
    }
}

fn validate_settings(_payload: &[u8]) -> CallResult {
    Ok(serde_json::to_vec(&SettingsValidationResponse {
        valid: true,
        message: None,
    })?)
}
