//! The deploy kit agrees with metadata.yml, grants nothing beyond what the policy asks the host
//! for, and keeps its blast radius small: four policies with one job each, DittoFS objects
//! and the Secrets DittoServers name only, two PolicyServer replicas with a disruption budget, explicit timeouts.

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

fn policies() -> [(&'static str, Value); 4] {
    [
        ("inject", yaml("deploy/mutating-policy.yaml")),
        ("validate", yaml("deploy/validating-policy.yaml")),
        ("drift", yaml("deploy/drift-policy.yaml")),
        ("guard", yaml("deploy/secret-guard-policy.yaml")),
    ]
}

fn set_of(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not a list"))
        .iter()
        .map(|v| v.to_string())
        .collect()
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
    let guard_server = yaml("deploy/secret-guard-policy-server.yaml");
    assert_eq!(server["kind"], "PolicyServer");
    assert_eq!(guard_server["kind"], "PolicyServer");
    for (name, policy) in policies() {
        // The guard alone on its own server: a stalled list cannot hold the others' workers.
        let expected_server = if name == "guard" {
            &guard_server
        } else {
            &server
        };
        assert_eq!(policy["apiVersion"], "policies.kubewarden.io/v1", "{name}");
        assert_eq!(
            policy["kind"], "ClusterAdmissionPolicy",
            "{name}: only cluster policies may be context aware"
        );
        assert_eq!(policy["spec"]["module"], json!(module), "{name}");
        assert_eq!(
            policy["spec"]["policyServer"], expected_server["metadata"]["name"],
            "{name}"
        );
        let granted = set_of(&policy["spec"]["contextAwareResources"]);
        assert!(
            granted.is_subset(&set_of(&metadata["contextAwareResources"])),
            "{name}: grants more than metadata.yml declares"
        );
    }
    // Least privilege per policy: DittoServer validation reads Secrets only.
    assert_eq!(
        yaml("deploy/validating-policy.yaml")["spec"]["contextAwareResources"],
        json!([{"apiVersion": "v1", "kind": "Secret"}])
    );
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
fn inject_policy_mutates_workloads_in_protect_mode() {
    let policy = yaml("deploy/mutating-policy.yaml");
    assert_eq!(policy["spec"]["mutating"], json!(true));
    assert_eq!(policy["spec"]["mode"], json!("protect"));
    assert_eq!(policy["spec"]["backgroundAudit"], json!(false));
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
fn validate_policy_sees_dittoservers_only_and_audits_them() {
    let policy = yaml("deploy/validating-policy.yaml");
    assert_eq!(policy["spec"]["mutating"], json!(false));
    assert_eq!(policy["spec"]["mode"], json!("protect"));
    assert_eq!(policy["spec"]["backgroundAudit"], json!(true));
    deployed_settings(&policy);
    let tuples = rule_tuples(&policy["spec"]["rules"]);
    let expected: BTreeSet<_> = ["CREATE", "UPDATE"]
        .into_iter()
        .map(|operation| {
            (
                "dittofs.dittofs.com".to_owned(),
                "v1alpha1".to_owned(),
                "dittoservers".to_owned(),
                operation.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tuples, expected,
        "no workload rule: verify mode never sees a live write"
    );
}

#[test]
fn secret_guard_sees_secret_writes_only_fails_open_and_audits() {
    let policy = yaml("deploy/secret-guard-policy.yaml");
    let spec = &policy["spec"];
    assert_eq!(spec["mutating"], json!(false));
    assert_eq!(spec["mode"], json!("protect"));
    assert_eq!(spec["backgroundAudit"], json!(true));
    assert_eq!(
        spec["failurePolicy"],
        json!("Ignore"),
        "it sees every Secret write: an outage must not block them"
    );
    deployed_settings(&policy);
    let tuples = rule_tuples(&spec["rules"]);
    let expected: BTreeSet<_> = ["CREATE", "UPDATE", "DELETE"]
        .into_iter()
        .map(|operation| {
            (
                String::new(),
                "v1".to_owned(),
                "secrets".to_owned(),
                operation.to_owned(),
            )
        })
        .collect();
    assert_eq!(tuples, expected);
    assert_eq!(
        spec["contextAwareResources"],
        json!([{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer"}]),
        "it lists DittoServers and reads no other Secret"
    );
}

#[test]
fn drift_policy_reports_without_blocking() {
    let policy = yaml("deploy/drift-policy.yaml");
    let spec = &policy["spec"];
    assert_eq!(spec["mode"], json!("monitor"));
    assert_eq!(spec["mutating"], json!(false));
    assert_eq!(
        spec["backgroundAudit"],
        json!(true),
        "the audit scanner must run it"
    );
    assert_eq!(
        spec["failurePolicy"],
        json!("Ignore"),
        "a monitor policy never blocks"
    );
    assert_eq!(deployed_settings(&policy).workloads, WorkloadMode::Verify);
    // CREATE only: what the audit scanner replays; an UPDATE rule would evaluate live edits.
    let operations: BTreeSet<String> = rule_tuples(&spec["rules"])
        .into_iter()
        .map(|(_, _, _, operation)| operation)
        .collect();
    assert_eq!(operations, BTreeSet::from(["CREATE".to_owned()]));
    assert_eq!(
        resources_of(&spec["rules"]),
        BTreeSet::from(["pods".into(), "statefulsets".into()])
    );
}

#[test]
fn blast_radius_is_small() {
    for (name, policy) in policies() {
        let spec = &policy["spec"];
        // Explicit timeouts, the evaluation's shorter than the webhook's so the policy answers.
        let eval = spec["timeoutEvalSeconds"]
            .as_i64()
            .expect("timeoutEvalSeconds");
        let webhook = spec["timeoutSeconds"].as_i64().expect("timeoutSeconds");
        assert!(
            eval < webhook && webhook <= 10,
            "{name}: {eval}s < {webhook}s <= 10s"
        );
        assert!(
            spec["failurePolicy"] == "Fail" || spec["failurePolicy"] == "Ignore",
            "{name}: failurePolicy spelt out"
        );
        if spec["mode"] == "monitor" {
            assert_eq!(spec["failurePolicy"], "Ignore", "{name}");
        }
        // Never in kube-system nor Kubewarden's namespace (the one kustomization.yaml sets).
        let excluded = spec["namespaceSelector"]["matchExpressions"]
            .as_array()
            .expect("namespaceSelector.matchExpressions")
            .iter()
            .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
            .expect("a NotIn on kubernetes.io/metadata.name");
        assert_eq!(
            excluded["values"],
            json!(["kube-system", kubewarden_namespace()]),
            "{name}: kustomization.yaml replaces values[1]"
        );
        assert_eq!(
            spec["allowInsideAdmissionControllerNamespace"],
            json!(false)
        );
        assert!(
            !spec["matchConditions"]
                .as_array()
                .expect("matchConditions")
                .is_empty(),
            "{name}: matchConditions (tests/match_conditions.rs checks them)"
        );
        for annotation in [
            "io.kubewarden.policy.severity",
            "io.kubewarden.policy.category",
        ] {
            assert!(
                policy["metadata"]["annotations"][annotation].is_string(),
                "{name}: {annotation}"
            );
        }
    }
    let server = yaml("deploy/policy-server.yaml");
    assert_eq!(server["spec"]["replicas"], json!(2));
    assert_eq!(
        server["spec"]["minAvailable"],
        json!(1),
        "a disruption budget"
    );
    let guard_server = yaml("deploy/secret-guard-policy-server.yaml");
    assert_eq!(
        guard_server["spec"]["image"], server["spec"]["image"],
        "one Kubewarden version"
    );
    assert_ne!(
        guard_server["spec"]["serviceAccountName"], server["spec"]["serviceAccountName"],
        "the guard's server reads no Secret"
    );
    let image = server["spec"]["image"].as_str().expect("image");
    let (repository, tag) = image.rsplit_once(':').expect("a tag");
    assert_eq!(
        repository,
        "ghcr.io/kubewarden/adm-controller/policy-server"
    );
    let version = tag.strip_prefix('v').expect("v<version>");
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "a released version, not {tag}"
    );
}

/// The namespace the kit installs into: kustomization.yaml's one setting.
fn kubewarden_namespace() -> String {
    yaml("deploy/kustomization.yaml")["namespace"]
        .as_str()
        .expect("namespace")
        .to_owned()
}

#[test]
fn kustomization_installs_every_manifest_and_sets_the_namespace_everywhere() {
    let kustomization = yaml("deploy/kustomization.yaml");
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("string").to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(common::repo_path("deploy"))
        .expect("deploy/")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
    // The manifests carry the default namespace too, so a plain `kubectl apply -f` works.
    let namespace = kubewarden_namespace();
    let rbac = yaml_documents("deploy/rbac.yaml");
    let account = rbac
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .expect("account");
    assert_eq!(account["metadata"]["namespace"], json!(namespace));
    let replacement = &kustomization["replacements"][0];
    assert_eq!(replacement["source"]["kind"], "ServiceAccount");
    assert_eq!(replacement["source"]["name"], account["metadata"]["name"]);
    assert_eq!(replacement["source"]["fieldPath"], "metadata.namespace");
    assert_eq!(
        replacement["targets"][0]["fieldPaths"],
        json!([
            "spec.namespaceSelector.matchExpressions.[key=kubernetes.io/metadata.name].values.1"
        ])
    );
}

#[test]
fn audit_scanner_may_list_dittoservers_through_view() {
    let role = yaml("deploy/audit-scanner-rbac.yaml");
    assert_eq!(role["kind"], "ClusterRole");
    assert_eq!(
        role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        json!("true")
    );
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["dittofs.dittofs.com"], "resources": ["dittoservers"],
                "verbs": ["get", "list", "watch"]}])
    );
}

/// The grants each host capability the policy declares needs, by (apiGroup, resource, verb).
fn grants_for(metadata: &Value) -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for capability in metadata["hostCapabilities"]
        .as_array()
        .expect("hostCapabilities")
    {
        match capability.as_str().expect("string") {
            "kubernetes/get_resource" => {
                for resource in metadata["contextAwareResources"].as_array().expect("list") {
                    let (group, resource) = match resource["kind"].as_str().expect("kind") {
                        "Secret" => ("", "secrets"),
                        "DittoServer" => ("dittofs.dittofs.com", "dittoservers"),
                        other => panic!("no RBAC mapping for {other}"),
                    };
                    grants.insert((group.to_owned(), resource.to_owned(), "get".to_owned()));
                }
            }
            // The Secret guard lists DittoServers (secret_guard, ListRef::ditto_servers); the
            // host answers from a watch it starts, hence watch too.
            "kubernetes/list_resources_by_namespace" => {
                for verb in ["list", "watch"] {
                    grants.insert((
                        "dittofs.dittofs.com".to_owned(),
                        "dittoservers".to_owned(),
                        verb.to_owned(),
                    ));
                }
            }
            "kubernetes/can_i" => {
                grants.insert((
                    "authorization.k8s.io".to_owned(),
                    "subjectaccessreviews".to_owned(),
                    "create".to_owned(),
                ));
            }
            other => panic!("{other}: add the RBAC it needs to deploy/rbac.yaml and here"),
        }
    }
    grants
}

/// (apiGroup, resource, verb) tuples a role grants; no resourceNames, no nonResourceURLs.
fn role_grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_str().expect("string").to_owned())
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

/// What the ServiceAccount of the PolicyServer in `server_file` is granted, through the one
/// ClusterRoleBinding of rbac.yaml that names it.
fn server_grants(server_file: &str) -> BTreeSet<(String, String, String)> {
    let documents = yaml_documents("deploy/rbac.yaml");
    let server = yaml(server_file);
    let account = documents
        .iter()
        .find(|d| {
            d["kind"] == "ServiceAccount"
                && d["metadata"]["name"] == server["spec"]["serviceAccountName"]
        })
        .unwrap_or_else(|| panic!("{server_file}: its ServiceAccount is in rbac.yaml"));
    let subject = json!([{
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": account["metadata"]["namespace"],
    }]);
    let bindings: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" && d["subjects"] == subject)
        .collect();
    assert_eq!(
        bindings.len(),
        1,
        "{server_file}: one binding, for it alone"
    );
    let role = documents
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRole" && d["metadata"]["name"] == bindings[0]["roleRef"]["name"]
        })
        .expect("the bound role");
    role_grants(role)
}

