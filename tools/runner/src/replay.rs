//! kwctl's replay sessions: recorded host-capability exchanges, consumed in order.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

/// A `kubernetes/get_resource` request, as the guest sends it and as sessions record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetResource {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub disable_cache: bool,
    #[serde(default)]
    pub field_masks: Option<Vec<String>>,
}

/// A `kubernetes/list_resources_by_namespace` request, as the guest sends it (the SDK's
/// `ListResourcesByNamespaceRequest`) and as sessions record it (kwctl 1.35's
/// `KubernetesListResourceNamespace`; no `disable_cache`: the host answers lists from a watch).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesListResourceNamespace {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    #[serde(default)]
    pub label_selector: Option<String>,
    #[serde(default)]
    pub field_selector: Option<String>,
    #[serde(default)]
    pub field_masks: Option<BTreeSet<String>>,
}

/// A `kubernetes/can_i` request as the guest sends it (the SDK's `CanIRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct CanI {
    pub subject_access_review: SubjectAccessReview,
    pub disable_cache: bool,
}

/// The SDK's SubjectAccessReview; its derived Debug is kwctl's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubjectAccessReview {
    pub groups: Option<Vec<String>>,
    pub resource_attributes: ResourceAttributes,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceAttributes {
    pub group: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub resource: String,
    pub subresource: Option<String>,
    pub verb: String,
    pub version: Option<String>,
}

/// The recorded requests this runner can replay (kwctl's YAML tags and fields).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub enum RecordedRequest {
    KubernetesGetResource(GetResource),
    KubernetesListResourceNamespace(KubernetesListResourceNamespace),
    KubernetesCanI {
        request: SubjectAccessReview,
        disable_cache: bool,
    },
}

impl From<CanI> for RecordedRequest {
    fn from(live: CanI) -> Self {
        Self::KubernetesCanI {
            request: live.subject_access_review,
            disable_cache: live.disable_cache,
        }
    }
}

/// Printed like kwctl prints its `CallbackRequestType` in replay errors:
/// `KubernetesGetResource { api_version: "v1", …, field_masks: None }`,
/// `KubernetesCanI { request: SubjectAccessReview { groups: Some([…]), … }, disable_cache: false }`.
impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KubernetesCanI {
                request,
                disable_cache,
            } => f
                .debug_struct("KubernetesCanI")
                .field("request", request)
                .field("disable_cache", disable_cache)
                .finish(),
            Self::KubernetesGetResource(request) => f
                .debug_struct("KubernetesGetResource")
                .field("api_version", &request.api_version)
                .field("kind", &request.kind)
                .field("name", &request.name)
                .field("namespace", &request.namespace)
                .field("disable_cache", &request.disable_cache)
                .field("field_masks", &request.field_masks)
                .finish(),
            // Named as kwctl's variant, so its derived Debug is kwctl's.
            Self::KubernetesListResourceNamespace(request) => request.fmt(f),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum RecordedResponse {
    Success { payload: String },
    Error { message: String },
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum RawEntry {
    Exchange {
        request: String,
        response: RecordedResponse,
    },
}

/// Reads a session file; each `request` is a YAML document with a tag naming its kind.
pub fn load(path: &Path) -> Result<Vec<Exchange>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read replay session {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid replay session {}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Exchange>> {
    let entries: Option<Vec<RawEntry>> = serde_yaml::from_str(text)?;
    entries
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, RawEntry::Exchange { request, response })| {
            let request = serde_yaml::from_str(&request)
                .map_err(|e| anyhow!("entry {index}: unsupported or malformed request: {e}"))?;
            Ok(Exchange { request, response })
        })
        .collect()
}

/// Hands out recorded answers in order, as kwctl's replay proxy does: each host call takes the
/// next exchange, matching or not; `cycle` restarts at the end (for benchmarks).
pub struct Replay {
    exchanges: Vec<Exchange>,
    next: usize,
    cycle: bool,
    /// Whether a session was given at all: without one, kwctl has no Kubernetes client.
    recorded: bool,
}

impl Replay {
    pub fn new(exchanges: Vec<Exchange>, cycle: bool) -> Self {
        Self {
            exchanges,
            next: 0,
            cycle,
            recorded: true,
        }
    }

    /// No session: every host call that reaches the cluster fails as kwctl 1.35's does when it
    /// runs without a replay session and without `--allow-context-aware` (no client was made).
    pub fn without_session() -> Self {
        Self {
            recorded: false,
            ..Self::new(Vec::new(), false)
        }
    }

    /// The recorded answer for `live`, or why there is none, in kwctl 1.35's words.
    pub fn answer(&mut self, live: &RecordedRequest) -> Result<RecordedResponse, String> {
        if !self.recorded {
            return Err("kube::Client was not initialized properly".to_owned());
        }
        if self.cycle && self.next == self.exchanges.len() {
            self.next = 0;
        }
        let Some(exchange) = self.exchanges.get(self.next) else {
            return Err("the list of recorded responses is empty".to_owned());
        };
        self.next += 1;
        if &exchange.request != live {
            return Err(format!(
                "Replay error: unexpected request. Was expecting {:?}, got {live:?} instead",
                exchange.request
            ));
        }
        Ok(exchange.response.clone())
    }

