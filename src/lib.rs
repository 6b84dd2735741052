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

use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use kubewarden_policy_sdk::wapc_guest::{self as guest, CallResult};
use kubewarden_policy_sdk::{logging, protocol_version_guest};
use lazy_static::lazy_static;
use slog::{Drain, Logger, o};

pub mod admission;
pub mod cluster;
pub mod credentials;
pub mod decision;
pub mod dittoserver;
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

lazy_static! {
    // Not the SDK's `KubewardenDrain::new()`: that wraps the drain in `slog::Fuse`, which
    // panics (a trap, so a 500) when the host's `tracing/log` call fails. A lost log line
    // must never cost the user their verdict.
    static ref LOG: Logger = Logger::root(
        logging::KubewardenDrain::default().ignore_res(),
        o!("policy" => "dittofs-s3-policy")
    );
}

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
        slog::info!(LOG, "request rejected"; "reason" => message.as_str());
    }
    Ok(serde_json::to_vec(&decision.into_response())?)
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
