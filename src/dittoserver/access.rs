//! Who may decide what runs with the Secrets a DittoServer names.
//!
//! A DittoServer author acts through the operator: whatever the spec names, DittoFS pods read.
//! So every write that decides which code runs with those Secrets, or where their content is
//! sent, is asked about (`kubernetes/can_i`, `get` on each named Secret) on behalf of its author.

use serde_json::Value;

use crate::cluster::{Cluster, ObjectRef, Requester};
use crate::naming;
use crate::settings::{SecretAccessCheck, Settings};

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

/// The Secrets `object` names, first naming only; `Err` names a reference that is not a valid
/// Secret name, so that nothing is asked about (or looked up for) a name that is not one.
pub fn named_secrets(object: &Value) -> Result<Vec<NamedSecret<'_>>, String> {
    let mut named: Vec<NamedSecret<'_>> = Vec::new();
    for field in SECRET_REFERENCES {
        let pointer = format!("/{}", field.replace('.', "/"));
        // The CRD defaults these names to "", which names nothing (spec.s3's own rules refuse
        // an empty secretName when spec.s3 is written).
        let name = match object.pointer(&pointer) {
            None | Some(Value::Null) => continue,
            Some(Value::String(name)) if name.is_empty() => continue,
            Some(Value::String(name)) => name.as_str(),
            Some(_) => return Err(format!("{field}: must be a string")),
        };
        naming::dns1123_subdomain(name).map_err(|rule| format!("{field}: {rule}"))?;
        if !named.iter().any(|known| known.name == name) {
            named.push(NamedSecret { field, name });
        }
    }
    Ok(named)
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
    let mut changed: Vec<String> = now
        .keys()
        .chain(then.keys().filter(|key| !now.contains_key(*key)))
        .filter(|key| !INERT_SPEC_FIELDS.contains(&key.as_str()))
        .filter(|key| now.get(*key) != then.get(*key))
        .map(|key| format!("spec.{key}"))
        .collect();
    changed.sort_unstable();
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
    let write = match changes {
        [only] if only == "spec" => String::new(),
        _ => format!(" (this write changes {})", changes.join(", ")),
    };
    let refusals: Vec<String> = secrets
        .iter()
        .filter_map(|secret| {
            let secret_ref = ObjectRef::secret(namespace, secret.name);
            let named_in = if secret.field == SECRET_REFERENCES[0] {
                String::new()
            } else {
                format!(" (named in {})", secret.field)
            };
            match cluster.may_get(requester, secret_ref) {
                Ok(true) => None,
                Ok(false) => Some(format!("{who} may not get {secret_ref}{named_in}")),
                Err(error) => Some(format!(
                    "cannot check whether {who} may get {secret_ref}{named_in}: {error}"
                )),
            }
        })
        .collect();
    (!refusals.is_empty()).then(|| {
        format!(
            "{}, so it may not have DittoFS pods read it (secretAccessCheck){write}; grant the \
             user get on that Secret, or name one the user can read",
            refusals.join("; ")
        )
    })
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
