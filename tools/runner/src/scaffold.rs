//! `scaffold artifacthub`: derives artifacthub-pkg.yml from metadata.yml, like kwctl.

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

const ANNOTATION_PREFIX: &str = "io.kubewarden.policy.";

fn annotation<'m>(metadata: &'m Value, key: &str) -> Result<&'m str> {
    metadata
        .pointer("/annotations")
        .and_then(|annotations| annotations.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("metadata.yml lacks the annotation {key}"))
}

fn policy_annotation<'m>(metadata: &'m Value, name: &str) -> Result<&'m str> {
    annotation(metadata, &format!("{ANNOTATION_PREFIX}{name}"))
}

/// YAML text of a metadata field, as the `kubewarden/*` annotations carry it.
fn yaml_of(root_key: Option<&str>, value: &Value) -> Result<String> {
    Ok(match root_key {
        Some(key) => serde_yaml::to_string(&json!({ key: value }))?,
        None => serde_yaml::to_string(value)?,
    })
}

/// The Artifact Hub package for `metadata` (validated metadata.yml as JSON), created at `created_at`.
pub fn artifacthub_package(
    metadata: &Value,
    questions: Option<&str>,
    created_at: &str,
) -> Result<Value> {
    let version = policy_annotation(metadata, "version")?;
    let source = policy_annotation(metadata, "source")?;
    let oci_url = policy_annotation(metadata, "ociUrl")?;
    let image = format!("{oci_url}:v{version}");
    let keywords: Vec<&str> = annotation(metadata, "io.artifacthub.keywords")?
        .split(',')
        .map(str::trim)
        .filter(|keyword| !keyword.is_empty())
        .collect();
    let mutating = metadata
        .get("mutating")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let rules = metadata
        .get("rules")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let mut annotations = json!({
        "kubewarden/mutation": mutating.to_string(),
        "kubewarden/resources": annotation(metadata, "io.artifacthub.resources")?,
        "kubewarden/rules": yaml_of(Some("rules"), &rules)?,
    });
    if let Some(resources) = metadata.get("contextAwareResources") {
        annotations["kubewarden/contextAwareResources"] = Value::String(yaml_of(None, resources)?);
    }
    if let Some(questions) = questions {
        annotations["kubewarden/questions-ui"] = Value::String(questions.to_owned());
    }
    Ok(json!({
        "version": version,
        "name": policy_annotation(metadata, "title")?,
        "displayName": annotation(metadata, "io.artifacthub.displayName")?,
        "createdAt": created_at,
        "description": policy_annotation(metadata, "description")?,
        "license": policy_annotation(metadata, "license")?,
        "homeURL": policy_annotation(metadata, "url")?,
        "containersImages": [{"name": "policy", "image": image}],
        "keywords": keywords,
        "links": [
            {"name": "policy", "url": format!("{source}/releases/download/v{version}/policy.wasm")},
            {"name": "source", "url": source},
        ],
        "install": format!("The policy can be obtained using [kwctl](https://github.com/kubewarden/kwctl):\n```console\nkwctl pull {image}\n```\n"),
        "maintainers": [{"name": policy_annotation(metadata, "author")?}],
        "provider": {"name": "kubewarden"},
        "recommendations": [{"url": "https://artifacthub.io/packages/helm/kubewarden/kubewarden-controller"}],
        "annotations": annotations,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Value {
        json!({
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}],
            "mutating": true,
            "contextAwareResources": [{"apiVersion": "v1", "kind": "Secret"}],
            "annotations": {
                "io.artifacthub.displayName": "Display", "io.artifacthub.resources": "Pod",
                "io.artifacthub.keywords": "a, b ,c", "io.kubewarden.policy.title": "t",
                "io.kubewarden.policy.version": "1.2.3", "io.kubewarden.policy.description": "d",
                "io.kubewarden.policy.author": "me", "io.kubewarden.policy.url": "https://example.com/t",
                "io.kubewarden.policy.source": "https://example.com/src", "io.kubewarden.policy.license": "Apache-2.0",
                "io.kubewarden.policy.ociUrl": "registry.example.com/policies/t",
            },
        })
    }

    #[test]
    fn package_is_derived_from_metadata() {
        let package =
            artifacthub_package(&metadata(), Some("questions: []\n"), "2026-11-28T00:00:00Z")
                .unwrap();
        assert_eq!(package["version"], "1.2.3");
        assert_eq!(
            package["containersImages"][0]["image"],
            "registry.example.com/policies/t:v1.2.3"
        );
        assert_eq!(package["keywords"], json!(["a", "b", "c"]));
        assert_eq!(
            package["links"][0]["url"],
            "https://example.com/src/releases/download/v1.2.3/policy.wasm"
        );
        assert_eq!(package["annotations"]["kubewarden/mutation"], "true");
        assert_eq!(
            package["annotations"]["kubewarden/questions-ui"],
            "questions: []\n"
        );
        let rules: Value =
            serde_yaml::from_str(package["annotations"]["kubewarden/rules"].as_str().unwrap())
                .unwrap();
        assert_eq!(rules["rules"], metadata()["rules"]);
        let resources: Value = serde_yaml::from_str(
            package["annotations"]["kubewarden/contextAwareResources"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(resources, metadata()["contextAwareResources"]);
    }

    #[test]
    fn missing_annotations_are_named() {
        let mut incomplete = metadata();
        incomplete["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("io.kubewarden.policy.ociUrl");
        let error = artifacthub_package(&incomplete, None, "now").unwrap_err();
        assert_eq!(
            error.to_string(),
            "metadata.yml lacks the annotation io.kubewarden.policy.ociUrl"
        );
    }
}
