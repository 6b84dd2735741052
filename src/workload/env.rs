//! The credentials env of the DittoFS container: what it should be, and merging it into raw JSON.

use serde_json::{Map, Value, json};

use crate::dittoserver::CredentialsRef;

pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const REGION: &str = "AWS_REGION";

/// Every variable this policy manages, in the operator's order.
pub const MANAGED: [&str; 4] = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, ENDPOINT_URL, REGION];

/// The env entries the operator defines for a DittoServer with credentials, in its order.
pub fn desired(credentials: &CredentialsRef, region: &str) -> Vec<Value> {
    let secret_ref =
        |key: &str| json!({"secretKeyRef": {"name": credentials.secret_name, "key": key}});
    vec![
        json!({"name": ACCESS_KEY_ID, "valueFrom": secret_ref(&credentials.keys.access_key_id)}),
        json!({"name": SECRET_ACCESS_KEY, "valueFrom": secret_ref(&credentials.keys.secret_access_key)}),
        json!({"name": ENDPOINT_URL, "valueFrom": {"secretKeyRef": {
            "name": credentials.secret_name, "key": credentials.keys.endpoint, "optional": true}}}),
        json!({"name": REGION, "value": region}),
    ]
}

pub fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

/// How a container's env relates to the desired entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvComparison {
    /// Desired variables the container does not define.
    pub missing: Vec<String>,
    /// Desired variables the container defines differently (any occurrence).
    pub conflicting: Vec<String>,
}

impl EnvComparison {
    pub fn is_satisfied(&self) -> bool {
        self.missing.is_empty() && self.conflicting.is_empty()
    }
}

pub fn compare(env: &[Value], desired: &[Value]) -> EnvComparison {
    let mut comparison = EnvComparison {
        missing: Vec::new(),
        conflicting: Vec::new(),
    };
    for wanted in desired {
        let name = entry_name(wanted).unwrap_or_default();
        let mut present = env
            .iter()
            .filter(|entry| entry_name(entry) == Some(name))
            .peekable();
        if present.peek().is_none() {
            comparison.missing.push(name.to_owned());
        } else if present.any(|entry| entry != wanted) {
            comparison.conflicting.push(name.to_owned());
        }
    }
    comparison
}

/// Brings `env` to the desired entries: replaces differing definitions in place (every
/// occurrence, so duplicates stay consistent), then appends the missing ones in order.
/// Returns whether anything changed.
pub fn merge(env: &mut Vec<Value>, desired: &[Value]) -> bool {
    let mut changed = false;
    for wanted in desired {
        let name = entry_name(wanted);
        let mut found = false;
        for entry in env.iter_mut().filter(|entry| entry_name(entry) == name) {
            found = true;
            if entry != wanted {
                *entry = wanted.clone();
                changed = true;
            }
        }
        if !found {
            env.push(wanted.clone());
            changed = true;
        }
    }
    changed
}

/// The managed entries of an env list, for carrying them over to a new revision.
pub fn managed_entries(env: &[Value]) -> Vec<Value> {
    env.iter()
        .filter(|entry| entry_name(entry).is_some_and(|name| MANAGED.contains(&name)))
        .cloned()
        .collect()
}

/// Appends the `carried` entries whose names `env` lacks. Returns whether anything changed.
pub fn carry_over(env: &mut Vec<Value>, carried: &[Value]) -> bool {
    let mut changed = false;
    for entry in carried {
        let name = entry_name(entry);
        if !env.iter().any(|existing| entry_name(existing) == name) {
            env.push(entry.clone());
            changed = true;
        }
    }
    changed
}

/// A container's `env`, created when absent or `null`; `None` when it is not a list.
/// Only call it when entries will be added, so no empty `env` appears in a patch.
pub fn env_of(container: &mut Map<String, Value>) -> Option<&mut Vec<Value>> {
    let slot = container.entry("env").or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dittoserver::SecretKeys;

    fn credentials() -> CredentialsRef {
        CredentialsRef {
            secret_name: "creds".into(),
            keys: SecretKeys::default(),
        }
    }

    #[test]
    fn desired_env_matches_the_operator_definition() {
        assert_eq!(
            Value::Array(desired(&credentials(), "eu-west-1")),
            json!([
                {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accessKeyId"}}},
                {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "secretAccessKey"}}},
                {"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "endpoint", "optional": true}}},
                {"name": "AWS_REGION", "value": "eu-west-1"},
            ])
        );
    }

    #[test]
    fn merge_appends_in_order_after_existing_env_and_is_idempotent() {
        let wanted = desired(&credentials(), "eu-west-1");
        let mut env = vec![json!({"name": "LOG_LEVEL", "value": "debug"})];
        assert!(merge(&mut env, &wanted));
        let names: Vec<&str> = env.iter().filter_map(entry_name).collect();
        assert_eq!(
            names,
            [
                "LOG_LEVEL",
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                ENDPOINT_URL,
                REGION
            ]
        );
        let before = env.clone();
        assert!(!merge(&mut env, &wanted));
        assert_eq!(env, before);
        assert!(compare(&env, &wanted).is_satisfied());
    }

    #[test]
    fn conflicts_are_detected_and_overwritten_in_place() {
        let wanted = desired(&credentials(), "eu-west-1");
        let mut env = vec![
            json!({"name": REGION, "value": "us-east-1"}),
            json!({"name": "OTHER", "value": "x"}),
            json!({"name": REGION, "value": "eu-west-1"}),
        ];
        let comparison = compare(&env, &wanted);
        assert_eq!(comparison.conflicting, [REGION]);
        assert_eq!(
            comparison.missing,
            [ACCESS_KEY_ID, SECRET_ACCESS_KEY, ENDPOINT_URL]
        );
        assert!(merge(&mut env, &wanted));
        assert_eq!(
            env.first(),
            Some(&json!({"name": REGION, "value": "eu-west-1"}))
        );
        assert_eq!(env.get(1), Some(&json!({"name": "OTHER", "value": "x"})));
        assert_eq!(
            env.get(2),
            Some(&json!({"name": REGION, "value": "eu-west-1"}))
        );
        assert_eq!(env.len(), 6);
    }

    #[test]
    fn carry_over_adds_only_missing_managed_entries() {
        let old = vec![
            json!({"name": "LOG_LEVEL", "value": "debug"}),
            json!({"name": REGION, "value": "fr-par"}),
            json!({"name": ACCESS_KEY_ID, "valueFrom": {"secretKeyRef": {"name": "c", "key": "k"}}}),
        ];
        let carried = managed_entries(&old);
        assert_eq!(carried.len(), 2);
        let mut env = vec![json!({"name": REGION, "value": "eu-west-1"})];
        assert!(carry_over(&mut env, &carried));
        assert_eq!(env.len(), 2);
        assert_eq!(
            env.first(),
            Some(&json!({"name": REGION, "value": "eu-west-1"}))
        );
        assert!(!carry_over(&mut env, &carried));
    }

    #[test]
    fn env_of_creates_or_refuses() {
        let mut container = json!({"name": "dittofs"});
        let map = container.as_object_mut().expect("object");
        assert!(env_of(map).expect("created").is_empty());
        let mut nulled = json!({"name": "dittofs", "env": null});
        assert!(env_of(nulled.as_object_mut().expect("object")).is_some());
        let mut broken = json!({"name": "dittofs", "env": {"A": "b"}});
        assert!(env_of(broken.as_object_mut().expect("object")).is_none());
    }
}
