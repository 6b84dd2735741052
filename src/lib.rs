//! dittofs-s3-policy: a Kubewarden policy that validates DittoServer S3 settings and
//! wires S3 credentials into DittoFS pods.
//!
//! Layout: this file is the waPC shell; `admission` routes requests to pure decisions
//! (`dittoserver`, `workload`, `credentials`, `settings`, `naming`) which read the cluster
//! only through the `cluster::Cluster` trait.

// A panic in a policy is a trap, and a trap blocks the user's request: policy code may not panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use kubewarden_policy_sdk::protocol_version_guest;
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use kubewarden_policy_sdk::wapc_guest::{self as guest, CallResult};
use serde::Serialize;

pub mod admission;
#[cfg(any(target_arch = "wasm32", test))]
mod allocator;
mod answer;
pub mod cluster;
pub mod credentials;
pub mod decision;
pub mod dittoserver;
pub mod edits;
pub mod naming;
#[cfg(test)]
mod properties;
pub mod secret_guard;
pub mod settings;
#[cfg(test)]
mod test_support;
mod value;
pub mod workload;

use cluster::HostCluster;
use decision::Verdict;
use settings::Settings;

/// Small blocks by size class (src/allocator.rs).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: allocator::SizeClasses = allocator::SizeClasses::new();

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    guest::register_function("validate", validate);
    guest::register_function("validate_settings", validate_settings);
    guest::register_function("protocol_version", protocol_version_guest);
}

/// Evaluates one admission request; every outcome, malformed input included, is a verdict.
fn validate(payload: &[u8]) -> CallResult {
    let decision = admission::decide_payload(payload, &HostCluster);
    if let Verdict::Reject(message) = &decision.verdict {
        log_rejection(message);
    }
    // Room for a mutated object (the payload holds it, and more) without regrowing.
    let mut response = Vec::with_capacity(payload.len());
    answer::write(decision, &mut response)?;
    Ok(response)
}

/// Like the SDK's helper, but a settings document that does not parse is reported as
/// invalid settings with a message instead of a host error.
fn validate_settings(payload: &[u8]) -> CallResult {
    let response = match Settings::parse(payload) {
        Ok(_) => SettingsValidationResponse {
            valid: true,
            message: None,
        },
        Err(message) => SettingsValidationResponse {
            valid: false,
            message: Some(message),
        },
    };
    Ok(serde_json::to_vec(&response)?)
}

/// A `tracing/log` event in the shape of the SDK's slog drain (level and message, then fields,
/// which the host shows as the event's data), without the drain's source file, line and column.
/// Written without slog, whose serializer's trait object keeps every number formatter of the
/// standard library in the module.
#[derive(Serialize)]
struct LogEvent<'a> {
    level: &'static str,
    message: &'static str,
    policy: &'static str,
    reason: &'a str,
}

/// Logs a rejection on the host. A lost log line must never cost the user their verdict, so a
/// failed host call is ignored (the SDK's `KubewardenDrain::new()` would panic: a trap, a 500).
fn log_rejection(reason: &str) {
    let event = LogEvent {
        level: "info",
        message: "request rejected",
        policy: "dittofs-s3-policy",
        reason,
    };
    if let Ok(bytes) = serde_json::to_vec(&event) {
        let _ = guest::host_call("kubewarden", "tracing", "log", &bytes);
    }
}
