//! The deploy kit agrees with metadata.yml and grants nothing beyond the two lookups.

mod common;

use std::collections::BTreeSet;

use common::{annotation, metadata, yaml, yaml_documents};
use dittofs_s3_policy::settings::{Settings, WorkloadMode};
use serde_json::{Value, json};

/// (apiGroup, apiVersion, resource, operation) tuples a list of admission rules matches.
fn rule_tuples(rules: &Value) -> BTreeSet<(String, String, String, String)> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    let mut tuples = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for version in strings(&rule["apiVersions"]) {
                for resource in strings(&rule["resources"]) {
                    for operation in strings(&rule["operations"]) {
                        tuples.insert((
                            group.clone(),
                            version.clone(),
                            resource.clone(),
                            operation,
                        ));
                    }
                }
            }
        }
    }
    tuples
}

fn resources_of(rules: &Value) -> BTreeSet<String> {
    rule_tuples(rules)
        .into_iter()
        .map(|(_, _, resource, _)| resource)
        .collect()
}

fn policies() -> [(&'static str, Value); 2] {
    [
        ("mutating", yaml("deploy/mutating-policy.yaml")),
        ("validating", yaml("deploy/validating-policy.yaml")),
    ]
}

fn deployed_settings(policy: &Value) -> Settings {
    let raw = serde_json::to_vec(&policy["spec"]["settings"]).expect("json");
    Settings::parse(&raw)
        .unwrap_or_else(|message| panic!("{}: {message}", policy["metadata"]["name"]))
}

#[test]
fn policies_use_this_module_on_the_dedicated_policy_server() {
    let metadata = metadata();
    let module = format!(
        "registry://{}:v{}",
        annotation(&metadata, "io.kubewarden.policy.ociUrl"),
        annotation(&metadata, "io.kubewarden.policy.version")
    );
    let server = yaml("deploy/policy-server.yaml");
    assert_eq!(server["kind"], "PolicyServer");
    for (name, policy) in policies() {
        assert_eq!(policy["apiVersion"], "policies.kubewarden.io/v1", "{name}");
        assert_eq!(
            policy["kind"], "ClusterAdmissionPolicy",
            "{name}: only cluster policies may be context aware"
        );
        assert_eq!(policy["spec"]["module"], json!(module), "{name}");
        assert_eq!(
            policy["spec"]["policyServer"], server["metadata"]["name"],
            "{name}"
        );
        assert_eq!(
            policy["spec"]["contextAwareResources"], metadata["contextAwareResources"],
            "{name}"
        );
    }
}

#[test]
fn policy_rules_stay_within_the_metadata_rules() {
    let allowed = rule_tuples(&metadata()["rules"]);
    for (name, policy) in policies() {
        let deployed = rule_tuples(&policy["spec"]["rules"]);
        assert!(!deployed.is_empty(), "{name}");
        let extra: Vec<_> = deployed.difference(&allowed).collect();
        assert!(
            extra.is_empty(),
            "{name} matches more than metadata.yml: {extra:?}"
        );
    }
}

#[test]
fn mutating_policy_injects_into_workloads() {
    let policy = yaml("deploy/mutating-policy.yaml");
    assert_eq!(policy["spec"]["mutating"], json!(true));
    assert_eq!(
        metadata()["mutating"],
        json!(true),
        "the module must be allowed to mutate"
    );
    assert_eq!(deployed_settings(&policy).workloads, WorkloadMode::Inject);
    assert_eq!(
        resources_of(&policy["spec"]["rules"]),
        BTreeSet::from(["pods".into(), "statefulsets".into()])
    );
    let tuples = rule_tuples(&policy["spec"]["rules"]);
    assert!(tuples.contains(&("".into(), "v1".into(), "pods".into(), "CREATE".into())));
    for operation in ["CREATE", "UPDATE"] {
        assert!(tuples.contains(&(
            "apps".into(),
            "v1".into(),
            "statefulsets".into(),
            operation.into()
        )));
    }
}

#[test]
fn validating_policy_verifies_and_audits() {
    let policy = yaml("deploy/validating-policy.yaml");
    assert_eq!(policy["spec"]["mutating"], json!(false));
    assert_eq!(policy["spec"]["backgroundAudit"], json!(true));
    assert_eq!(deployed_settings(&policy).workloads, WorkloadMode::Verify);
    assert_eq!(
        resources_of(&policy["spec"]["rules"]),
        BTreeSet::from(["dittoservers".into(), "pods".into(), "statefulsets".into()])
    );
    // The audit scanner replays existing objects as CREATE requests.
    let tuples = rule_tuples(&policy["spec"]["rules"]);
    for (group, resource) in [
        ("dittofs.dittofs.com", "dittoservers"),
        ("", "pods"),
        ("apps", "statefulsets"),
    ] {
        assert!(
            tuples
                .iter()
                .any(|(g, _, r, o)| g == group && r == resource && o == "CREATE"),
            "{resource}"
        );
    }
}

#[test]
fn rbac_grants_get_on_secrets_and_dittoservers_only() {
    let documents = yaml_documents("deploy/rbac.yaml");
    let server = yaml("deploy/policy-server.yaml");
    let account = documents
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .expect("ServiceAccount");
    assert_eq!(
        server["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );

    let roles: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .collect();
    assert_eq!(roles.len(), 1, "exactly one role");
    let granted: BTreeSet<(String, String, String)> = roles[0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|rule| {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .expect(key)
                    .iter()
                    .map(|v| v.as_str().expect("string").to_owned())
                    .collect()
            };
            assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
            let (groups, resources, verbs) = (list("apiGroups"), list("resources"), list("verbs"));
            groups.into_iter().flat_map(move |group| {
                let verbs = verbs.clone();
                resources.clone().into_iter().flat_map(move |resource| {
                    let group = group.clone();
                    verbs
                        .clone()
                        .into_iter()
                        .map(move |verb| (group.clone(), resource.clone(), verb))
                })
            })
        })
        .collect();
    let expected = BTreeSet::from([
        ("".to_owned(), "secrets".to_owned(), "get".to_owned()),
        (
            "dittofs.dittofs.com".to_owned(),
            "dittoservers".to_owned(),
            "get".to_owned(),
        ),
    ]);
    assert_eq!(granted, expected, "no list, no watch, nothing else");

    let binding = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("binding");
    assert_eq!(binding["roleRef"]["name"], roles[0]["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }])
    );
}

#[test]
fn every_deploy_manifest_parses_into_known_kinds() {
    let known = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PolicyServer",
        "ClusterAdmissionPolicy",
    ];
    let entries = std::fs::read_dir(common::repo_path("deploy")).expect("deploy/");
    for entry in entries {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        for document in yaml_documents(&format!("deploy/{name}")) {
            let kind = document["kind"].as_str().unwrap_or_default();
            assert!(known.contains(&kind), "{name}: unexpected kind {kind:?}");
        }
    }
}
