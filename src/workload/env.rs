//! The credentials env of the DittoFS container: what it should be, and merging it into raw JSON.

use serde_json::{Map, Value};

use crate::dittoserver::CredentialsRef;
use crate::value::At;

pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const REGION: &str = "AWS_REGION";

/// Every variable this policy manages, in the operator's order.
pub const MANAGED: [&str; 4] = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, ENDPOINT_URL, REGION];

/// The env entries the operator defines for a DittoServer with credentials, in its order.
pub fn desired(credentials: &CredentialsRef, region: &str) -> Vec<Value> {
    let text = |text: &str| Value::String(text.to_owned());
    let from_secret = |name: &str, reference: Value| {
        object([
            ("name", text(name)),
            ("valueFrom", object([("secretKeyRef", reference)])),
        ])
    };
    let secret_ref =
        |key: &str| object([("name", text(&credentials.secret_name)), ("key", text(key))]);
    vec![
        from_secret(ACCESS_KEY_ID, secret_ref(&credentials.keys.access_key_id)),
        from_secret(
            SECRET_ACCESS_KEY,
            secret_ref(&credentials.keys.secret_access_key),
        ),
        from_secret(
            ENDPOINT_URL,
            object([
                ("name", text(&credentials.secret_name)),
                ("key", text(&credentials.keys.endpoint)),
                ("optional", Value::Bool(true)),
            ]),
        ),
        object([("name", text(REGION)), ("value", text(region))]),
    ]
}

/// An object of these fields. Built by hand: `json!` passes every interpolated value through
/// serde's serializer, which took an injection 18,000 instructions for these four entries.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut object = Map::new();
    for (key, value) in fields {
        object.insert(key.to_owned(), value);
    }
    Value::Object(object)
}

pub fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

/// Whether two env entries define the same thing. `optional: false` on a `secretKeyRef` is
/// the default written out, so it counts as absent.
pub fn same_definition(a: &Value, b: &Value) -> bool {
    a == b || without_default_optional(a) == without_default_optional(b)
}

fn without_default_optional(entry: &Value) -> Value {
    let mut entry = entry.clone();
    if let Some(reference) = entry
        .at_mut(["valueFrom", "secretKeyRef"])
        .and_then(Value::as_object_mut)
        && reference.get("optional") == Some(&Value::Bool(false))
    {
        reference.remove("optional");
    }
    entry
}

/// How a container's env relates to the desired entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvComparison {
    /// Desired variables the container does not define.
    pub missing: Vec<String>,
    /// Desired variables the container defines differently (any occurrence), not as the
    /// policy wrote them: a person's definition.
    pub conflicting: Vec<String>,
    /// Desired variables that still hold what the policy wrote for an earlier spec.
    pub outdated: Vec<String>,
}

impl EnvComparison {
    pub fn is_satisfied(&self) -> bool {
        self.missing.is_empty() && self.conflicting.is_empty() && self.outdated.is_empty()
    }
}

/// Compares `env` with the desired entries; `written_by_policy` tells the policy's own
/// earlier entries from a person's.
pub fn compare(
    env: &[Value],
    desired: &[Value],
    written_by_policy: &dyn Fn(&Value) -> bool,
) -> EnvComparison {
    let mut comparison = EnvComparison {
        missing: Vec::new(),
        conflicting: Vec::new(),
        outdated: Vec::new(),
    };
    for wanted in desired {
        let name = entry_name(wanted).unwrap_or_default();
        let mut present = env
            .iter()
            .filter(|entry| entry_name(entry) == Some(name))
            .peekable();
        if present.peek().is_none() {
            comparison.missing.push(name.to_owned());
            continue;
        }
        let differing: Vec<&Value> = present
            .filter(|entry| !same_definition(entry, wanted))
            .collect();
        if differing.is_empty() {
            continue;
        }
        if differing.iter().all(|entry| written_by_policy(entry)) {
            comparison.outdated.push(name.to_owned());
        } else {
            comparison.conflicting.push(name.to_owned());
        }
    }
    comparison
}

