//! The matchConditions of every policy in deploy/: valid CEL that, on every request of
//! test_data/ and test_data/hostile/ that the policy's rules would send, admits exactly what the
//! policy acts on and refuses the rest, without ever failing (with failurePolicy Fail, a
//! condition that errors rejects the request).
//!
//! The API server binds `object` (null on DELETE), `oldObject` (null on CREATE) and `request`;
//! so does this test, with the `cel` crate's interpreter.

#[allow(dead_code)]
mod common;

use cel::{Context, Program};
use dittofs_s3_policy::secret_guard::NOT_CREDENTIALS;
use dittofs_s3_policy::workload::{WorkloadKind, owning_dittoserver};
use serde_json::{Value, json};

/// A sample AdmissionRequest and the file it came from.
struct Request {
    name: String,
    raw: Value,
}

impl Request {
    fn field(&self, pointer: &str) -> &str {
        self.raw
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn object(&self) -> &Value {
        self.raw.get("object").unwrap_or(&Value::Null)
    }
}

/// Every AdmissionRequest in test_data/ and test_data/hostile/ that an API server could send:
/// those without the fields an API server always sets (uid, kind, resource), those the
/// policy's SDK cannot read (a numeric uid) and those nested past the JSON parser's limit are
/// left out, with their names returned.
fn requests() -> (Vec<Request>, Vec<String>) {
    let mut requests = Vec::new();
    let mut unreadable = Vec::new();
    for folder in ["test_data", "test_data/hostile"] {
        let mut names: Vec<String> = std::fs::read_dir(common::repo_path(folder))
            .expect(folder)
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8")
            })
            .filter(|name| name.ends_with(".json") && !name.starts_with("expected-"))
            .collect();
        names.sort();
        for name in names {
            let path = format!("{folder}/{name}");
            let text = common::read(&path);
            let Ok(mut raw) = serde_json::from_str::<Value>(&text) else {
                unreadable.push(path);
                continue;
            };
            if let Some(request) = raw.get("request") {
                raw = request.clone();
            }
            let readable = serde_json::from_value::<
                kubewarden_policy_sdk::request::KubernetesAdmissionRequest,
            >(raw.clone())
            .is_ok()
                && raw["uid"].is_string()
                && raw["kind"].is_object()
                && raw["resource"].is_object();
            if raw.get("operation").is_none() {
                continue; // not an AdmissionRequest (fixtures of another kind)
            }
            if readable {
                requests.push(Request { name: path, raw });
            } else {
                unreadable.push(path);
            }
        }
    }
    (requests, unreadable)
}

/// Whether the policy acts on a request, from its own code: admission::target (CREATE, or an
/// UPDATE of an object not being deleted, or of a DittoServer being deleted whose spec changes;
/// DittoServers, Pods and StatefulSets by group and kind) and, for workloads,
/// workload::owning_dittoserver.
fn policy_acts_on(request: &Request, job: Job) -> bool {
    if request.field("/kind/kind") == "Secret" && request.field("/kind/group").is_empty() {
        return job == Job::SecretGuard && secret_guard_acts_on(request);
    }
    let workloads = job == Job::Workloads;
    let object = request.object();
    let being_deleted = object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|timestamp| !timestamp.is_null());
    let is_dittoserver = request.field("/kind/kind") == "DittoServer"
        && request.field("/kind/group") == "dittofs.dittofs.com";
    let spec_changed = object.get("spec") != request.raw.pointer("/oldObject/spec");
    let operation_acted_on = match request.field("/operation") {
        "CREATE" => true,
        "UPDATE" => !being_deleted || (is_dittoserver && spec_changed),
        _ => false,
    };
    if !operation_acted_on {
        return false;
    }
    let kind = (request.field("/kind/group"), request.field("/kind/kind"));
    match kind {
        ("dittofs.dittofs.com", "DittoServer") => job == Job::DittoServers,
        ("", "Pod") => workloads && owning_dittoserver(WorkloadKind::Pod, object).is_some(),
        ("apps", "StatefulSet") => {
            workloads && owning_dittoserver(WorkloadKind::StatefulSet, object).is_some()
        }
        _ => false,
    }
}

