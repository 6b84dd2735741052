//! Policy settings: the whole schema, its defaults, and the checks `validate_settings` runs.

use kubewarden_policy_sdk::settings::Validatable;
use serde::{Deserialize, Serialize};

use crate::naming;

/// What to do with problems found in the Secret a DittoServer names.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SecretCheck {
    /// Accept with a warning (what the operator's own webhook did).
    #[default]
    Warn,
    /// Reject the DittoServer.
    Reject,
    /// Do not look the Secret up at all.
    Skip,
}

/// What to do when the author of a DittoServer may not read the Secret it names.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SecretAccessCheck {
    /// Reject the DittoServer: naming a Secret is a way to read it through the pods.
    #[default]
    Reject,
    /// Accept with a warning (while RBAC is being sorted out).
    Warn,
    /// Do not ask.
    Skip,
}

/// What to do when a container already defines one of the injected variables differently.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum OnEnvConflict {
    #[default]
    Reject,
    Overwrite,
}

/// What to do when the DittoFS container holds a definition that can send the injected
/// credentials elsewhere or change what is trusted (see `workload::routes`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum OnCredentialRoute {
    /// Refuse the workload (verify mode: report it as a rejection).
    #[default]
    Reject,
    /// Admit it with a warning.
    Warn,
}

/// What the Secret guard does with a Secret write that would break a DittoServer naming it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SecretGuard {
    /// Refuse the write, naming each DittoServer it would break.
    #[default]
    Reject,
    /// Accept it with a warning that names them.
    Warn,
}

/// How Pods and StatefulSets are handled.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum WorkloadMode {
    /// Mutate: add the credentials env and hash.
    #[default]
    Inject,
    /// Validate only: reject workloads whose env or hash is missing or stale.
    Verify,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    pub container_name: String,
    pub hash_annotation: String,
    pub secret_check: SecretCheck,
    pub secret_access_check: SecretAccessCheck,
    pub on_env_conflict: OnEnvConflict,
    pub on_credential_route: OnCredentialRoute,
    pub workloads: WorkloadMode,
    pub secret_guard: SecretGuard,
    /// `None` allows any valid region.
    #[serde(deserialize_with = "empty_means_any")]
    pub allowed_regions: Option<Vec<String>>,
    /// `None` allows any endpoint host.
    #[serde(deserialize_with = "empty_means_any")]
    pub allowed_endpoint_hosts: Option<Vec<String>>,
    pub allow_insecure_endpoint: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            container_name: "dittofs".to_owned(),
            hash_annotation: "dittofs.io/s3-credentials-hash".to_owned(),
            secret_check: SecretCheck::default(),
            secret_access_check: SecretAccessCheck::default(),
            on_env_conflict: OnEnvConflict::default(),
            on_credential_route: OnCredentialRoute::default(),
            workloads: WorkloadMode::default(),
            secret_guard: SecretGuard::default(),
            allowed_regions: None,
            allowed_endpoint_hosts: None,
            allow_insecure_endpoint: false,
        }
    }
}

