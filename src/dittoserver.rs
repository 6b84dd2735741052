//! The DittoServer `spec.s3` model: parsing raw JSON with the CRD's defaults, and its rules.

pub mod access;
pub mod compatibility;
pub mod review;

use serde_json::{Map, Value};

use crate::naming;
use crate::value::At;

pub const DEFAULT_REGION: &str = "eu-west-1";

/// Names of the Secret entries that hold each credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub endpoint: String,
}

impl Default for SecretKeys {
    fn default() -> Self {
        Self {
            access_key_id: "accessKeyId".to_owned(),
            secret_access_key: "secretAccessKey".to_owned(),
            endpoint: "endpoint".to_owned(),
        }
    }
}

/// `spec.s3.credentialsSecretRef`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsRef {
    pub secret_name: String,
    pub keys: SecretKeys,
}

/// `spec.s3`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Spec {
    pub credentials: Option<CredentialsRef>,
    pub region: String,
    /// Whether the region was written in the object (not defaulted).
    pub region_is_explicit: bool,
    pub bucket: Option<String>,
}

/// One broken rule, with the field path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// Collects violations while walking the object.
#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, field: &str, rule: impl Into<String>) {
        self.violations.push(Violation {
            field: field.to_owned(),
            rule: rule.into(),
        });
    }

    /// An optional member that must be an object; `null` counts as the wrong type.
    fn object<'v>(
        &mut self,
        parent: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Option<&'v Map<String, Value>> {
        match parent.get(key)? {
            Value::Object(map) => Some(map),
            other => {
                self.fail(
                    field,
                    format!("must be an object, not {}", json_type(other)),
                );
                None
            }
        }
    }

    /// An optional member that must be a string; `null` counts as the wrong type.
    fn string<'v>(
        &mut self,
        parent: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Option<&'v str> {
        match parent.get(key)? {
            Value::String(text) => Some(text),
            other => {
                self.fail(field, format!("must be a string, not {}", json_type(other)));
                None
            }
        }
    }

    /// Applies a naming rule to a present value.
    fn rule(
        &mut self,
        field: &str,
        value: &str,
        rule: fn(&str) -> Result<(), &'static str>,
    ) -> bool {
        match rule(value) {
            Ok(()) => true,
            Err(broken) => {
                self.fail(field, broken);
                false
            }
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `spec.s3` from a DittoServer object. `Ok(None)`: no S3 block, nothing to check.
pub fn parse_s3(object: &Value) -> Result<Option<S3Spec>, Vec<Violation>> {
    let mut check = Checker::default();
    let Value::Object(root) = object else {
        check.fail(
            "object",
            format!("must be an object, not {}", json_type(object)),
        );
        return Err(check.violations);
    };
    let Some(spec) = check.object(root, "spec", "spec") else {
        return if check.violations.is_empty() {
            Ok(None)
        } else {
            Err(check.violations)
        };
    };
    let Some(s3) = check.object(spec, "s3", "spec.s3") else {
        return if check.violations.is_empty() {
            Ok(None)
        } else {
            Err(check.violations)
        };
    };

    let credentials = check
        .object(s3, "credentialsSecretRef", "spec.s3.credentialsSecretRef")
        .and_then(|reference| parse_credentials_ref(&mut check, reference));

    let region = check.string(s3, "region", "spec.s3.region");
    if let Some(region) = region {
        check.rule("spec.s3.region", region, naming::region);
    }
    let bucket = check.string(s3, "bucket", "spec.s3.bucket");
    if let Some(bucket) = bucket {
        check.rule("spec.s3.bucket", bucket, naming::bucket);
    }

    if !check.violations.is_empty() {
        return Err(check.violations);
    }
    Ok(Some(S3Spec {
        credentials,
        region: region.unwrap_or(DEFAULT_REGION).to_owned(),
        region_is_explicit: region.is_some(),
        bucket: bucket.map(str::to_owned),
    }))
}

/// `spec.s3.credentialsSecretRef` alone, when it is valid: what a DittoServer listed with only
/// that field (the Secret guard's list) says about the Secret it consumes.
pub fn credentials_ref(object: &Value) -> Option<CredentialsRef> {
    let reference = object
        .at(["spec", "s3", "credentialsSecretRef"])?
        .as_object()?;
    let mut check = Checker::default();
    parse_credentials_ref(&mut check, reference).filter(|_| check.violations.is_empty())
}

fn parse_credentials_ref(
    check: &mut Checker,
    reference: &Map<String, Value>,
) -> Option<CredentialsRef> {
    const PATH: &str = "spec.s3.credentialsSecretRef";
    // Field names spelled out: formatting them would cost every DittoFS pod's admission.
    const SECRET_NAME: &str = "spec.s3.credentialsSecretRef.secretName";
    let before = check.violations.len();

    let secret_name = match check.string(reference, "secretName", SECRET_NAME) {
        None if !reference.contains_key("secretName") => {
            check.fail(SECRET_NAME, "is required");
            None
        }
        Some("") => {
            check.fail(SECRET_NAME, "must not be empty");
            None
        }
        Some(name) => check
            .rule(SECRET_NAME, name, naming::dns1123_subdomain)
            .then_some(name),
        None => None,
    };

    let defaults = SecretKeys::default();
    let mut key = |member: &str, field: &str, default: &str| -> String {
        match check.string(reference, member, field) {
            Some(name) => {
                check.rule(field, name, naming::secret_key);
                name.to_owned()
            }
            None => default.to_owned(),
        }
    };
    let keys = SecretKeys {
        access_key_id: key(
            "accessKeyIdKey",
            "spec.s3.credentialsSecretRef.accessKeyIdKey",
            &defaults.access_key_id,
        ),
        secret_access_key: key(
            "secretAccessKeyKey",
            "spec.s3.credentialsSecretRef.secretAccessKeyKey",
            &defaults.secret_access_key,
        ),
        endpoint: key(
            "endpointKey",
            "spec.s3.credentialsSecretRef.endpointKey",
            &defaults.endpoint,
        ),
    };

    let named = [
        ("accessKeyIdKey", &keys.access_key_id),
        ("secretAccessKeyKey", &keys.secret_access_key),
        ("endpointKey", &keys.endpoint),
    ];
    for (i, (first_field, first)) in named.iter().enumerate() {
        for (second_field, second) in named.iter().skip(i + 1) {
            if first == second {
                check.fail(
                    PATH,
                    format!("{first_field} and {second_field} must name different Secret keys (both are \"{first}\")"),
                );
            }
        }
    }

    if check.violations.len() > before {
        return None;
    }
    secret_name.map(|name| CredentialsRef {
        secret_name: name.to_owned(),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_s3(s3: Value) -> Value {
        json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
               "metadata": {"name": "d", "namespace": "ns"}, "spec": {"s3": s3}})
    }

    #[test]
    fn defaults_apply_when_fields_are_absent() {
        let spec = parse_s3(&with_s3(
            json!({"credentialsSecretRef": {"secretName": "creds"}}),
        ))
        .expect("valid")
        .expect("has s3");
        assert_eq!(spec.region, DEFAULT_REGION);
        assert!(!spec.region_is_explicit);
        assert_eq!(spec.bucket, None);
        let credentials = spec.credentials.expect("credentials");
        assert_eq!(credentials.secret_name, "creds");
        assert_eq!(credentials.keys, SecretKeys::default());
    }

    #[test]
    fn explicit_values_are_kept() {
        let spec = parse_s3(&with_s3(json!({
            "credentialsSecretRef": {"secretName": "creds", "accessKeyIdKey": "id",
                                     "secretAccessKeyKey": "secret", "endpointKey": "url"},
            "region": "fr-par", "bucket": "my-bucket"})))
        .expect("valid")
        .expect("has s3");
        assert_eq!(spec.region, "fr-par");
        assert!(spec.region_is_explicit);
        assert_eq!(spec.bucket.as_deref(), Some("my-bucket"));
        let keys = spec.credentials.expect("credentials").keys;
        assert_eq!(
            (
                keys.access_key_id.as_str(),
                keys.secret_access_key.as_str(),
                keys.endpoint.as_str()
            ),
            ("id", "secret", "url")
        );
    }

    #[test]
    fn objects_without_s3_have_nothing_to_check() {
        for object in [
            json!({}),
            json!({"spec": {}}),
            json!({"spec": {"nfsPort": 2049}}),
        ] {
            assert_eq!(parse_s3(&object), Ok(None), "{object}");
        }
    }

    /// Each malformed input and the field plus rule its rejection must name.
    #[test]
    fn every_rule_names_its_field() {
        let long = "a".repeat(300);
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "object", "must be an object, not an array"),
            (
                json!({"spec": "x"}),
                "spec",
                "must be an object, not a string",
            ),
            (json!({"spec": null}), "spec", "must be an object, not null"),
            (with_s3(json!(null)), "spec.s3", "not null"),
            (with_s3(json!([1])), "spec.s3", "not an array"),
            (
                with_s3(json!({"credentialsSecretRef": "creds"})),
                "spec.s3.credentialsSecretRef",
                "must be an object",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {}})),
                "spec.s3.credentialsSecretRef.secretName",
                "is required",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": ""}})),
                "spec.s3.credentialsSecretRef.secretName",
                "must not be empty",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": 5}})),
                "spec.s3.credentialsSecretRef.secretName",
                "must be a string, not a number",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": "Bad_Name"}})),
                "spec.s3.credentialsSecretRef.secretName",
                "DNS-1123 subdomain",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": long}})),
                "spec.s3.credentialsSecretRef.secretName",
                "1-253 characters",
            ),
            (
                with_s3(
                    json!({"credentialsSecretRef": {"secretName": "c", "accessKeyIdKey": "a/b"}}),
                ),
                "spec.s3.credentialsSecretRef.accessKeyIdKey",
                "valid Secret key",
            ),
            (
                with_s3(
                    json!({"credentialsSecretRef": {"secretName": "c", "secretAccessKeyKey": ".."}}),
                ),
                "spec.s3.credentialsSecretRef.secretAccessKeyKey",
                "not '.'",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": "c", "endpointKey": null}})),
                "spec.s3.credentialsSecretRef.endpointKey",
                "not null",
            ),
            (
                with_s3(json!({"credentialsSecretRef": {"secretName": "c", "endpointKey": ""}})),
                "spec.s3.credentialsSecretRef.endpointKey",
                "1-253",
            ),
            (
                with_s3(
                    json!({"credentialsSecretRef": {"secretName": "c", "accessKeyIdKey": "k", "secretAccessKeyKey": "k"}}),
                ),
                "spec.s3.credentialsSecretRef",
                "accessKeyIdKey and secretAccessKeyKey must name different Secret keys",
            ),
            (
                with_s3(
                    json!({"credentialsSecretRef": {"secretName": "c", "endpointKey": "accessKeyId"}}),
                ),
                "spec.s3.credentialsSecretRef",
                "accessKeyIdKey and endpointKey",
            ),
            (
                with_s3(
                    json!({"credentialsSecretRef": {"secretName": "c", "secretAccessKeyKey": "endpoint"}}),
                ),
                "spec.s3.credentialsSecretRef",
                "secretAccessKeyKey and endpointKey",
            ),
            (
                with_s3(json!({"region": "EU-WEST-1"})),
                "spec.s3.region",
                "lowercase letters",
            ),
            (with_s3(json!({"region": ""})), "spec.s3.region", "1-63"),
            (
                with_s3(json!({"region": 1})),
                "spec.s3.region",
                "must be a string",
            ),
            (with_s3(json!({"bucket": "ab"})), "spec.s3.bucket", "3-63"),
            (
                with_s3(json!({"bucket": "10.1.2.3"})),
                "spec.s3.bucket",
                "IP address",
            ),
            (
                with_s3(json!({"bucket": "xn--abc"})),
                "spec.s3.bucket",
                "reserved prefix",
            ),
            (
                with_s3(json!({"bucket": "abc--table-s3"})),
                "spec.s3.bucket",
                "reserved suffix",
            ),
            (
                with_s3(json!({"bucket": false})),
                "spec.s3.bucket",
                "not a boolean",
            ),
        ];
        for (object, field, rule) in cases {
            let violations = parse_s3(&object).expect_err(&object.to_string());
            assert!(
                violations
                    .iter()
                    .any(|v| v.field == field && v.rule.contains(rule)),
                "{object}: expected {field}: {rule}, got {violations:?}"
            );
        }
    }

    #[test]
    fn all_violations_are_reported_together() {
        let violations = parse_s3(&with_s3(json!({
            "credentialsSecretRef": {"secretName": "Bad"}, "region": "X", "bucket": "y"})))
        .expect_err("three problems");
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.s3.credentialsSecretRef.secretName",
                "spec.s3.region",
                "spec.s3.bucket"
            ]
        );
    }
}