/// The Secret guard's own early returns (secret_guard::guard): a type in NOT_CREDENTIALS, an
/// UPDATE that keeps the entries (an UPDATE of a Secret being deleted is judged).
fn secret_guard_acts_on(request: &Request) -> bool {
    let old = request.raw.get("oldObject").unwrap_or(&Value::Null);
    let secret = match request.field("/operation") {
        "CREATE" | "UPDATE" => request.object(),
        "DELETE" => old,
        _ => return false,
    };
    let kind = secret.get("type").and_then(Value::as_str).unwrap_or("");
    if NOT_CREDENTIALS.contains(&kind) {
        return false;
    }
    request.field("/operation") != "UPDATE" || secret.get("data") != old.get("data")
}

/// Whether a policy's rules send the request to its webhook at all.
fn rules_match(rules: &Value, request: &Request) -> bool {
    let has = |list: &Value, item: &str| {
        list.as_array()
            .expect("rule list")
            .iter()
            .any(|entry| entry == item || entry == "*")
    };
    rules.as_array().expect("rules").iter().any(|rule| {
        has(&rule["apiGroups"], request.field("/resource/group"))
            && has(&rule["apiVersions"], request.field("/resource/version"))
            && has(&rule["resources"], request.field("/resource/resource"))
            && has(&rule["operations"], request.field("/operation"))
    })
}

fn evaluate(program: &Program, request: &Value) -> Result<bool, String> {
    let mut context = Context::default();
    let null = Value::Null;
    for (name, value) in [
        ("request", request),
        ("object", request.get("object").unwrap_or(&null)),
        ("oldObject", request.get("oldObject").unwrap_or(&null)),
    ] {
        context
            .add_variable(name, cel::to_value(value).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{e:?}"))?;
    }
    match program.execute(&context) {
        Ok(cel::Value::Bool(admitted)) => Ok(admitted),
        Ok(other) => Err(format!("not a bool: {other:?}")),
        Err(error) => Err(format!("{error:?}")),
    }
}

/// The one job each policy of the kit has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    DittoServers,
    Workloads,
    SecretGuard,
}

struct Policy {
    file: String,
    rules: Value,
    job: Job,
    conditions: Vec<(String, Program)>,
}

fn policies() -> Vec<Policy> {
    let mut policies = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(common::repo_path("deploy"))
        .expect("deploy")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .collect();
    names.sort();
    for name in names.iter().filter(|name| name.ends_with(".yaml")) {
        let file = format!("deploy/{name}");
        for document in common::yaml_documents(&file) {
            if document["kind"] != "ClusterAdmissionPolicy" {
                continue;
            }
            policies.push(compile(&file, &document));
        }
    }
    assert_eq!(policies.len(), 4, "four policies, each with one job");
    policies
}