/// Brings `env` to the desired entries: replaces differing definitions in place (every
/// occurrence, so duplicates stay consistent), then appends the missing ones in order.
pub fn merge(env: &mut Vec<Value>, desired: Vec<Value>) {
    for wanted in desired {
        let name = entry_name(&wanted);
        let mut found = false;
        for entry in env.iter_mut().filter(|entry| entry_name(entry) == name) {
            found = true;
            if !same_definition(entry, &wanted) {
                entry.clone_from(&wanted);
            }
        }
        if !found {
            env.push(wanted);
        }
    }
}

/// The managed entries of an env list, in order.
pub fn managed_entries(env: &[Value]) -> Vec<Value> {
    env.iter()
        .filter(|entry| is_managed(entry))
        .cloned()
        .collect()
}

/// The managed variables `env` defines, in the operator's order.
pub fn defined(env: &[Value]) -> Vec<&'static str> {
    MANAGED
        .into_iter()
        .filter(|name| env.iter().any(|entry| entry_name(entry) == Some(*name)))
        .collect()
}

fn is_managed(entry: &Value) -> bool {
    entry_name(entry).is_some_and(|name| MANAGED.contains(&name))
}

/// Makes the managed entries of `env` exactly those of `previous` (a previous revision's whole
/// env), in its order: each after the entry it followed there when that entry is still here,
/// else where the managed entries stood; entries the previous revision lacked are removed.
/// Other entries are kept as they are. An unchanged sequence is left alone.
pub fn restore(env: &mut Vec<Value>, previous: &[Value]) {
    let wanted: Vec<&Value> = previous.iter().filter(|entry| is_managed(entry)).collect();
    if env
        .iter()
        .filter(|entry| is_managed(entry))
        .eq(wanted.iter().copied())
    {
        return;
    }
    let first = env.iter().position(is_managed);
    env.retain(|entry| !is_managed(entry));
    let mut last: Option<usize> = None;
    let mut predecessor: Option<&Value> = None;
    for entry in previous {
        if is_managed(entry) {
            let after_predecessor = predecessor
                .filter(|before| !is_managed(before))
                .and_then(|before| env.iter().position(|kept| kept == before))
                .map(|at| at + 1);
            let at = after_predecessor
                .or(last.map(|at| at + 1))
                .or(first)
                .unwrap_or(if predecessor.is_none() { 0 } else { env.len() })
                .min(env.len());
            env.insert(at, entry.clone());
            last = Some(at);
        }
        predecessor = Some(entry);
    }
}

