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
    // kwctl writes the rules as a bare list and sorts the context-aware resources.
    assert_eq!(
        yaml_text(&annotations["kubewarden/rules"]),
        metadata["rules"]
    );
    let sorted = |value: Value| {
        let mut list: Vec<String> = value
            .as_array()
            .expect("list")
            .iter()
            .map(Value::to_string)
            .collect();
        list.sort();
        list
    };
    assert_eq!(
        sorted(yaml_text(&annotations["kubewarden/contextAwareResources"])),
        sorted(metadata["contextAwareResources"].clone())
    );
    // Every maintainer has an email: kwctl derives them from io.kubewarden.policy.author.
    for maintainer in package["maintainers"].as_array().expect("maintainers") {
        assert!(
            maintainer["email"]
                .as_str()
                .is_some_and(|e| e.contains('@')),
            "{maintainer}"
        );
    }
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

/// The kwctl that generates artifacthub-pkg.yml: the build beside the repository, else `kwctl`
/// on PATH.
fn kwctl() -> Option<std::path::PathBuf> {
    let beside = common::repo_path("../shared/tools/kwctl/kwctl");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("kwctl"))
            .find(|candidate| candidate.is_file())
    })
}

#[test]
fn artifacthub_package_is_what_kwctl_scaffold_writes() {
    let Some(kwctl) = kwctl() else {
        eprintln!("SKIPPED: no kwctl (../shared/tools/kwctl/kwctl or PATH) to compare with");
        return;
    };
    let output = std::process::Command::new(&kwctl)
        .current_dir(common::repo_path("."))
        .args(["scaffold", "artifacthub", "--metadata-path", "metadata.yml"])
        .args(["--questions-path", "questions-ui.yml"])
        .output()
        .expect("run kwctl");
    assert!(
        output.status.success(),
        "kwctl scaffold artifacthub refused metadata.yml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Byte for byte but for the creation time (what check-artifacthub ignores too), and the
    // final newline that kwctl adds on stdout but not with --output.
    // The install text is ours (artifacthub-install.md, put in place by the Makefile).
    let without_created_at_and_install = |text: &str| -> Vec<String> {
        let mut in_install = false;
        text.trim_end()
            .lines()
            .filter(|line| {
                if line.starts_with("install:") {
                    in_install = true;
                } else if !line.starts_with(' ') {
                    in_install = false;
                }
                !in_install && !line.starts_with("createdAt:")
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        without_created_at_and_install(&read("artifacthub-pkg.yml")),
        without_created_at_and_install(&String::from_utf8(output.stdout).expect("utf-8")),
        "artifacthub-pkg.yml differs from kwctl's: run `make artifacthub-pkg.yml`"
    );
}

#[test]
fn artifacthub_install_text_is_the_kit_at_this_version() {
    let package = yaml("artifacthub-pkg.yml");
    let install = package["install"].as_str().expect("install");
    assert_eq!(
        install,
        read("artifacthub-install.md"),
        "run `make artifacthub-pkg.yml`"
    );
    let version = annotation(&metadata(), "io.kubewarden.policy.version");
    assert!(
        install.contains(&format!("//deploy?ref=v{version}")),
        "{install}"
    );
    assert!(
        !install.contains("kwctl scaffold manifest -t"),
        "the generic install cannot work"
    );
}