fn compile(file: &str, document: &Value) -> Policy {
    let spec = &document["spec"];
    let conditions = spec["matchConditions"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no matchConditions"))
        .iter()
        .map(|condition| {
            let name = condition["name"].as_str().expect("name").to_owned();
            let expression = condition["expression"].as_str().expect("expression");
            let program = Program::compile(expression)
                .unwrap_or_else(|e| panic!("{file}: matchCondition {name} is not valid CEL: {e}"));
            (name, program)
        })
        .collect();
    let resources: Vec<&str> = spec["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|rule| rule["resources"].as_array().expect("resources"))
        .filter_map(Value::as_str)
        .collect();
    let workloads = resources
        .iter()
        .any(|r| *r == "pods" || *r == "statefulsets");
    let secrets = resources.contains(&"secrets");
    let jobs = [workloads, resources.contains(&"dittoservers"), secrets];
    assert_eq!(
        jobs.iter().filter(|job| **job).count(),
        1,
        "{file}: one job per policy: DittoServers, workloads or Secrets"
    );
    let job = match (workloads, secrets) {
        (true, _) => Job::Workloads,
        (_, true) => Job::SecretGuard,
        _ => Job::DittoServers,
    };
    Policy {
        file: file.to_owned(),
        rules: spec["rules"].clone(),
        job,
        conditions,
    }
}

/// The outcome of a policy's conditions on one request: Ok(admitted) or the failing condition.
fn admitted(policy: &Policy, request: &Value) -> Result<bool, String> {
    let mut all = true;
    for (name, program) in &policy.conditions {
        match evaluate(program, request) {
            Ok(result) => all &= result,
            Err(error) => return Err(format!("matchCondition {name} failed: {error}")),
        }
    }
    Ok(all)
}

#[test]
fn conditions_admit_exactly_what_each_policy_acts_on() {
    let (requests, unreadable) = requests();
    assert!(requests.len() >= 60, "only {} requests", requests.len());
    for path in &unreadable {
        assert!(
            path.starts_with("test_data/hostile/"),
            "{path}: a sample request the SDK cannot read"
        );
    }
    let mut failures = Vec::new();
    let mut admitted_count = 0;
    let mut refused_count = 0;
    for policy in policies() {
        for request in &requests {
            if !rules_match(&policy.rules, request) {
                continue;
            }
            let expected = policy_acts_on(request, policy.job);
            match admitted(&policy, &request.raw) {
                Ok(actual) if actual == expected => {
                    if actual {
                        admitted_count += 1;
                    } else {
                        refused_count += 1;
                    }
                }
                Ok(actual) => failures.push(format!(
                    "{}: {} is {} but the policy {}",
                    policy.file,
                    request.name,
                    if actual { "admitted" } else { "refused" },
                    if expected { "acts on it" } else { "ignores it" }
                )),
                Err(error) => failures.push(format!("{}: {}: {error}", policy.file, request.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Both sides are exercised: DittoFS objects admitted, others refused.
    assert!(
        admitted_count >= 20 && refused_count >= 8,
        "{admitted_count} admitted, {refused_count} refused"
    );
}

/// Requests the samples do not cover: DELETE (no object), UPDATE where only the old object
/// was DittoFS, objects being deleted, owner references that are not the controller's.
#[test]
fn conditions_on_deletes_updates_and_near_misses() {
    let ditto_owner = json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
                             "name": "d", "uid": "u", "controller": true});
    let sts = |owners: Value| json!({"metadata": {"name": "d", "ownerReferences": owners}});
    let pod = |labels: Value| json!({"metadata": {"name": "p", "labels": labels}});
    let request = |group: &str, kind: &str, operation: &str, object: Value, old: Value| {
        json!({"uid": "1", "kind": {"group": group, "version": "v1", "kind": kind},
               "operation": operation, "object": object, "oldObject": old})
    };
    let dittofs_labels = json!({"app": "dittofs-server", "instance": "d"});
    let cases = [
        // (request, admitted by the workload policies)
        (
            request(
                "apps",
                "StatefulSet",
                "CREATE",
                sts(json!([ditto_owner])),
                Value::Null,
            ),
            true,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "DELETE",
                Value::Null,
                sts(json!([ditto_owner])),
            ),
            false,
        ),
        // What the policy reads is the object being written: an UPDATE that drops the owner
        // reference is ignored by the policy, and so by the condition.
        (
            request(
                "apps",
                "StatefulSet",
                "UPDATE",
                sts(json!([])),
                sts(json!([ditto_owner])),
            ),
            false,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "UPDATE",
                sts(json!([ditto_owner])),
                sts(json!([])),
            ),
            true,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "CREATE",
                sts(
                    json!([{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
                             "name": "d", "uid": "u"}]),
                ),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "CREATE",
                sts(
                    json!([{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
                             "name": "d", "uid": "u", "controller": false}]),
                ),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "CREATE",
                sts(
                    json!([{"apiVersion": "dittofs.dittofs.com/v1beta1", "kind": "DittoServer",
                             "name": "d", "uid": "u", "controller": true}]),
                ),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "apps",
                "StatefulSet",
                "UPDATE",
                json!({"metadata": {"name": "d", "ownerReferences": [ditto_owner],
                                     "deletionTimestamp": "2026-11-28T00:00:00Z"}}),
                sts(json!([ditto_owner])),
            ),
            false,
        ),
        (
            request(
                "",
                "Pod",
                "CREATE",
                pod(dittofs_labels.clone()),
                Value::Null,
            ),
            true,
        ),
        (
            request(
                "",
                "Pod",
                "CREATE",
                pod(json!({"app": "dittofs-server"})),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "",
                "Pod",
                "CREATE",
                pod(json!({"app": "dittofs-server", "instance": ""})),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "",
                "Pod",
                "CREATE",
                json!({"metadata": {"name": "p"}}),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "",
                "Pod",
                "DELETE",
                Value::Null,
                pod(dittofs_labels.clone()),
            ),
            false,
        ),
        (
            request(
                "",
                "Pod",
                "CONNECT",
                json!({"kind": "PodExecOptions"}),
                Value::Null,
            ),
            false,
        ),
        (
            request(
                "example.com",
                "Pod",
                "CREATE",
                pod(dittofs_labels),
                Value::Null,
            ),
            false,
        ),
    ];
    // The Secret guard's rules never send it these kinds (its own cases are below).
    for policy in policies().into_iter().filter(|p| p.job != Job::SecretGuard) {
        for (index, (case, workload_admitted)) in cases.iter().enumerate() {
            let expected = policy.job == Job::Workloads && *workload_admitted;
            let actual = admitted(&policy, case)
                .unwrap_or_else(|e| panic!("{}: case {index}: {e}", policy.file));
            assert_eq!(actual, expected, "{}: case {index}: {case}", policy.file);
        }
        // DittoServers: admitted on CREATE and UPDATE by the DittoServer policy only, while
        // being deleted only when the spec changes (finalizer removal does not wait for
        // policy-server), never on DELETE.
        let ditto = json!({"metadata": {"name": "d"}, "spec": {"s3": {"region": "eu-west-1"}}});
        let mut deleting = ditto.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-28T00:00:00Z");
        let mut respecced = deleting.clone();
        respecced["spec"]["s3"]["region"] = json!("fr-par");
        let mut unspecced = deleting.clone();
        unspecced.as_object_mut().expect("object").remove("spec");
        for (operation, object, old, expected) in [
            ("CREATE", ditto.clone(), Value::Null, true),
            ("UPDATE", ditto.clone(), ditto.clone(), true),
            ("UPDATE", deleting.clone(), deleting.clone(), false),
            ("UPDATE", respecced, deleting.clone(), true),
            ("UPDATE", unspecced, deleting, true),
            ("DELETE", Value::Null, ditto, false),
        ] {
            let case = json!({"uid": "1", "operation": operation, "object": object, "oldObject": old,
                              "kind": {"group": "dittofs.dittofs.com", "version": "v1alpha1", "kind": "DittoServer"}});
            let actual = admitted(&policy, &case).expect("no error");
            assert_eq!(
                actual,
                expected && policy.job == Job::DittoServers,
                "{}: DittoServer {operation}",
                policy.file
            );
        }
    }
}

/// Secret writes the samples do not cover: every type the guard skips, on each operation;
/// UPDATEs that keep, add, change or drop the entries; a Secret being deleted.
#[test]
fn secret_guard_conditions_on_types_entries_and_deletions() {
    let guard = policies()
        .into_iter()
        .find(|p| p.job == Job::SecretGuard)
        .expect("the Secret guard");
    let secret = |kind: &str, data: Value| json!({"metadata": {"name": "c", "namespace": "ns"}, "type": kind, "data": data});
    let mut cases = Vec::new();
    for kind in NOT_CREDENTIALS
        .iter()
        .copied()
        .chain(["Opaque", "example.com/s3"])
    {
        let (old, new) = (
            secret(kind, json!({"a": "QQ=="})),
            secret(kind, json!({"a": "Qg=="})),
        );
        cases.push(("CREATE", new.clone(), Value::Null));
        cases.push(("UPDATE", new, old.clone()));
        cases.push(("DELETE", Value::Null, old));
    }
    let mut untyped = secret("Opaque", json!({"a": "QQ=="}));
    untyped.as_object_mut().expect("object").remove("type");
    let empty = secret("Opaque", Value::Null);
    let mut without_data = empty.clone();
    without_data.as_object_mut().expect("object").remove("data");
    let mut relabelled = untyped.clone();
    relabelled["metadata"]["labels"] = json!({"x": "y"});
    let mut deleting = secret("Opaque", json!({"a": "Qg=="}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-05T00:00:00Z");
    for (object, old) in [
        (relabelled, untyped.clone()),
        (without_data.clone(), untyped.clone()),
        (untyped.clone(), without_data.clone()),
        (without_data.clone(), empty),
        (deleting, untyped.clone()),
    ] {
        cases.push(("UPDATE", object, old));
    }
    cases.push(("CREATE", untyped.clone(), Value::Null));
    cases.push(("DELETE", Value::Null, untyped));
    let mut admitted_count = 0;
    for (operation, object, old) in cases {
        let raw = json!({"uid": "1", "operation": operation, "object": object, "oldObject": old,
                         "kind": {"group": "", "version": "v1", "kind": "Secret"}});
        let request = Request {
            name: format!("{operation} {object} {old}"),
            raw: raw.clone(),
        };
        let expected = policy_acts_on(&request, Job::SecretGuard);
        let actual = admitted(&guard, &raw).unwrap_or_else(|e| panic!("{}: {e}", request.name));
        assert_eq!(actual, expected, "{}", request.name);
        admitted_count += usize::from(actual);
    }
    assert!(admitted_count >= 8, "{admitted_count} admitted");
}

#[test]
fn a_broken_condition_is_caught() {
    let mut document = common::yaml("deploy/mutating-policy.yaml");
    // Invalid CEL does not compile.
    document["spec"]["matchConditions"][0]["expression"] = json!("request.operation ==");
    let result = std::panic::catch_unwind(|| compile("broken", &document));
    assert!(result.is_err(), "invalid CEL accepted");
    // A condition that forgets that labels may be absent fails at evaluation (and with
    // failurePolicy Fail, the API server would reject every unlabelled pod).
    let mut document = common::yaml("deploy/mutating-policy.yaml");
    document["spec"]["matchConditions"] = json!([{"name": "naive",
        "expression": "object.metadata.labels['app'] == 'dittofs-server'"}]);
    let policy = compile("naive", &document);
    let request = json!({"uid": "1", "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "object": {"metadata": {"name": "p"}}});
    assert!(admitted(&policy, &request).is_err());
    // A condition that admits every pod is caught by the sample requests.
    let mut document = common::yaml("deploy/mutating-policy.yaml");
    document["spec"]["matchConditions"] = json!([{"name": "everything", "expression": "true"}]);
    let policy = compile("everything", &document);
    let (requests, _) = requests();
    let not_dittofs = requests
        .iter()
        .find(|r| r.name == "test_data/pod-create-not-dittofs.json")
        .expect("sample");
    assert!(!policy_acts_on(not_dittofs, Job::Workloads));
    assert_eq!(admitted(&policy, &not_dittofs.raw), Ok(true));
}
