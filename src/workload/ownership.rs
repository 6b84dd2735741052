//! Which `AWS_*` entries of a container the policy wrote, so that its own entries can follow
//! the DittoServer while a person's different definition stays a conflict.
//!
//! The policy records where the entries it wrote came from in an annotation beside the hash
//! (pod metadata for Pods, template metadata for StatefulSets). Pods created from a template
//! inherit it. The operator replaces the template's annotation map on every reconcile, so on
//! a StatefulSet UPDATE the previous revision's record counts when the new one has none.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::env;
use crate::dittoserver::{CredentialsRef, SecretKeys};

/// The annotation that records what the policy injected: names and a region, never a value.
pub const RECORD_ANNOTATION: &str = "dittofs.io/s3-credentials-source";

/// The `spec.s3` fields the injected entries were rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjectionRecord {
    secret_name: String,
    access_key_id_key: String,
    secret_access_key_key: String,
    endpoint_key: String,
    region: String,
}

impl InjectionRecord {
    pub fn new(credentials: &CredentialsRef, region: &str) -> Self {
        Self {
            secret_name: credentials.secret_name.clone(),
            access_key_id_key: credentials.keys.access_key_id.clone(),
            secret_access_key_key: credentials.keys.secret_access_key.clone(),
            endpoint_key: credentials.keys.endpoint.clone(),
            region: region.to_owned(),
        }
    }

    /// The annotation value: compact JSON, readable with `kubectl get -o yaml`.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record that does not parse claims nothing.
    pub fn from_annotation(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The entries the policy wrote for this record.
    fn entries(&self) -> Vec<Value> {
        let credentials = CredentialsRef {
            secret_name: self.secret_name.clone(),
            keys: SecretKeys {
                access_key_id: self.access_key_id_key.clone(),
                secret_access_key: self.secret_access_key_key.clone(),
                endpoint: self.endpoint_key.clone(),
            },
        };
        env::desired(&credentials, &self.region)
    }
}

/// What the policy knows it wrote into a revision.
pub enum Ownership {
    /// The entries rendered from a record.
    Recorded(Vec<Value>),
    /// Output of a policy version that wrote the hash but no record: every managed entry.
    Unrecorded,
    /// Nothing the policy wrote.
    None,
}

impl Ownership {
    /// Reads the ownership from the pod annotations of the given revisions, first match wins:
    /// a record, else a hash annotation without any record.
    pub fn of(
        revisions: &[Option<&serde_json::Map<String, Value>>],
        hash_annotation: &str,
    ) -> Self {
        let annotation = |key: &str| {
            revisions
                .iter()
                .flatten()
                .find_map(|annotations| annotations.get(key).and_then(Value::as_str))
        };
        match annotation(RECORD_ANNOTATION).map(InjectionRecord::from_annotation) {
            Some(Some(record)) => Self::Recorded(record.entries()),
            // A record that does not parse (edited by hand) claims nothing.
            Some(None) => Self::None,
            None if annotation(hash_annotation).is_some() => Self::Unrecorded,
            None => Self::None,
        }
    }

    /// Whether the policy wrote this entry.
    pub fn wrote(&self, entry: &Value) -> bool {
        match self {
            Self::Recorded(entries) => entries
                .iter()
                .any(|written| env::same_definition(written, entry)),
            Self::Unrecorded => {
                env::entry_name(entry).is_some_and(|name| env::MANAGED.contains(&name))
            }
            Self::None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credentials(name: &str) -> CredentialsRef {
        CredentialsRef {
            secret_name: name.into(),
            keys: SecretKeys::default(),
        }
    }

    fn annotations(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn a_record_round_trips_and_claims_exactly_its_entries() {
        let record = InjectionRecord::new(&credentials("creds"), "eu-west-1");
        let text = record.to_annotation();
        assert_eq!(
            text,
            r#"{"secretName":"creds","accessKeyIdKey":"accessKeyId","secretAccessKeyKey":"secretAccessKey","endpointKey":"endpoint","region":"eu-west-1"}"#
        );
        let stored = annotations(json!({ RECORD_ANNOTATION: text }));
        let ownership = Ownership::of(&[Some(&stored)], "h");
        for entry in env::desired(&credentials("creds"), "eu-west-1") {
            assert!(ownership.wrote(&entry), "{entry}");
        }
        for entry in env::desired(&credentials("other"), "fr-par") {
            assert!(!ownership.wrote(&entry), "{entry}");
        }
    }

    #[test]
    fn the_first_revision_with_a_record_wins_then_a_bare_hash_then_nothing() {
        let new = annotations(json!({"unrelated": "x"}));
        let old = annotations(json!({
            RECORD_ANNOTATION: InjectionRecord::new(&credentials("creds"), "fr-par").to_annotation()
        }));
        let region = json!({"name": "AWS_REGION", "value": "fr-par"});
        assert!(Ownership::of(&[Some(&new), Some(&old)], "h").wrote(&region));
        let hashed = annotations(json!({"h": "abc"}));
        assert!(Ownership::of(&[None, Some(&hashed)], "h").wrote(&region));
        assert!(!Ownership::of(&[Some(&new), None], "h").wrote(&region));
        let tampered = annotations(json!({ RECORD_ANNOTATION: "{not json", "h": "abc" }));
        assert!(!Ownership::of(&[Some(&tampered)], "h").wrote(&region));
    }
}
