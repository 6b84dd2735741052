//! The host side of waPC calls a policy makes: logging and Kubernetes lookups, with
//! kwctl's grant checks and replayed answers, failing with the texts kwctl 1.35 hands a guest.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use crate::metadata::ContextAwareResource;
use crate::replay::{
    CanI, GetResource, KubernetesListResourceNamespace, RecordedRequest, RecordedResponse, Replay,
};

type HostResult = Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

pub struct Host {
    granted: Vec<ContextAwareResource>,
    replay: Mutex<Replay>,
    backtrace: bool,
    /// Every `tracing/log` call fails (POLICY_RUNNER_FAIL_LOG_CALLS=1, a test hook).
    fail_log_calls: bool,
}

/// Whether anyhow would capture a backtrace in kwctl: `RUST_LIB_BACKTRACE` decides when set,
/// else `RUST_BACKTRACE`; any value but `0` enables it.
pub fn backtrace_requested() -> bool {
    backtrace_enabled(|name| std::env::var(name).ok())
}

fn backtrace_enabled(var: impl Fn(&str) -> Option<String>) -> bool {
    let enabled = |name| var(name).map(|value| value != "0");
    enabled("RUST_LIB_BACKTRACE")
        .or_else(|| enabled("RUST_BACKTRACE"))
        .unwrap_or(false)
}

/// The shape (not the frames) of the backtrace a stripped kwctl build appends.
const FAKE_BACKTRACE: &str = "\n\nStack backtrace:\n   0: <unknown>\n   1: <unknown>\n   2: start_thread\n             at ./nptl/pthread_create.c:442:8\n   3: clone3\n             at ./misc/../sysdeps/unix/sysv/linux/x86_64/clone3.S:81:0";

/// One event of the SDK's log drain: level, message, and any other fields as data.
#[derive(Deserialize)]
struct LogEvent {
    level: String,
    message: Option<String>,
    #[serde(flatten)]
    data: BTreeMap<String, Value>,
}

impl Host {
    /// A host that appends a backtrace to callback failures when the environment asks for
    /// one, as kwctl does (see `callback_failure`).
    pub fn new(granted: Vec<ContextAwareResource>, replay: Replay) -> Self {
        Self {
            granted,
            replay: Mutex::new(replay),
            backtrace: backtrace_requested(),
            fail_log_calls: std::env::var_os("POLICY_RUNNER_FAIL_LOG_CALLS")
                .is_some_and(|v| v == "1"),
        }
    }

    #[cfg(test)]
    pub fn with_backtrace(mut self, backtrace: bool) -> Self {
        self.backtrace = backtrace;
        self
    }

    /// Answers one host call from the guest.
    pub fn call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> HostResult {
        match (binding, namespace, operation) {
            // A test hook: policy-evaluator's log callback fails on an event it cannot read, and
            // a policy must survive that; this makes every log call fail so tests can show it.
            ("kubewarden", "tracing", "log") if self.fail_log_calls => {
                Err("log call refused (POLICY_RUNNER_FAIL_LOG_CALLS=1)".into())
            }
            ("kubewarden", "tracing", "log") => {
                eprintln!("{}", log_line(payload));
                Ok(Vec::new())
            }
            ("kubewarden", "kubernetes", "get_resource") => self.get_resource(payload),
            ("kubewarden", "kubernetes", "can_i") => self.can_i(payload),
            ("kubewarden", "kubernetes", "list_resources_by_namespace") => {
                self.list_resources_by_namespace(payload)
            }
            _ => Err(format!(
                "host capability {binding}/{namespace}/{operation} is not supported by this runner"
            )
            .into()),
        }
    }

    /// The recorded exchanges no host call consumed, for the end-of-run warning.
    pub fn leftovers(&self) -> Vec<String> {
        self.replay
            .lock()
            .map(|replay| replay.leftovers().map(|r| format!("{r:?}")).collect())
            .unwrap_or_default()
    }

    fn get_resource(&self, payload: &[u8]) -> HostResult {
        let request: GetResource = serde_json::from_slice(payload)?;
        self.check_grant(&request.api_version, &request.kind)?;
        self.replayed(RecordedRequest::KubernetesGetResource(request))
    }

    fn list_resources_by_namespace(&self, payload: &[u8]) -> HostResult {
        let request: KubernetesListResourceNamespace = serde_json::from_slice(payload)?;
        self.check_grant(&request.api_version, &request.kind)?;
        self.replayed(RecordedRequest::KubernetesListResourceNamespace(request))
    }

