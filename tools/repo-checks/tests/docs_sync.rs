//! The docs and the kit name one version, the one being built; the kit's settings are valid for
//! it; the README's permissions are deploy/rbac.yaml's; the make targets the docs name exist.

mod common;

use std::collections::BTreeSet;

use common::{annotation, metadata, read, yaml_documents};
use dittofs_s3_policy::settings::Settings;
use regex::Regex;

fn version() -> String {
    annotation(&metadata(), "io.kubewarden.policy.version")
}

fn kit_policies() -> Vec<(String, serde_json::Value)> {
    let mut policies = Vec::new();
    for entry in std::fs::read_dir(common::repo_path("deploy")).expect("deploy/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".yaml") {
            continue;
        }
        for document in yaml_documents(&format!("deploy/{name}")) {
            if document["kind"] == "ClusterAdmissionPolicy" {
                policies.push((name.clone(), document));
            }
        }
    }
    assert!(policies.len() >= 3, "{policies:?}");
    policies
}

#[test]
fn the_kit_pins_this_version_and_its_settings_are_valid_for_it() {
    let oci = annotation(&metadata(), "io.kubewarden.policy.ociUrl");
    let module = format!("registry://{oci}:v{}", version());
    for (file, policy) in kit_policies() {
        assert_eq!(policy["spec"]["module"], module.as_str(), "{file}");
        let settings = serde_json::to_vec(&policy["spec"]["settings"]).expect("settings");
        Settings::parse(&settings).unwrap_or_else(|e| panic!("{file}: settings refused: {e}"));
    }
}

#[test]
fn the_changelog_has_a_section_for_this_version_naming_the_settings_it_accepts() {
    let changelog = read("CHANGELOG.md");
    let heading = format!("## [{}]", version());
    let section: String = changelog
        .split("\n## ")
        .find(|part| format!("## {part}").starts_with(&heading))
        .unwrap_or_else(|| panic!("CHANGELOG.md has no `{heading}` section"))
        .to_owned();
    let sentence = section
        .split("Settings it accepts:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("CHANGELOG.md {heading}: no `Settings it accepts:` paragraph"));
    let defaults = serde_json::to_value(Settings::default()).expect("settings");
    let accepted: BTreeSet<String> = defaults
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    let listed: BTreeSet<String> = Regex::new(r"`([a-zA-Z]+)`")
        .expect("regex")
        .captures_iter(sentence)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(
        listed, accepted,
        "CHANGELOG.md {heading}: the settings this version accepts"
    );
    // The README and the Artifact Hub install text install this version.
    let readme = read("README.md");
    for reference in Regex::new(r"(?:ref=|/)v(\d+\.\d+\.\d+)")
        .expect("regex")
        .captures_iter(&readme)
    {
        assert_eq!(&reference[1], version(), "README names v{}", &reference[1]);
    }
}

#[test]
fn the_readme_permissions_are_those_of_deploy_rbac() {
    let readme = read("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("| resource | verbs | why |"));
    assert!(lines.next().is_some(), "README has no permissions table");
    let documented: BTreeSet<(String, String)> = lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
            let resource = cells[0].trim_matches('`').to_owned();
            cells[1]
                .split(", ")
                .map(|verb| (resource.clone(), verb.trim_matches('`').to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut granted = BTreeSet::new();
    for document in yaml_documents("deploy/rbac.yaml") {
        if document["kind"] != "ClusterRole" && document["kind"] != "Role" {
            continue;
        }
        for rule in document["rules"].as_array().expect("rules") {
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    let group = group.as_str().expect("group");
                    let resource = resource.as_str().expect("resource");
                    let name = if group.is_empty() {
                        resource.to_owned()
                    } else {
                        format!("{resource}.{group}")
                    };
                    for verb in rule["verbs"].as_array().expect("verbs") {
                        granted.insert((name.clone(), verb.as_str().expect("verb").to_owned()));
                    }
                }
            }
        }
    }
    assert_eq!(
        documented, granted,
        "README permissions table vs deploy/rbac.yaml"
    );
}

#[test]
fn every_make_target_the_docs_name_exists() {
    let makefile = read("Makefile");
    let targets: BTreeSet<String> = makefile
        .lines()
        .filter(|line| !line.starts_with('\t') && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':').map(|(head, _)| head))
        .filter(|head| !head.contains('=') && !head.contains('$'))
        .flat_map(|head| {
            head.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut files = vec!["README.md".to_owned(), "CONTRIBUTING.md".to_owned()];
    for entry in std::fs::read_dir(common::repo_path("docs")).expect("docs/") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("name");
        files.push(format!("docs/{name}"));
    }
    let named = Regex::new(r"`make ([a-zA-Z0-9_./-]+)").expect("regex");
    let mut checked = 0;
    for file in files {
        for target in named.captures_iter(&read(&file)) {
            checked += 1;
            assert!(
                targets.contains(&target[1]),
                "{file} names `make {}`, which the Makefile lacks",
                &target[1]
            );
        }
    }
    assert!(
        checked > 10,
        "only {checked} make targets named in the docs"
    );
}
