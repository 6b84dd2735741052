//! What the policy core decides, and how it becomes a Kubewarden response.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::Value;

/// Kubernetes may truncate admission warnings longer than this many characters; warnings put
/// their consequence first, so a cut loses detail, never the point.
pub const WARNING_LIMIT: usize = 256;

/// `text` cut on a character boundary so that it and a closing ellipsis fit in `limit` bytes.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut cut = limit.saturating_sub(ellipsis.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ellipsis}", text.get(..cut).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    Reject(String),
    /// Accept with this whole object instead of the requested one.
    Mutate(Value),
}

/// A verdict plus warnings for the requesting client; no Secret value may appear in either.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn accept() -> Self {
        Self {
            verdict: Verdict::Accept,
            warnings: Vec::new(),
        }
    }

    pub fn reject(message: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Reject(message.into()),
            warnings: Vec::new(),
        }
    }

    pub fn mutate(object: Value) -> Self {
        Self {
            verdict: Verdict::Mutate(object),
            warnings: Vec::new(),
        }
    }

    /// Adds warnings, each cut to what Kubernetes passes on whole.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(
            warnings
                .into_iter()
                .map(|warning| truncate(&warning, WARNING_LIMIT)),
        );
        self
    }

    pub fn into_response(self) -> ValidationResponse {
        let warnings = (!self.warnings.is_empty()).then_some(self.warnings);
        let (accepted, message, mutated_object) = match self.verdict {
            Verdict::Accept => (true, None, None),
            Verdict::Reject(message) => (false, Some(message), None),
            Verdict::Mutate(object) => (true, None, Some(object)),
        };
        ValidationResponse {
            accepted,
            message,
            code: None,
            mutated_object,
            audit_annotations: None,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(200), 9);
        assert!(cut.len() <= 9, "{cut}");
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn every_warning_fits_the_kubernetes_limit() {
        let decision = Decision::accept().with_warnings(vec!["w".repeat(1000), "ok".into()]);
        assert!(decision.warnings.iter().all(|w| w.len() <= WARNING_LIMIT));
        assert_eq!(decision.warnings.get(1).map(String::as_str), Some("ok"));
    }
}
