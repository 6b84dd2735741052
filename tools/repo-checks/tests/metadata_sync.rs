//! Versions and annotations agree across Cargo.toml, metadata.yml, artifacthub-pkg.yml and
//! questions-ui.yml, and the settings form covers exactly the settings schema.

mod common;

use std::collections::BTreeSet;

use common::{annotation, metadata, read, yaml};
use dittofs_s3_policy::settings::Settings;
use serde_json::{Value, json};

fn cargo_version() -> String {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    manifest["package"]["version"]
        .as_str()
        .expect("version")
        .to_owned()
}

fn yaml_text(value: &Value) -> Value {
    serde_yaml::from_str(value.as_str().expect("YAML text")).expect("YAML")
}

#[test]
fn versions_agree() {
    let metadata = metadata();
    let version = annotation(&metadata, "io.kubewarden.policy.version");
    assert_eq!(cargo_version(), version, "Cargo.toml and metadata.yml");
    let package = yaml("artifacthub-pkg.yml");
    assert_eq!(
        package["version"],
        json!(version),
        "artifacthub-pkg.yml (make artifacthub-pkg.yml)"
    );
    let image = format!(
        "{}:v{version}",
        annotation(&metadata, "io.kubewarden.policy.ociUrl")
    );
    assert_eq!(
        package["containersImages"],
        json!([{"name": "policy", "image": image}])
    );
}

#[test]
fn artifacthub_package_reflects_metadata() {
    let metadata = metadata();
    let package = yaml("artifacthub-pkg.yml");
    for (field, key) in [
        ("name", "io.kubewarden.policy.title"),
        ("displayName", "io.artifacthub.displayName"),
        ("description", "io.kubewarden.policy.description"),
        ("license", "io.kubewarden.policy.license"),
        ("homeURL", "io.kubewarden.policy.url"),
    ] {
        assert_eq!(package[field], json!(annotation(&metadata, key)), "{field}");
    }
    let annotations = &package["annotations"];
    assert_eq!(
        annotations["kubewarden/mutation"],
        json!(metadata["mutating"].to_string())
    );
    assert_eq!(
        annotations["kubewarden/resources"],
        json!(annotation(&metadata, "io.artifacthub.resources"))
    );
    assert_eq!(
        yaml_text(&annotations["kubewarden/rules"])["rules"],
        metadata["rules"]
    );
    assert_eq!(
        yaml_text(&annotations["kubewarden/contextAwareResources"]),
        metadata["contextAwareResources"]
    );
    assert_eq!(
        annotations["kubewarden/questions-ui"],
        json!(read("questions-ui.yml"))
    );
}

#[test]
fn settings_form_covers_exactly_the_settings() {
    let questions = yaml("questions-ui.yml");
    let variables: BTreeSet<String> = questions["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| q["variable"].as_str().expect("variable").to_owned())
        .collect();
    let schema = serde_json::to_value(Settings::default()).expect("settings");
    let fields: BTreeSet<String> = schema
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(variables, fields);
    // Every default the form offers is a valid setting on its own.
    for question in questions["questions"].as_array().expect("questions") {
        if let Some(default) = question.get("default") {
            let one = json!({ question["variable"].as_str().expect("variable"): default });
            Settings::parse(&serde_json::to_vec(&one).expect("json"))
                .unwrap_or_else(|e| panic!("{one}: {e}"));
        }
    }
}
