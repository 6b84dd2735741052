//! Who may decide what runs with the Secrets a DittoServer names.
//!
//! A DittoServer author acts through the operator: whatever the spec names, DittoFS pods read.
//! So every write that decides which code runs with those Secrets, or where their content is
//! sent, is asked about (`kubernetes/can_i`, `get` on each named Secret) on behalf of its author.

use serde_json::Value;

use crate::cluster::{Cluster, ObjectRef, Requester};
use crate::naming;
use crate::settings::{SecretAccessCheck, Settings};
use crate::value::At;

/// Where a DittoServer (operator v0.4.1–v0.12.0) names a Secret of its namespace, in the order
/// the author's access to them is asked about.
pub const SECRET_REFERENCES: [&str; 5] = [
    "spec.s3.credentialsSecretRef.secretName",
    "spec.database.postgresSecretRef.name",
    "spec.identity.admin.passwordSecretRef.name",
    "spec.identity.jwt.secretRef.name",
    "spec.percona.backup.credentialsSecretRef.name",
];

/// Top-level `spec` fields that only size, place or expose the server: changing them decides
/// neither which code runs with the named Secrets nor where their content goes, so it asks
/// nothing. Every other field, including ones this policy does not know, asks (docs/threat-model.md).
pub const INERT_SPEC_FIELDS: [&str; 13] = [
    "replicas",
    "resources",
    "storage",
    "cache",
    "service",
    "adapterServices",
    "adapterDiscovery",
    "controlPlane",
    "metrics",
    "nfsPort",
    "smb",
    "podSecurityContext",
    "securityContext",
];

/// A Secret a DittoServer names, and the field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSecret<'v> {
    pub field: &'static str,
    pub name: &'v str,
}

/// Each Secret reference `object` holds, in `SECRET_REFERENCES` order: the name, or why it is
/// not one. The CRD defaults these names to "", which names nothing (spec.s3's own rules refuse
/// an empty secretName when spec.s3 is written).
fn references(object: &Value) -> impl Iterator<Item = Result<NamedSecret<'_>, String>> {
    SECRET_REFERENCES
        .into_iter()
        .filter_map(move |field| match object.at(field.split('.'))? {
            Value::Null => None,
            Value::String(name) if name.is_empty() => None,
            Value::String(name) => Some(
                naming::dns1123_subdomain(name)
                    .map(|()| NamedSecret { field, name })
                    .map_err(|rule| format!("{field}: {rule}")),
            ),
            _ => Some(Err(format!("{field}: must be a string"))),
        })
}

/// Adds `secret` unless a Secret of that name is there already.
fn add_once<'v>(secrets: &mut Vec<NamedSecret<'v>>, secret: NamedSecret<'v>) {
    if !secrets.iter().any(|known| known.name == secret.name) {
        secrets.push(secret);
    }
}

/// The Secrets `object` names, first naming only; `Err` names a reference that is not a valid
/// Secret name, so that nothing is asked about (or looked up for) a name that is not one.
fn named_secrets(object: &Value) -> Result<Vec<NamedSecret<'_>>, String> {
    let mut named = Vec::new();
    for reference in references(object) {
        add_once(&mut named, reference?);
    }
    Ok(named)
}

/// The Secrets a write decides about: those the object names, and on UPDATE those the stored
/// revision named. A write that drops a reference while it changes the image must not pass
/// unasked: pods built from a cached or kept revision would still hand that Secret to the new
/// code. References of the stored revision that are not names cannot reach a pod and are left out.
pub fn secrets_at_stake<'v>(
    object: &'v Value,
    previous: Option<&'v Value>,
) -> Result<Vec<NamedSecret<'v>>, String> {
    let mut secrets = named_secrets(object)?;
    for secret in previous.into_iter().flat_map(references).flatten() {
        add_once(&mut secrets, secret);
    }
    Ok(secrets)
}

