//! The host side of waPC calls a policy makes: logging and Kubernetes lookups, with
//! kwctl's grant checks and replayed answers.

use std::sync::Mutex;

use crate::metadata::ContextAwareResource;
use crate::replay::{GetResource, RecordedRequest, RecordedResponse, Replay};

type HostResult = Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

pub struct Host {
    granted: Vec<ContextAwareResource>,
    replay: Mutex<Replay>,
}

impl Host {
    pub fn new(granted: Vec<ContextAwareResource>, replay: Replay) -> Self {
        Self {
            granted,
            replay: Mutex::new(replay),
        }
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
            ("kubewarden", "tracing", "log") => {
                eprintln!("policy log: {}", String::from_utf8_lossy(payload));
                Ok(Vec::new())
            }
            ("kubewarden", "kubernetes", "get_resource") => self.get_resource(payload),
            _ => Err(format!(
                "host capability {binding}/{namespace}/{operation} is not supported by this runner"
            )
            .into()),
        }
    }

    fn get_resource(&self, payload: &[u8]) -> HostResult {
        let request: GetResource = serde_json::from_slice(payload)
            .map_err(|e| format!("malformed kubernetes/get_resource request: {e}"))?;
        let allowed = self
            .granted
            .iter()
            .any(|grant| grant.api_version == request.api_version && grant.kind == request.kind);
        if !allowed {
            return Err(format!(
                "Policy has not been granted access to Kubernetes {}/{} resources. The violation has been reported.",
                request.api_version, request.kind
            )
            .into());
        }
        let mut replay = self.replay.lock().map_err(|_| "replay state poisoned")?;
        match replay.answer(&RecordedRequest::KubernetesGetResource(request))? {
            RecordedResponse::Success { payload } => Ok(payload.into_bytes()),
            RecordedResponse::Error { message } => Err(message.into()),
        }
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
        let host = Host::new(secret_grant(), Replay::new(session, false));
        assert_eq!(
            host.call("kubewarden", "kubernetes", "get_resource", LOOKUP)
                .unwrap(),
            b"{}"
        );
        assert!(
            host.call("kubewarden", "kubernetes", "get_resource", LOOKUP)
                .unwrap_err()
                .to_string()
                .contains("exhausted")
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