#[test]
fn rbac_grants_what_the_host_capabilities_need_and_nothing_else() {
    let documents = yaml_documents("deploy/rbac.yaml");
    assert!(
        documents.iter().all(|d| d["kind"] != "Role"),
        "cluster-wide roles only"
    );
    let needed = grants_for(&metadata());
    let main = server_grants("deploy/policy-server.yaml");
    let guard = server_grants("deploy/secret-guard-policy-server.yaml");
    // The Secret guard judges the Secret of the request: its server only lists DittoServers.
    let listing: BTreeSet<_> = ["list", "watch"]
        .into_iter()
        .map(|verb| {
            (
                "dittofs.dittofs.com".to_owned(),
                "dittoservers".to_owned(),
                verb.to_owned(),
            )
        })
        .collect();
    assert_eq!(guard, listing, "the guard's server reads no Secret");
    assert_eq!(
        main,
        needed.difference(&listing).cloned().collect(),
        "no list, no watch, nothing else"
    );
    let roles = documents
        .iter()
        .filter(|d| d["kind"] == "ClusterRole")
        .count();
    assert_eq!(roles, 2, "one role per PolicyServer");
}

#[test]
fn every_deploy_manifest_parses_into_known_kinds() {
    let known = [
        "ServiceAccount",
        "Kustomization",
        "ClusterRole",
        "ClusterRoleBinding",
        "PolicyServer",
        "ClusterAdmissionPolicy",
    ];
    let files = ["deploy", "deploy/opt-in"].into_iter().flat_map(|folder| {
        std::fs::read_dir(common::repo_path(folder))
            .expect(folder)
            .map(move |entry| {
                let name = entry.expect("entry").file_name().into_string();
                format!("{folder}/{}", name.expect("utf-8"))
            })
    });
    for name in files.filter(|name| name.ends_with(".yaml")) {
        for document in yaml_documents(&name) {
            let kind = document["kind"].as_str().unwrap_or_default();
            assert!(known.contains(&kind), "{name}: unexpected kind {kind:?}");
        }
    }
}

#[test]
fn the_opt_in_audit_grant_lets_the_scanner_list_secrets_and_nothing_else() {
    let documents = yaml_documents("deploy/opt-in/audit-scanner-secrets-rbac.yaml");
    let role = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("role");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    );
    let binding = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("binding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], json!("audit-scanner"));
}

#[test]
fn every_policy_applies_the_same_endpoint_rules() {
    // The guard judges Secret writes with its own settings: an endpoint it admits must be one
    // the validate, inject and drift policies admit too, and the other way round.
    let rules = |policy: &Value| {
        let settings = deployed_settings(policy);
        (
            settings.allowed_endpoint_hosts,
            settings.allow_insecure_endpoint,
        )
    };
    let all = policies();
    let (_, first) = &all[0];
    for (name, policy) in &all {
        assert_eq!(rules(policy), rules(first), "{name}: endpoint settings");
    }
}