    /// policy-evaluator refuses a kind outside contextAwareResources before the callback
    /// channel: no wrapper, no backtrace.
    fn check_grant(&self, api_version: &str, kind: &str) -> Result<(), String> {
        let allowed = self
            .granted
            .iter()
            .any(|grant| grant.api_version == api_version && grant.kind == kind);
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "Policy has not been granted access to Kubernetes {api_version}/{kind} resources. The violation has been reported."
            ))
        }
    }

    /// policy-evaluator checks no grant for access reviews: they go straight to the host.
    fn can_i(&self, payload: &[u8]) -> HostResult {
        let request: CanI = serde_json::from_slice(payload)?;
        self.replayed(request.into())
    }

    fn replayed(&self, request: RecordedRequest) -> HostResult {
        let mut replay = self.replay.lock().map_err(|_| "replay state poisoned")?;
        match replay.answer(&request) {
            Ok(RecordedResponse::Success { payload }) => Ok(payload.into_bytes()),
            Ok(RecordedResponse::Error { message }) => Err(self.callback_failure(&message).into()),
            Err(replay_error) => Err(self.callback_failure(&replay_error).into()),
        }
    }

    /// What kwctl 1.35 hands the guest when a host call through its callback channel fails
    /// (a recorded Error, an exhausted or mismatched replay): policy-evaluator formats the
    /// anyhow error with `Callback evaluation failure: {e:?}`, and that Debug form ends with
    /// `\n\nStack backtrace:\n…` (kilobytes, in kwctl) when RUST_BACKTRACE or RUST_LIB_BACKTRACE
    /// enables backtraces. This runner appends a short stand-in then, so a policy's handling of
    /// multi-line host errors is exercised under both tools. The guest's waPC library then
    /// prefixes `Host error: ` when it formats the error.
    fn callback_failure(&self, message: &str) -> String {
        let backtrace = if self.backtrace { FAKE_BACKTRACE } else { "" };
        format!("Callback evaluation failure: {message}{backtrace}")
    }
}

