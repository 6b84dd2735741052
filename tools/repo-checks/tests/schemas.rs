//! Every manifest in deploy/ and examples/ against the real schemas it is written for:
//! Kubewarden's CRDs (v1.35) and the DittoFS CRD (the operator releases with spec.s3), copied
//! from ../shared into tools/repo-checks/schemas; built-in kinds through a strict round trip of
//! their Kubernetes types. And the checker itself catches broken manifests.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use repo_checks::schema::{self, Crd};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The copies of ../shared's CRDs (see schemas/README.md).
fn schemas(relative: &str) -> PathBuf {
    common::repo_path("tools/repo-checks/schemas").join(relative)
}

fn crds() -> BTreeMap<String, Crd> {
    let mut crds = schema::load_crds(&schemas("kubewarden"));
    crds.extend(schema::load_crds(&schemas("dittofs")));
    for kind in ["ClusterAdmissionPolicy", "PolicyServer", "DittoServer"] {
        assert!(crds.contains_key(kind), "no CRD for {kind}");
    }
    crds
}

#[test]
fn the_schema_copies_are_those_in_shared() {
    let shared = common::repo_path("../shared");
    if !shared.is_dir() {
        eprintln!("SKIPPED: no ../shared beside the repository to compare the CRD copies with");
        return;
    }
    let mut compared = 0;
    for (copies, original) in [
        ("kubewarden", "kubewarden/crds"),
        ("kubewarden", "kubewarden"),
        ("dittofs", "dittofs"),
    ] {
        for entry in std::fs::read_dir(schemas(copies)).expect("schemas") {
            let name = entry.expect("entry").file_name();
            let original = shared.join(original).join(&name);
            if !original.is_file() {
                continue;
            }
            let copy = std::fs::read(schemas(copies).join(&name)).expect("copy");
            assert!(
                copy == std::fs::read(&original).expect("original"),
                "{} differs from {}",
                name.to_string_lossy(),
                original.display()
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared, 8,
        "5 Kubewarden CRDs, their license, the DittoFS CRD and its license"
    );
}

/// The YAML manifests of a folder of the repository (kustomization.yaml is kustomize's own
/// configuration, not a Kubernetes object: deploy_kit.rs checks it).
fn manifests(folder: &str) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(common::repo_path(folder))
        .expect(folder)
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|name| {
            (name.ends_with(".yaml") || name.ends_with(".yml")) && name != "kustomization.yaml"
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .flat_map(|name| {
            let file = format!("{folder}/{name}");
            common::yaml_documents(&file)
                .into_iter()
                .map(move |document| (file.clone(), document))
        })
        .collect()
}

/// A built-in object is valid when its Kubernetes type reads it (types and required fields)
/// and writes every field back (no unknown or misspelt field was dropped).
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Vec<String> {
    let typed: T = match serde_json::from_value(object.clone()) {
        Ok(typed) => typed,
        Err(error) => return vec![error.to_string()],
    };
    let written = serde_json::to_value(&typed).expect("serialize");
    let mut errors = Vec::new();
    diff(object, &written, "", &mut errors);
    errors
}

fn diff(original: &Value, written: &Value, path: &str, errors: &mut Vec<String>) {
    match (original, written) {
        (Value::Object(original), Value::Object(written)) => {
            for (key, value) in original {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match written.get(key) {
                    Some(kept) => diff(value, kept, &child, errors),
                    None => errors.push(format!("{child}: unknown field")),
                }
            }
            // The types write required fields even when they were left out (as empty values).
            for key in written.keys().filter(|key| !original.contains_key(*key)) {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                errors.push(format!("{child}: required field missing"));
            }
        }
        (Value::Array(original), Value::Array(written)) if original.len() == written.len() => {
            for (index, (a, b)) in original.iter().zip(written).enumerate() {
                diff(a, b, &format!("{path}[{index}]"), errors);
            }
        }
        (a, b) if a == b => {}
        (a, b) => errors.push(format!("{path}: {a} came back as {b}")),
    }
}

fn built_in(object: &Value) -> Option<Vec<String>> {
    use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let kind = object["kind"].as_str()?;
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let errors = match (api_version, kind) {
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(object),
        ("v1", "Secret") => round_trip::<Secret>(object),
        ("v1", "Namespace") => round_trip::<Namespace>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(object)
        }
        _ => return None,
    };
    let namespaced = matches!(kind, "ServiceAccount" | "Secret");
    let mut errors = errors;
    schema::check_metadata(&object["metadata"], namespaced, &mut errors);
    Some(errors)
}

/// Every problem of one manifest, whatever its kind.
fn problems(crds: &BTreeMap<String, Crd>, object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Some(crd) = crds.get(kind) {
        return schema::validate_custom_resource(crd, object);
    }
    built_in(object).unwrap_or_else(|| vec![format!("kind {kind:?}: no schema known to check it")])
}

#[test]
fn every_manifest_in_deploy_and_examples_matches_its_schema() {
    let crds = crds();
    let mut checked = 0;
    let mut failures = Vec::new();
    for folder in ["deploy", "examples"] {
        for (file, object) in manifests(folder) {
            checked += 1;
            for problem in problems(&crds, &object) {
                failures.push(format!(
                    "{file} ({} {}): {problem}",
                    object["kind"], object["metadata"]["name"]
                ));
            }
        }
    }
    assert!(checked >= 9, "only {checked} manifests found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn policy(file: &str) -> Value {
    common::yaml(file)
}

fn expect_problem(crds: &BTreeMap<String, Crd>, object: &Value, needle: &str) {
    let found = problems(crds, object);
    assert!(
        found.iter().any(|problem| problem.contains(needle)),
        "expected a problem containing {needle:?}, got {found:?}"
    );
}

#[test]
fn broken_manifests_are_caught() {
    let crds = crds();
    let base = policy("deploy/mutating-policy.yaml");
    assert!(problems(&crds, &base).is_empty());

    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut copy = base.clone();
        edit(&mut copy);
        copy
    };
    // A misspelt field is an unknown field, not silently ignored.
    let misspelt = broken(&|p| {
        let conditions = p["spec"]["matchConditions"].clone();
        p["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("matchConditions");
        p["spec"]["matchCondition"] = conditions;
    });
    expect_problem(&crds, &misspelt, "spec.matchCondition: unknown field");
    expect_problem(
        &crds,
        &broken(&|p| p["spec"]["mode"] = json!("audit")),
        "spec.mode: \"audit\" is not one of",
    );
    expect_problem(
        &crds,
        &broken(&|p| p["spec"]["timeoutSeconds"] = json!("8")),
        "spec.timeoutSeconds: must be integer, not string",
    );
    expect_problem(
        &crds,
        &broken(&|p| p["spec"]["timeoutEvalSeconds"] = json!(60)),
        "above the maximum 30",
    );
    expect_problem(
        &crds,
        &broken(&|p| {
            p["spec"].as_object_mut().expect("spec").remove("module");
        }),
        "spec.module: required",
    );
    expect_problem(
        &crds,
        &broken(&|p| p["spec"]["matchConditions"][0] = json!({"name": "x"})),
        "spec.matchConditions[0].expression: required",
    );
    expect_problem(
        &crds,
        &broken(&|p| p["apiVersion"] = json!("policies.kubewarden.io/v2")),
        "not a served version",
    );
    expect_problem(
        &crds,
        &broken(&|p| p["metadata"]["namespace"] = json!("kubewarden")),
        "metadata.namespace: set on a cluster-scoped kind",
    );
    // Settings are free-form for the CRD (the policy's own validate_settings checks them).
    assert!(
        problems(
            &crds,
            &broken(&|p| p["spec"]["settings"]["anything"] = json!(1))
        )
        .is_empty()
    );

    let mut server = policy("deploy/policy-server.yaml");
    server["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("replicas");
    expect_problem(&crds, &server, "spec.replicas: required");
    let mut server = policy("deploy/policy-server.yaml");
    server["spec"]["minAvailable"] = json!(true);
    expect_problem(&crds, &server, "must be an integer or a string");

    let mut ditto = common::yaml("examples/dittoserver.yaml");
    ditto["spec"]["s3"]["credentialsSecretRef"]
        .as_object_mut()
        .expect("ref")
        .remove("secretName");
    expect_problem(
        &crds,
        &ditto,
        "spec.s3.credentialsSecretRef.secretName: required",
    );
    let mut ditto = common::yaml("examples/dittoserver.yaml");
    ditto["spec"]["s3"]["regoin"] = json!("eu-west-1");
    expect_problem(&crds, &ditto, "spec.s3.regoin: unknown field");

    let rbac = common::yaml_documents("deploy/rbac.yaml");
    let mut binding = rbac
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("binding")
        .clone();
    binding["subjects"][0]["namespce"] = json!("kubewarden");
    expect_problem(&crds, &binding, "subjects[0].namespce: unknown field");
    let mut role = rbac
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("role")
        .clone();
    role["rules"][0]
        .as_object_mut()
        .expect("rule")
        .remove("verbs");
    expect_problem(&crds, &role, "rules[0].verbs: required field missing");
    expect_problem(
        &crds,
        &json!({"apiVersion": "v1", "kind": "ConfigMap"}),
        "no schema known",
    );
}

#[test]
fn the_dittoserver_example_targets_the_crd_with_spec_s3() {
    // examples/dittoserver.yaml is for operator releases v0.4.1 to v0.12.0; a CRD without
    // spec.s3 (v0.13.0 on) rejects it as an unknown field, which this reproduces.
    let crds = crds();
    let mut without_s3 = crds["DittoServer"].schemas["dittofs.dittofs.com/v1alpha1"].clone();
    without_s3["properties"]["spec"]["properties"]
        .as_object_mut()
        .expect("spec properties")
        .remove("s3");
    let crd = Crd {
        kind: "DittoServer".to_owned(),
        namespaced: true,
        schemas: BTreeMap::from([("dittofs.dittofs.com/v1alpha1".to_owned(), without_s3)]),
    };
    let example = common::yaml("examples/dittoserver.yaml");
    assert_eq!(
        schema::validate_custom_resource(&crd, &example),
        ["spec.s3: unknown field"]
    );
}