    /// The recorded requests no host call has consumed.
    pub fn leftovers(&self) -> impl Iterator<Item = &RecordedRequest> {
        self.exchanges[self.next.min(self.exchanges.len())..]
            .iter()
            .map(|exchange| &exchange.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = r#"
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: Secret
    name: creds
    namespace: ns
    disable_cache: false
  response:
    type: Success
    payload: '{"kind":"Secret"}'
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: Secret
    name: gone
    namespace: ns
    disable_cache: false
  response:
    type: Error
    message: Cannot find v1/Secret named 'gone'
"#;

    fn get(name: &str) -> RecordedRequest {
        RecordedRequest::KubernetesGetResource(GetResource {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: name.into(),
            namespace: Some("ns".into()),
            disable_cache: false,
            field_masks: None,
        })
    }

    #[test]
    fn exchanges_are_consumed_in_order_then_exhausted() {
        let mut replay = Replay::new(parse(SESSION).unwrap(), false);
        assert_eq!(replay.leftovers().count(), 2);
        assert!(
            matches!(replay.answer(&get("creds")), Ok(RecordedResponse::Success { payload }) if payload == r#"{"kind":"Secret"}"#)
        );
        assert!(
            matches!(replay.answer(&get("gone")), Ok(RecordedResponse::Error { message }) if message.starts_with("Cannot find"))
        );
        assert_eq!(replay.leftovers().count(), 0);
        assert_eq!(
            replay.answer(&get("creds")).unwrap_err(),
            "the list of recorded responses is empty"
        );
    }

    #[test]
    fn a_mismatch_is_an_error_in_kwctls_words_and_consumes_the_exchange() {
        let mut replay = Replay::new(parse(SESSION).unwrap(), false);
        assert_eq!(
            replay.answer(&get("other")).unwrap_err(),
            "Replay error: unexpected request. Was expecting KubernetesGetResource { api_version: \"v1\", \
             kind: \"Secret\", name: \"creds\", namespace: Some(\"ns\"), disable_cache: false, \
             field_masks: None }, got KubernetesGetResource { api_version: \"v1\", kind: \"Secret\", \
             name: \"other\", namespace: Some(\"ns\"), disable_cache: false, field_masks: None } instead"
        );
        assert_eq!(replay.leftovers().collect::<Vec<_>>(), [&get("gone")]);
        assert!(replay.answer(&get("gone")).is_ok());
    }

    #[test]
    fn access_reviews_are_replayed_and_printed_like_kwctl() {
        let session = r#"
- type: Exchange
  request: |
    !KubernetesCanI
    request:
      groups:
      - system:authenticated
      resource_attributes:
        group: ''
        name: creds
        namespace: ns
        resource: secrets
        subresource: null
        verb: get
        version: v1
      user: admin
    disable_cache: false
  response:
    type: Success
    payload: '{"allowed":true}'
"#;
        let live: CanI = serde_json::from_str(
            r#"{"subject_access_review":{"groups":["system:authenticated"],"resource_attributes":
                {"group":"","name":"creds","namespace":"ns","resource":"secrets","subresource":null,
                 "verb":"get","version":"v1"},"user":"admin"},"disable_cache":false}"#,
        )
        .unwrap();
        let live = RecordedRequest::from(live);
        assert_eq!(
            format!("{live:?}"),
            "KubernetesCanI { request: SubjectAccessReview { groups: Some([\"system:authenticated\"]), \
             resource_attributes: ResourceAttributes { group: Some(\"\"), name: Some(\"creds\"), \
             namespace: Some(\"ns\"), resource: \"secrets\", subresource: None, verb: \"get\", \
             version: Some(\"v1\") }, user: \"admin\" }, disable_cache: false }"
        );
        let mut replay = Replay::new(parse(session).unwrap(), false);
        assert!(
            matches!(replay.answer(&live), Ok(RecordedResponse::Success { payload }) if payload == r#"{"allowed":true}"#)
        );
    }

    #[test]
    fn lists_are_replayed_and_printed_like_kwctl() {
        let session = r#"
- type: Exchange
  request: |
    !KubernetesListResourceNamespace
    api_version: dittofs.dittofs.com/v1alpha1
    kind: DittoServer
    namespace: ns
    label_selector: null
    field_selector: null
    field_masks:
    - metadata.name
    - spec.s3.credentialsSecretRef
  response:
    type: Success
    payload: '{"items":[]}'
"#;
        let live: KubernetesListResourceNamespace = serde_json::from_str(
            r#"{"api_version":"dittofs.dittofs.com/v1alpha1","kind":"DittoServer","namespace":"ns",
                "label_selector":null,"field_selector":null,
                "field_masks":["spec.s3.credentialsSecretRef","metadata.name"]}"#,
        )
        .unwrap();
        let live = RecordedRequest::KubernetesListResourceNamespace(live);
        assert_eq!(
            format!("{live:?}"),
            "KubernetesListResourceNamespace { api_version: \"dittofs.dittofs.com/v1alpha1\", \
             kind: \"DittoServer\", namespace: \"ns\", label_selector: None, field_selector: None, \
             field_masks: Some({\"metadata.name\", \"spec.s3.credentialsSecretRef\"}) }"
        );
        let mut replay = Replay::new(parse(session).unwrap(), false);
        assert!(
            matches!(replay.answer(&live), Ok(RecordedResponse::Success { payload }) if payload == r#"{"items":[]}"#)
        );
    }

    #[test]
    fn cycling_restarts() {
        let mut replay = Replay::new(parse(SESSION).unwrap(), true);
        for _ in 0..3 {
            replay.answer(&get("creds")).unwrap();
            replay.answer(&get("gone")).unwrap();
        }
    }

    #[test]
    fn empty_session_and_unknown_tags() {
        assert!(parse("[]").unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
        let unknown = "- type: Exchange\n  request: \"!KubernetesListResourceAll\\nkind: Pod\\n\"\n  response:\n    type: Error\n    message: x\n";
        assert!(
            parse(unknown)
                .unwrap_err()
                .to_string()
                .contains("unsupported")
        );
    }
}