/// A policy log event as one stderr line shaped like kwctl's (less its timestamp and spans):
/// `<LEVEL> policy_log: <message> data=<other fields as JSON>`, so tests find the policy's
/// log lines with one pattern under both tools. Unlike kwctl (info and above by default), every
/// level is shown; an unreadable event is shown raw rather than dropped.
fn log_line(payload: &[u8]) -> String {
    match serde_json::from_slice::<LogEvent>(payload) {
        Ok(event) => {
            let level = match event.level.to_uppercase().as_str() {
                "WARNING" => "WARN".to_owned(),
                other => other.to_owned(),
            };
            format!(
                "{level:>5} policy_log: {} data={}",
                event.message.unwrap_or_default(),
                serde_json::to_string(&event.data).unwrap_or_default()
            )
        }
        Err(error) => format!(
            "ERROR policy_log: unreadable log event ({error}) data={}",
            String::from_utf8_lossy(payload)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_grant() -> Vec<ContextAwareResource> {
        vec![ContextAwareResource {
            api_version: "v1".into(),
            kind: "Secret".into(),
        }]
    }

    const LOOKUP: &[u8] = br#"{"api_version":"v1","kind":"Secret","name":"s","namespace":"ns","disable_cache":false,"field_masks":null}"#;

    #[test]
    fn ungranted_lookups_are_refused_with_kwctls_text() {
        let host = Host::new(Vec::new(), Replay::new(Vec::new(), false));
        let error = host
            .call("kubewarden", "kubernetes", "get_resource", LOOKUP)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported."
        );
    }

    #[test]
    fn granted_lookups_are_replayed() {
        let session = crate::replay::parse(
            "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Secret\n    name: s\n    namespace: ns\n    disable_cache: false\n  response:\n    type: Success\n    payload: '{}'\n",
        )
        .unwrap();
        let host = Host::new(secret_grant(), Replay::new(session, false)).with_backtrace(false);
        assert_eq!(
            host.call("kubewarden", "kubernetes", "get_resource", LOOKUP)
                .unwrap(),
            b"{}"
        );
        assert!(
            host.call("kubewarden", "kubernetes", "get_resource", LOOKUP)
                .unwrap_err()
                .to_string()
                .ends_with("the list of recorded responses is empty")
        );
    }

    const SESSION: &str = "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Secret\n    name: s\n    namespace: ns\n    disable_cache: false\n  response:\n    type: Error\n    message: 'etcdserver: request timed out'\n";

    fn failure(host: &Host) -> String {
        host.call("kubewarden", "kubernetes", "get_resource", LOOKUP)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn recorded_errors_reach_the_guest_as_kwctl_hands_them() {
        let session = crate::replay::parse(SESSION).unwrap();
        let host = Host::new(secret_grant(), Replay::new(session, false)).with_backtrace(false);
        assert_eq!(
            failure(&host),
            "Callback evaluation failure: etcdserver: request timed out"
        );
        assert_eq!(
            failure(&host),
            "Callback evaluation failure: the list of recorded responses is empty"
        );
    }

    #[test]
    fn with_backtraces_enabled_callback_failures_span_lines() {
        let session = crate::replay::parse(SESSION).unwrap();
        let host = Host::new(secret_grant(), Replay::new(session, false)).with_backtrace(true);
        let message = failure(&host);
        let mut lines = message.lines();
        assert_eq!(
            lines.next(),
            Some("Callback evaluation failure: etcdserver: request timed out")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(lines.next(), Some("Stack backtrace:"));
        assert!(lines.count() >= 2);
        // Grant refusals never go through the callback channel: no wrapper, no backtrace.
        let refusing = Host::new(Vec::new(), Replay::new(Vec::new(), false)).with_backtrace(true);
        assert!(failure(&refusing).starts_with("Policy has not been granted"));
        assert!(!failure(&refusing).contains('\n'));
    }

    #[test]
    fn a_mismatched_lookup_is_a_callback_failure_and_leaves_no_leftover() {
        let session = crate::replay::parse(&SESSION.replace("name: s\n", "name: t\n")).unwrap();
        let host = Host::new(secret_grant(), Replay::new(session, false)).with_backtrace(false);
        assert_eq!(host.leftovers().len(), 1);
        assert!(
            failure(&host).starts_with(
                "Callback evaluation failure: Replay error: unexpected request. Was expecting KubernetesGetResource { api_version: \"v1\", kind: \"Secret\", name: \"t\""
            )
        );
        assert!(host.leftovers().is_empty());
    }

    #[test]
    fn log_events_are_printed_like_kwctls_policy_log_lines() {
        assert_eq!(
            log_line(
                br#"{"level":"info","message":"request rejected","policy":"p","column":9,"reason":"no"}"#
            ),
            r#" INFO policy_log: request rejected data={"column":9,"policy":"p","reason":"no"}"#
        );
        assert_eq!(
            log_line(br#"{"level":"warning","message":"m"}"#),
            " WARN policy_log: m data={}"
        );
        assert!(log_line(b"not json").starts_with("ERROR policy_log: unreadable log event ("));
        assert!(log_line(b"not json").ends_with(" data=not json"));
    }

    #[test]
    fn backtrace_requests_follow_anyhows_variables() {
        let with = |vars: &'static [(&'static str, &'static str)]| {
            backtrace_enabled(|name| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
        };
        assert!(!with(&[]));
        assert!(with(&[("RUST_BACKTRACE", "1")]));
        assert!(with(&[("RUST_BACKTRACE", "full")]));
        assert!(!with(&[("RUST_BACKTRACE", "0")]));
        assert!(!with(&[
            ("RUST_LIB_BACKTRACE", "0"),
            ("RUST_BACKTRACE", "1")
        ]));
        assert!(with(&[
            ("RUST_LIB_BACKTRACE", "1"),
            ("RUST_BACKTRACE", "0")
        ]));
    }

    #[test]
    fn access_reviews_need_no_grant_and_are_replayed() {
        let session = crate::replay::parse(
            "- type: Exchange\n  request: |\n    !KubernetesCanI\n    request:\n      groups: null\n      resource_attributes:\n        group: ''\n        name: s\n        namespace: ns\n        resource: secrets\n        subresource: null\n        verb: get\n        version: v1\n      user: u\n    disable_cache: false\n  response:\n    type: Success\n    payload: '{\"allowed\":true}'\n",
        )
        .unwrap();
        let host = Host::new(Vec::new(), Replay::new(session, false)).with_backtrace(false);
        let review = br#"{"subject_access_review":{"groups":null,"resource_attributes":{"group":"","name":"s","namespace":"ns","resource":"secrets","subresource":null,"verb":"get","version":"v1"},"user":"u"},"disable_cache":false}"#;
        assert_eq!(
            host.call("kubewarden", "kubernetes", "can_i", review)
                .unwrap(),
            br#"{"allowed":true}"#
        );
    }

    #[test]
    fn without_a_session_access_reviews_fail_as_kwctls_do_without_a_client() {
        let host = Host::new(Vec::new(), Replay::without_session()).with_backtrace(false);
        let payload = br#"{"subject_access_review":{"groups":[],"resource_attributes":{"name":"s","namespace":"n","resource":"secrets","verb":"get"},"user":"u"},"disable_cache":false}"#;
        let error = host
            .call("kubewarden", "kubernetes", "can_i", payload)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Callback evaluation failure: kube::Client was not initialized properly"
        );
    }

    #[test]
    fn unknown_capabilities_get_a_clear_error() {
        let host = Host::new(secret_grant(), Replay::new(Vec::new(), false));
        let error = host
            .call("kubewarden", "oci", "manifest_digest", b"{}")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("kubewarden/oci/manifest_digest is not supported")
        );
    }
}