/// The `spec` fields a write changes that decide what runs with the named Secrets; every field
/// on CREATE (`previous` is `None`).
pub fn deciding_changes(object: &Value, previous: Option<&Value>) -> Vec<String> {
    let spec = object.get("spec");
    let Some(previous) = previous else {
        return vec!["spec".to_owned()];
    };
    let before = previous.get("spec");
    let (Some(Value::Object(now)), Some(Value::Object(then))) = (spec, before) else {
        return if spec == before {
            Vec::new()
        } else {
            vec!["spec".to_owned()]
        };
    };
    let fields = now
        .keys()
        .chain(then.keys().filter(|key| !now.contains_key(*key)))
        .filter(|key| !INERT_SPEC_FIELDS.contains(&key.as_str()))
        .filter(|key| now.get(*key) != then.get(*key))
        .map(|key| format!("spec.{key}"));
    // Sorted as they are collected: std's sort would add kilobytes of code for a few fields.
    let mut changed: Vec<String> = Vec::new();
    for field in fields {
        changed.insert(changed.partition_point(|sorted| *sorted <= field), field);
    }
    changed
}

/// Asks whether `requester` may `get` each named Secret; `Some` explains every refusal or
/// failed question. Nothing is asked with `secretAccessCheck: skip`.
pub fn refusal(
    requester: &Requester<'_>,
    secrets: &[NamedSecret<'_>],
    changes: &[String],
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Option<String> {
    if settings.secret_access_check == SecretAccessCheck::Skip {
        return None;
    }
    let who = requester.describe();
    let (write, alternative) = match changes {
        [only] if only == "spec" => (String::new(), "name one the user can read"),
        _ if changes.iter().any(|field| field == "spec.s3") => (
            format!(" (this write changes {})", changes.join(", ")),
            "name one the user can read",
        ),
        _ => (
            format!(" (this write changes {})", changes.join(", ")),
            "have someone who may read it make this change",
        ),
    };
    let mut denied: Vec<&NamedSecret<'_>> = Vec::new();
    let mut failed: Vec<(String, Vec<&NamedSecret<'_>>)> = Vec::new();
    for secret in secrets {
        match cluster.may_get(requester, ObjectRef::secret(namespace, secret.name)) {
            Ok(true) => {}
            Ok(false) => denied.push(secret),
            // One failing review usually fails them all alike: said once.
            Err(error) => match failed
                .iter_mut()
                .find(|(text, _)| *text == error.to_string())
            {
                Some((_, group)) => group.push(secret),
                None => failed.push((error.to_string(), vec![secret])),
            },
        }
    }
    let mut clauses = Vec::new();
    if !denied.is_empty() {
        clauses.push(format!(
            "{who} may not get {}",
            secrets_in(&denied, namespace)
        ));
    }
    for (error, group) in &failed {
        clauses.push(format!(
            "cannot check whether {who} may get {}: {error}",
            secrets_in(group, namespace)
        ));
    }
    (!clauses.is_empty()).then(|| {
        format!(
            "{}, so it may not have DittoFS pods read it (secretAccessCheck){write}; grant the \
             user get on that Secret, or {alternative}",
            clauses.join("; ")
        )
    })
}

/// `Secret "a" in namespace "n"` (with the field that names it, outside spec.s3), or
/// `Secrets "a", "b" in namespace "n"`: short enough for a warning.
fn secrets_in(secrets: &[&NamedSecret<'_>], namespace: &str) -> String {
    match secrets {
        [only] => {
            let named_in = if only.field == SECRET_REFERENCES[0] {
                String::new()
            } else {
                format!(" (named in {})", only.field)
            };
            format!("{}{named_in}", ObjectRef::secret(namespace, only.name))
        }
        _ => {
            let names: Vec<String> = secrets.iter().map(|s| format!("\"{}\"", s.name)).collect();
            format!("Secrets {} in namespace \"{namespace}\"", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ditto(spec: Value) -> Value {
        json!({"metadata": {"name": "d"}, "spec": spec})
    }

    #[test]
    fn every_secret_reference_of_the_crd_is_read_in_order_and_once() {
        let object = ditto(json!({
            "s3": {"credentialsSecretRef": {"secretName": "s3"}},
            "database": {"postgresSecretRef": {"name": "pg", "key": "url"}},
            "identity": {"jwt": {"secretRef": {"name": "jwt"}},
                         "admin": {"passwordSecretRef": {"name": "s3"}}},
            "percona": {"backup": {"credentialsSecretRef": {"name": "backup"}}},
        }));
        let named = named_secrets(&object).expect("valid names");
        let names: Vec<(&str, &str)> = named.iter().map(|s| (s.field, s.name)).collect();
        assert_eq!(
            names,
            [
                ("spec.s3.credentialsSecretRef.secretName", "s3"),
                ("spec.database.postgresSecretRef.name", "pg"),
                ("spec.identity.jwt.secretRef.name", "jwt"),
                ("spec.percona.backup.credentialsSecretRef.name", "backup"),
            ]
        );
    }

    #[test]
    fn a_write_decides_about_the_secrets_named_before_it_too() {
        let before = ditto(
            json!({"image": "a", "s3": {"credentialsSecretRef": {"secretName": "s3"}},
                                  "database": {"postgresSecretRef": {"name": "../x"}}}),
        );
        let after =
            ditto(json!({"image": "evil", "identity": {"jwt": {"secretRef": {"name": "jwt"}}}}));
        let at_stake = secrets_at_stake(&after, Some(&before)).expect("valid names");
        let names: Vec<&str> = at_stake.iter().map(|s| s.name).collect();
        assert_eq!(names, ["jwt", "s3"]);
        assert_eq!(secrets_at_stake(&after, None).map(|s| s.len()), Ok(1));
    }

    #[test]
    fn an_empty_name_as_the_crd_defaults_it_names_nothing() {
        let object =
            ditto(json!({"identity": {"admin": {"passwordSecretRef": {"name": "", "key": "k"}}}}));
        assert_eq!(named_secrets(&object), Ok(Vec::new()));
    }

    #[test]
    fn a_reference_that_is_not_a_secret_name_is_refused_by_field() {
        let traversal = ditto(json!({"database": {"postgresSecretRef": {
            "name": "../../../namespaces/victim/secrets/x"}}}));
        let error = named_secrets(&traversal).expect_err("not a name");
        assert!(
            error.starts_with("spec.database.postgresSecretRef.name: "),
            "{error}"
        );
        let number = ditto(json!({"identity": {"jwt": {"secretRef": {"name": 7}}}}));
        assert_eq!(
            named_secrets(&number),
            Err("spec.identity.jwt.secretRef.name: must be a string".to_owned())
        );
    }

    #[test]
    fn only_fields_that_decide_what_runs_count_as_changes() {
        let before = ditto(json!({"image": "a", "replicas": 1, "s3": {"region": "x"}}));
        let scaled = ditto(json!({"image": "a", "replicas": 2, "s3": {"region": "x"},
                                  "resources": {"limits": {"cpu": "2"}}}));
        assert!(deciding_changes(&scaled, Some(&before)).is_empty());
        let moved = ditto(json!({"image": "b", "replicas": 1, "database": {"type": "postgres"}}));
        assert_eq!(
            deciding_changes(&moved, Some(&before)),
            ["spec.database", "spec.image", "spec.s3"]
        );
        let unknown = ditto(json!({"image": "a", "replicas": 1, "s3": {"region": "x"}, "env": []}));
        assert_eq!(deciding_changes(&unknown, Some(&before)), ["spec.env"]);
        assert_eq!(deciding_changes(&before, None), ["spec"]);
        let relabelled = json!({"metadata": {"labels": {"a": "b"}}, "spec": before["spec"]});
        assert!(deciding_changes(&relabelled, Some(&before)).is_empty());
        assert_eq!(
            deciding_changes(&json!({"spec": null}), Some(&before)),
            ["spec"]
        );
    }
}
