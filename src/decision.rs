//! What the policy core decides, and how it becomes a Kubewarden response.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::Value;

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

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(warnings);
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
