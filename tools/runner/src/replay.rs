//! kwctl's replay sessions: recorded host-capability exchanges, consumed in order.

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

/// The recorded requests this runner can replay (kwctl's YAML tags).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum RecordedRequest {
    KubernetesGetResource(GetResource),
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

/// Hands out recorded answers in order; `cycle` restarts at the end (for benchmarks).
pub struct Replay {
    exchanges: Vec<Exchange>,
    next: usize,
    cycle: bool,
}

impl Replay {
    pub fn new(exchanges: Vec<Exchange>, cycle: bool) -> Self {
        Self {
            exchanges,
            next: 0,
            cycle,
        }
    }

    /// The recorded answer for `live`, or why there is none.
    pub fn answer(&mut self, live: &RecordedRequest) -> Result<RecordedResponse, String> {
        if self.cycle && self.next == self.exchanges.len() {
            self.next = 0;
        }
        let Some(exchange) = self.exchanges.get(self.next) else {
            return Err(format!(
                "replay session exhausted: the policy made an unrecorded request {live:?}"
            ));
        };
        if &exchange.request != live {
            return Err(format!(
                "replay mismatch at exchange {}: recorded {:?}, the policy sent {live:?}",
                self.next, exchange.request
            ));
        }
        self.next += 1;
        Ok(exchange.response.clone())
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
        assert!(
            matches!(replay.answer(&get("creds")), Ok(RecordedResponse::Success { payload }) if payload == r#"{"kind":"Secret"}"#)
        );
        assert!(
            matches!(replay.answer(&get("gone")), Ok(RecordedResponse::Error { message }) if message.starts_with("Cannot find"))
        );
        assert!(
            replay
                .answer(&get("creds"))
                .unwrap_err()
                .contains("exhausted")
        );
    }

    #[test]
    fn a_mismatch_is_an_error_and_consumes_nothing() {
        let mut replay = Replay::new(parse(SESSION).unwrap(), false);
        assert!(
            replay
                .answer(&get("other"))
                .unwrap_err()
                .contains("mismatch at exchange 0")
        );
        assert!(replay.answer(&get("creds")).is_ok());
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
        let unknown = "- type: Exchange\n  request: \"!KubernetesCanI\\nverb: get\\n\"\n  response:\n    type: Error\n    message: x\n";
        assert!(
            parse(unknown)
                .unwrap_err()
                .to_string()
                .contains("unsupported")
        );
    }
}