/// A copy of the container's env, to edit: empty when it has none (or null); `None` when it is
/// not a list.
pub fn env_of(container: &Value) -> Option<Vec<Value>> {
    match container.get("env") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(env)) => Some(env.clone()),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dittoserver::SecretKeys;
    use serde_json::json;

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
        merge(&mut env, wanted.clone());
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
        merge(&mut env, wanted.clone());
        assert_eq!(env, before);
        assert!(compare(&env, &wanted, &|_| false).is_satisfied());
    }

    #[test]
    fn conflicts_are_detected_and_overwritten_in_place() {
        let wanted = desired(&credentials(), "eu-west-1");
        let mut env = vec![
            json!({"name": REGION, "value": "us-east-1"}),
            json!({"name": "OTHER", "value": "x"}),
            json!({"name": REGION, "value": "eu-west-1"}),
        ];
        let comparison = compare(&env, &wanted, &|_| false);
        assert_eq!(comparison.conflicting, [REGION]);
        assert_eq!(
            comparison.missing,
            [ACCESS_KEY_ID, SECRET_ACCESS_KEY, ENDPOINT_URL]
        );
        merge(&mut env, wanted.clone());
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
    fn policy_written_entries_are_outdated_not_conflicting() {
        let wanted = desired(&credentials(), "fr-par");
        let earlier = desired(&credentials(), "eu-west-1");
        let ours = |entry: &Value| earlier.iter().any(|e| same_definition(e, entry));
        let comparison = compare(&earlier, &wanted, &ours);
        assert_eq!(comparison.outdated, [REGION]);
        assert!(comparison.conflicting.is_empty() && comparison.missing.is_empty());
        // The same entry written by a person is a conflict.
        let comparison = compare(&earlier, &wanted, &|_| false);
        assert_eq!(comparison.conflicting, [REGION]);
        assert!(comparison.outdated.is_empty());
    }

    #[test]
    fn optional_false_is_the_same_definition_as_no_optional() {
        let wanted = desired(&credentials(), "eu-west-1");
        let mut env = wanted.clone();
        if let Some(reference) = env
            .first_mut()
            .and_then(|e| e.pointer_mut("/valueFrom/secretKeyRef"))
        {
            reference["optional"] = json!(false);
        }
        assert!(compare(&env, &wanted, &|_| false).is_satisfied());
        let before = env.clone();
        merge(&mut env, wanted.clone());
        assert_eq!(env, before, "an equivalent definition is not rewritten");
        // optional: true on a required key is a different definition.
        if let Some(reference) = env
            .first_mut()
            .and_then(|e| e.pointer_mut("/valueFrom/secretKeyRef"))
        {
            reference["optional"] = json!(true);
        }
        assert_eq!(
            compare(&env, &wanted, &|_| false).conflicting,
            [ACCESS_KEY_ID]
        );
    }

    #[test]
    fn restore_puts_back_previous_definitions_where_the_managed_ones_stood_and_keeps_the_rest() {
        let previous = desired(&credentials(), "eu-west-1");
        let mut env = vec![
            json!({"name": "LOG_LEVEL", "value": "debug"}),
            json!({"name": REGION, "value": "fr-par"}),
            json!({"name": "OTHER", "value": "x"}),
            json!({"name": ACCESS_KEY_ID, "valueFrom": {"secretKeyRef": {"name": "creds-v2", "key": "accessKeyId"}}}),
        ];
        restore(&mut env, &previous);
        let names: Vec<&str> = env.iter().filter_map(entry_name).collect();
        assert_eq!(
            names,
            [
                "LOG_LEVEL",
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                ENDPOINT_URL,
                REGION,
                "OTHER"
            ]
        );
        assert_eq!(managed_entries(&env).len(), 4);
        for wanted in &previous {
            assert!(env.contains(wanted), "{wanted}");
        }
        let again = env.clone();
        restore(&mut env, &previous);
        assert_eq!(env, again);
    }

    #[test]
    fn restore_removes_what_the_previous_revision_did_not_define_and_keeps_its_order() {
        let mut previous = vec![json!({"name": "LOG_LEVEL", "value": "debug"})];
        previous.extend(desired(&credentials(), "eu-west-1"));
        // Its own order, even when it is not the operator's.
        previous.swap(3, 4);
        let mut env = previous.clone();
        env.retain(|entry| entry_name(entry) != Some(SECRET_ACCESS_KEY));
        env.push(json!({"name": "ADDED", "value": "x"}));
        restore(&mut env, &previous);
        assert_eq!(
            env.get(..5),
            Some(previous.as_slice()),
            "put back in its place"
        );
        assert_eq!(env.len(), 6);
        restore(&mut env, &[]);
        assert_eq!(
            env,
            [
                json!({"name": "LOG_LEVEL", "value": "debug"}),
                json!({"name": "ADDED", "value": "x"})
            ]
        );
        assert!(defined(&env).is_empty());
    }

    #[test]
    fn env_of_copies_an_absent_or_null_env_as_empty_and_refuses_another_type() {
        assert_eq!(env_of(&json!({"name": "dittofs"})), Some(vec![]));
        assert_eq!(env_of(&json!({"env": null})), Some(vec![]));
        let listed = json!([{"name": "A", "value": "b"}]);
        assert_eq!(
            env_of(&json!({"env": listed.clone()})),
            Some(vec![listed[0].clone()])
        );
        assert_eq!(env_of(&json!({"env": {"A": "b"}})), None);
    }
}
