//! What the policy core decides (src/answer.rs writes it as the `validate` answer).

use serde_json::Value;

use crate::edits::Edits;

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

/// `M` is what a mutation holds: the whole object the protocol answers with, or (while the
/// request's object is still being read) the edits that make it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<M = Value> {
    Accept,
    Reject(String),
    /// Accept with this object instead of the requested one.
    Mutate(M),
}

/// A verdict plus warnings for the requesting client; no Secret value may appear in either.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<M = Value> {
    pub verdict: Verdict<M>,
    pub warnings: Vec<String>,
}

impl<M> Decision<M> {
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

    pub fn mutate(mutation: M) -> Self {
        Self {
            verdict: Verdict::Mutate(mutation),
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
}

impl Decision<Edits> {
    /// The decision with its edits applied to the request's object, which becomes the answer.
    pub fn applied_to(self, mut object: Value) -> Decision {
        let verdict = match self.verdict {
            Verdict::Accept => Verdict::Accept,
            Verdict::Reject(message) => Verdict::Reject(message),
            Verdict::Mutate(edits) => match edits.apply(&mut object) {
                Ok(()) => Verdict::Mutate(object),
                Err(field) => Verdict::Reject(format!(
                    "cannot write the policy's changes: {field} is malformed"
                )),
            },
        };
        Decision {
            verdict,
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edits::Step;
    use serde_json::json;

    #[test]
    fn truncation_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(200), 9);
        assert!(cut.len() <= 9, "{cut}");
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn edits_become_the_whole_object_or_a_rejection_naming_the_field() {
        let object = json!({"metadata": {"name": "p"}});
        let mut edits = Edits::default();
        let annotation = ["metadata", "annotations", "a"].map(Step::from).to_vec();
        edits
            .set(&object, annotation, json!("1"))
            .expect("writable");
        let decision = Decision::mutate(edits).with_warnings(vec!["w".into()]);
        assert_eq!(
            decision.clone().applied_to(object),
            Decision {
                verdict: Verdict::Mutate(
                    json!({"metadata": {"name": "p", "annotations": {"a": "1"}}})
                ),
                warnings: vec!["w".into()],
            }
        );
        assert_eq!(
            decision.applied_to(json!({"metadata": []})).verdict,
            Verdict::Reject("cannot write the policy's changes: metadata is malformed".into())
        );
        let accepted: Decision<Edits> = Decision::accept();
        assert_eq!(accepted.applied_to(json!({})), Decision::accept());
    }

    #[test]
    fn every_warning_fits_the_kubernetes_limit() {
        let decision: Decision =
            Decision::accept().with_warnings(vec!["w".repeat(1000), "ok".into()]);
        assert!(decision.warnings.iter().all(|w| w.len() <= WARNING_LIMIT));
        assert_eq!(decision.warnings.get(1).map(String::as_str), Some("ok"));
    }
}