impl Settings {
    /// Parses and validates settings JSON; the error is the message shown to the user.
    /// `null` means no settings; anything but an object is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| format!("invalid settings: {e}"))?;
        let settings = match value {
            serde_json::Value::Null => Settings::default(),
            serde_json::Value::Object(_) => {
                Settings::deserialize(value).map_err(|e| format!("invalid settings: {e}"))?
            }
            _ => return Err("invalid settings: expected a JSON object".to_owned()),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// Annotation keys the hash may not take over, with whose they are.
const RESERVED_ANNOTATIONS: [(&str, &str); 2] = [
    (
        crate::workload::ownership::RECORD_ANNOTATION,
        "the policy's own record of what it injected",
    ),
    (
        "dittofs.io/config-hash",
        "the DittoFS operator's config hash, which rolls pods on config changes",
    ),
];

/// An allow-list given as `[]` or `null` allows anything, as when it is left out: that is what
/// Kubewarden's UI sends for an empty list field, and "allow nothing" would only lock a cluster up.
fn empty_means_any<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let list: Option<Vec<String>> = Option::deserialize(deserializer)?;
    Ok(list.filter(|entries| !entries.is_empty()))
}

/// Checks that every entry of an allow-list satisfies `rule`.
fn validate_list(
    field: &str,
    entries: &Option<Vec<String>>,
    rule: fn(&str) -> Result<(), &'static str>,
) -> Result<(), String> {
    let Some(entries) = entries else {
        return Ok(());
    };
    for (index, entry) in entries.iter().enumerate() {
        rule(entry).map_err(|broken| format!("{field}[{index}] \"{entry}\" {broken}"))?;
    }
    Ok(())
}

impl Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        naming::dns1123_label(&self.container_name)
            .map_err(|rule| format!("containerName \"{}\" {rule}", self.container_name))?;
        naming::annotation_key(&self.hash_annotation).map_err(|rule| {
            format!(
                "hashAnnotation \"{}\" is not a valid annotation key: it {rule}",
                self.hash_annotation
            )
        })?;
        if let Some(owner) = RESERVED_ANNOTATIONS
            .iter()
            .find(|(key, _)| *key == self.hash_annotation)
            .map(|(_, owner)| owner)
        {
            return Err(format!(
                "hashAnnotation \"{}\" is {owner}: the hash would overwrite it; choose another key",
                self.hash_annotation
            ));
        }
        validate_list("allowedRegions", &self.allowed_regions, naming::region)?;
        validate_list(
            "allowedEndpointHosts",
            &self.allowed_endpoint_hosts,
            naming::endpoint_host_pattern,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_gives_documented_defaults() {
        let settings = Settings::parse(b"{}").expect("defaults are valid");
        assert_eq!(settings.container_name, "dittofs");
        assert_eq!(settings.hash_annotation, "dittofs.io/s3-credentials-hash");
        assert_eq!(settings.secret_check, SecretCheck::Warn);
        assert_eq!(settings.secret_access_check, SecretAccessCheck::Reject);
        assert_eq!(settings.on_env_conflict, OnEnvConflict::Reject);
        assert_eq!(settings.on_credential_route, OnCredentialRoute::Reject);
        assert_eq!(settings.workloads, WorkloadMode::Inject);
        assert_eq!(settings.allowed_regions, None);
        assert_eq!(settings.allowed_endpoint_hosts, None);
        assert!(!settings.allow_insecure_endpoint);
    }

    #[test]
    fn null_means_defaults() {
        assert_eq!(Settings::parse(b"null"), Ok(Settings::default()));
    }

    #[test]
    fn full_settings_parse() {
        let raw = br#"{"containerName":"server","hashAnnotation":"example.com/hash",
            "secretCheck":"reject","onEnvConflict":"overwrite","onCredentialRoute":"warn",
            "workloads":"verify",
            "allowedRegions":["eu-west-1","auto"],"allowedEndpointHosts":["*.cubbit.eu"],
            "allowInsecureEndpoint":true}"#;
        let settings = Settings::parse(raw).expect("valid");
        assert_eq!(settings.secret_check, SecretCheck::Reject);
        assert_eq!(settings.on_env_conflict, OnEnvConflict::Overwrite);
        assert_eq!(settings.on_credential_route, OnCredentialRoute::Warn);
        assert_eq!(settings.workloads, WorkloadMode::Verify);
        assert_eq!(
            settings.allowed_endpoint_hosts,
            Some(vec!["*.cubbit.eu".to_owned()])
        );
        assert!(settings.allow_insecure_endpoint);
    }

    #[test]
    fn invalid_settings_are_rejected_with_the_field_named() {
        let cases: &[(&str, &str)] = &[
            (r#"{"unknown":1}"#, "unknown field `unknown`"),
            (r#"{"secretCheck":"maybe"}"#, "unknown variant `maybe`"),
            (r#"{"onEnvConflict":"merge"}"#, "unknown variant `merge`"),
            (r#"{"workloads":"audit"}"#, "unknown variant `audit`"),
            (
                r#"{"onCredentialRoute":"allow"}"#,
                "unknown variant `allow`",
            ),
            (
                r#"{"hashAnnotation":"dittofs.io/s3-credentials-source"}"#,
                "hashAnnotation \"dittofs.io/s3-credentials-source\" is the policy's own record",
            ),
            (
                r#"{"hashAnnotation":"dittofs.io/config-hash"}"#,
                "hashAnnotation \"dittofs.io/config-hash\" is the DittoFS operator's config hash",
            ),
            (
                r#"{"containerName":"Ditto_FS"}"#,
                "containerName \"Ditto_FS\"",
            ),
            (r#"{"containerName":""}"#, "containerName"),
            (
                r#"{"hashAnnotation":"bad key!"}"#,
                "hashAnnotation \"bad key!\"",
            ),
            (
                r#"{"allowedRegions":["eu-west-1","EU"]}"#,
                "allowedRegions[1] \"EU\"",
            ),
            (
                r#"{"allowedEndpointHosts":["https://s3.cubbit.eu"]}"#,
                "allowedEndpointHosts[0]",
            ),
            (r#"{"allowInsecureEndpoint":"yes"}"#, "invalid type"),
            (r#"[]"#, "invalid settings: expected a JSON object"),
            (r#""dittofs""#, "invalid settings: expected a JSON object"),
            (r#"not json"#, "invalid settings"),
        ];
        for (raw, expected) in cases {
            let err = Settings::parse(raw.as_bytes()).expect_err(raw);
            assert!(err.contains(expected), "{raw}: {err}");
        }
    }

    #[test]
    fn empty_or_null_allow_lists_allow_anything() {
        for raw in [
            r#"{"allowedRegions":[],"allowedEndpointHosts":[]}"#,
            r#"{"allowedRegions":null,"allowedEndpointHosts":null}"#,
        ] {
            let settings = Settings::parse(raw.as_bytes()).expect(raw);
            assert_eq!(settings.allowed_regions, None, "{raw}");
            assert_eq!(settings.allowed_endpoint_hosts, None, "{raw}");
        }
    }
}
