//! Inject and verify, against an in-memory cluster.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::cluster::fake::FakeCluster;
use crate::cluster::{Cluster, LookupError, ObjectRef};
use crate::decision::{Decision, Verdict};
use crate::test_support::{FAKE_KEY, FAKE_SECRET, assert_no_values, b64, settings};

/// `inject`, with its edits applied to a copy of the request's object: the answer the
/// protocol carries.
fn inject(request: &WorkloadRequest<'_>, settings: &Settings, cluster: &dyn Cluster) -> Decision {
    super::inject(request, settings, cluster).applied_to(request.object.clone())
}

/// `verify`, as `inject` above.
fn verify(request: &WorkloadRequest<'_>, settings: &Settings, cluster: &dyn Cluster) -> Decision {
    super::verify(request, settings, cluster).applied_to(request.object.clone())
}

const NS: &str = "dittofs-system";
const DITTO: &str = "dittofs-s3-sample";
const SECRET: &str = "dittofs-s3-credentials";
const ENDPOINT: &str = "https://s3.cubbit.eu";

/// The documented framing, computed here independently of the policy's code.
fn expected_hash(entries: &[(&str, &str)]) -> String {
    let mut sorted = entries.to_vec();
    sorted.sort();
    let framed: String = sorted
        .iter()
        .map(|(key, value)| {
            let key = format!("s3:{key}");
            format!("{}:{}:{}:{}", key.len(), key, value.len(), value)
        })
        .collect();
    Sha256::digest(framed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn good_hash() -> String {
    expected_hash(&[
        ("accessKeyId", FAKE_KEY),
        ("secretAccessKey", FAKE_SECRET),
        ("endpoint", ENDPOINT),
    ])
}

fn ditto(s3: Value) -> Value {
    json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
           "metadata": {"name": DITTO, "namespace": NS}, "spec": {"s3": s3}})
}

fn ditto_with_ref() -> Value {
    ditto(json!({"credentialsSecretRef": {"secretName": SECRET}, "region": "eu-west-1"}))
}

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NS}, "data": data})
}

fn good_secret() -> Value {
    secret(
        json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64(ENDPOINT)}),
    )
}

fn cluster(ditto: Result<Value, LookupError>, secret: Result<Value, LookupError>) -> FakeCluster {
    FakeCluster::default()
        .with(ObjectRef::ditto_server(NS, DITTO), ditto)
        .with(ObjectRef::secret(NS, SECRET), secret)
}

fn healthy() -> FakeCluster {
    cluster(Ok(ditto_with_ref()), Ok(good_secret()))
}

fn dittofs_container(env: Value) -> Value {
    json!({"name": "dittofs", "image": "marmos91c/dittofs:latest", "command": ["/app/dittofs"], "env": env})
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "dittofs-s3-sample-0", "namespace": NS,
                        "labels": {"app": "dittofs-server", "instance": DITTO}},
           "spec": {"containers": containers}})
}

fn statefulset(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": DITTO, "namespace": NS,
                        "ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
                                             "name": DITTO, "uid": "u", "controller": true}]},
           "spec": {"selector": {"matchLabels": {"app": "dittofs-server", "instance": DITTO}},
                    "template": {"metadata": {"labels": {"app": "dittofs-server", "instance": DITTO}},
                                 "spec": {"containers": containers}}}})
}

fn injected_env() -> Value {
    json!([
        {"name": "DITTOFS_LOG_LEVEL", "value": "info"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "accessKeyId"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "secretAccessKey"}}},
        {"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "endpoint", "optional": true}}},
        {"name": "AWS_REGION", "value": "eu-west-1"},
    ])
}

/// The injection record the policy writes, spelled out independently of its code.
fn expected_record(secret_name: &str, region: &str) -> String {
    format!(
        r#"{{"secretName":"{secret_name}","accessKeyIdKey":"accessKeyId","secretAccessKeyKey":"secretAccessKey","endpointKey":"endpoint","region":"{region}"}}"#
    )
}

fn plain_env() -> Value {
    json!([{"name": "DITTOFS_LOG_LEVEL", "value": "info"}])
}

fn request<'a>(
    kind: WorkloadKind,
    operation: &'a str,
    object: &'a Value,
    old: &'a Value,
) -> WorkloadRequest<'a> {
    WorkloadRequest {
        kind,
        operation,
        namespace: NS,
        object,
        old_object: old,
    }
}

/// A pod created from the `stored` StatefulSet's template, with `container`.
fn pod_of_template(stored: &Value, container: Value) -> Value {
    let mut pod = pod(json!([container]));
    pod["metadata"]["annotations"] = stored["spec"]["template"]["metadata"]["annotations"].clone();
    pod
}

fn mutated(decision: &Decision) -> &Value {
    match &decision.verdict {
        Verdict::Mutate(object) => object,
        other => panic!(
            "expected a mutation, got {other:?} with {:?}",
            decision.warnings
        ),
    }
}

fn rejection(decision: &Decision) -> &str {
    match &decision.verdict {
        Verdict::Reject(message) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn owners_are_recognised_only_by_operator_markers() {
    assert_eq!(
        owning_dittoserver(WorkloadKind::Pod, &pod(json!([]))),
        Some(DITTO)
    );
    assert_eq!(
        owning_dittoserver(WorkloadKind::StatefulSet, &statefulset(json!([]))),
        Some(DITTO)
    );
    let mut wrong_app = pod(json!([]));
    wrong_app["metadata"]["labels"]["app"] = json!("nginx");
    assert_eq!(owning_dittoserver(WorkloadKind::Pod, &wrong_app), None);
    let mut not_controller = statefulset(json!([]));
    not_controller["metadata"]["ownerReferences"][0]["controller"] = json!(false);
    assert_eq!(
        owning_dittoserver(WorkloadKind::StatefulSet, &not_controller),
        None
    );
    let mut other_kind = statefulset(json!([]));
    other_kind["metadata"]["ownerReferences"][0]["kind"] = json!("Deployment");
    assert_eq!(
        owning_dittoserver(WorkloadKind::StatefulSet, &other_kind),
        None
    );
    let mut other_group = statefulset(json!([]));
    other_group["metadata"]["ownerReferences"][0]["apiVersion"] = json!("example.com/v1");
    assert_eq!(
        owning_dittoserver(WorkloadKind::StatefulSet, &other_group),
        None
    );
}

#[test]
fn other_workloads_pass_without_any_lookup() {
    let cluster = healthy();
    let mut plain = pod(json!([dittofs_container(plain_env())]));
    plain["metadata"]["labels"] = json!({"app": "web"});
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &plain, &Value::Null),
        &Settings::default(),
        &cluster,
    );
    assert_eq!(decision, Decision::accept());
    assert!(cluster.lookups.borrow().is_empty());
}

#[test]
fn pod_create_gets_env_after_its_own_and_the_hash() {
    let cluster = healthy();
    let object = pod(json!([{"name": "sidecar"}, dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &cluster,
    );
    let result = mutated(&decision);
    assert_eq!(result["spec"]["containers"][1]["env"], injected_env());
    assert_eq!(result["spec"]["containers"][0], json!({"name": "sidecar"}));
    assert_eq!(
        result["metadata"]["annotations"]["dittofs.io/s3-credentials-hash"],
        json!(good_hash())
    );
    assert!(decision.warnings.is_empty());
    // The owner is read from the API server itself, not from the host's 5 s cache.
    assert_eq!(
        *cluster.lookups.borrow(),
        [
            format!("DittoServer \"{DITTO}\" in namespace \"{NS}\" (fresh)"),
            format!("Secret \"{SECRET}\" in namespace \"{NS}\"")
        ]
    );
}

#[test]
fn statefulset_template_gets_env_and_hash() {
    let object = statefulset(json!([dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    let result = mutated(&decision);
    assert_eq!(
        result["spec"]["template"]["spec"]["containers"][0]["env"],
        injected_env()
    );
    assert_eq!(
        result["spec"]["template"]["metadata"]["annotations"]["dittofs.io/s3-credentials-hash"],
        json!(good_hash())
    );
    assert!(
        result["metadata"].get("annotations").is_none(),
        "the hash belongs on the template only"
    );
}

#[test]
fn injection_is_idempotent_and_verify_accepts_its_output() {
    for (kind, object) in [
        (
            WorkloadKind::Pod,
            pod(json!([dittofs_container(plain_env())])),
        ),
        (
            WorkloadKind::Pod,
            pod(json!([{"name": "dittofs", "image": "x"}])),
        ),
        (
            WorkloadKind::StatefulSet,
            statefulset(json!([dittofs_container(json!(null))])),
        ),
    ] {
        let first = inject(
            &request(kind, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &healthy(),
        );
        let output = mutated(&first).clone();
        let second = inject(
            &request(kind, "CREATE", &output, &Value::Null),
            &Settings::default(),
            &healthy(),
        );
        assert_eq!(second, Decision::accept(), "{kind:?}");
        let verified = verify(
            &request(kind, "CREATE", &output, &Value::Null),
            &Settings::default(),
            &healthy(),
        );
        assert_eq!(verified, Decision::accept(), "{kind:?}");
    }
}

#[test]
fn unknown_fields_survive_mutation() {
    let mut object = pod(json!([dittofs_container(plain_env())]));
    object["spec"]["futureFeature"] = json!({"enabled": true});
    object["spec"]["containers"][0]["futureContainerField"] = json!([1, 2]);
    object["metadata"]["annotations"] = json!({"keep": "me"});
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    let result = mutated(&decision);
    assert_eq!(result["spec"]["futureFeature"], json!({"enabled": true}));
    assert_eq!(
        result["spec"]["containers"][0]["futureContainerField"],
        json!([1, 2])
    );
    assert_eq!(result["metadata"]["annotations"]["keep"], json!("me"));
    let mut expected = object.clone();
    expected["spec"]["containers"][0]["env"] = injected_env();
    expected["metadata"]["annotations"]["dittofs.io/s3-credentials-hash"] = json!(good_hash());
    expected["metadata"]["annotations"]["dittofs.io/s3-credentials-source"] =
        json!(expected_record(SECRET, "eu-west-1"));
    assert_eq!(
        result, &expected,
        "only env, the hash and the record change"
    );
}

#[test]
fn conflicting_definitions_reject_by_default_without_values() {
    let env = json!([{"name": "AWS_REGION", "value": "us-east-1"}, {"name": "AWS_ACCESS_KEY_ID", "value": FAKE_KEY}]);
    let object = pod(json!([dittofs_container(env)]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert_eq!(
        rejection(&decision),
        "Pod \"dittofs-s3-sample-0\": container \"dittofs\" already defines AWS_ACCESS_KEY_ID, AWS_REGION differently \
         from what DittoServer \"dittofs-s3-sample\" in namespace \"dittofs-system\" requires (onEnvConflict: reject); \
         remove the definition or set onEnvConflict: overwrite"
    );
    assert_no_values(&decision);
}

#[test]
fn overwrite_replaces_in_place() {
    let env =
        json!([{"name": "AWS_REGION", "value": "us-east-1"}, {"name": "OTHER", "value": "x"}]);
    let object = pod(json!([dittofs_container(env)]));
    let overwrite = settings(json!({"onEnvConflict": "overwrite"}));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &overwrite,
        &healthy(),
    );
    let names: Vec<&str> = mutated(&decision)["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(env::entry_name)
        .collect();
    assert_eq!(
        names,
        [
            "AWS_REGION",
            "OTHER",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL"
        ]
    );
    assert_eq!(
        mutated(&decision)["spec"]["containers"][0]["env"][0],
        json!({"name": "AWS_REGION", "value": "eu-west-1"})
    );
    assert_eq!(
        decision.warnings,
        [
            "replaced the definition of AWS_REGION in container \"dittofs\" of Pod \"dittofs-s3-sample-0\" (onEnvConflict: overwrite)"
        ]
    );
}

#[test]
fn dittoserver_without_credentials_leaves_workloads_untouched() {
    for s3 in [json!({"region": "eu-west-1"}), json!(null)] {
        let owner = if s3.is_null() {
            json!({"metadata": {"name": DITTO}, "spec": {}})
        } else {
            ditto(s3)
        };
        let cluster = cluster(Ok(owner), Ok(good_secret()));
        let object = pod(json!([dittofs_container(plain_env())]));
        let decision = inject(
            &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &cluster,
        );
        assert_eq!(decision, Decision::accept());
        assert_eq!(cluster.lookups.borrow().len(), 1, "no Secret lookup");
    }
}

#[test]
fn unreadable_dittoserver_on_create_accepts_untouched_with_a_warning() {
    let cases = [
        (
            Err(LookupError::NotFound),
            "DittoServer \"dittofs-s3-sample\" in namespace \"dittofs-system\" was not found",
        ),
        (
            Err(LookupError::AccessDenied("forbidden".into())),
            "cannot read DittoServer \"dittofs-s3-sample\" in namespace \"dittofs-system\": access denied (forbidden)",
        ),
        (
            Err(LookupError::Failed("timeout".into())),
            "lookup failed (timeout)",
        ),
        (
            Ok(ditto(json!({"region": "BAD"}))),
            "has an invalid spec.s3 (spec.s3.region:",
        ),
    ];
    for (answer, expected) in cases {
        // A StatefulSet is refused instead (see the lifecycle gaps below).
        let (kind, object) = (
            WorkloadKind::Pod,
            pod(json!([dittofs_container(plain_env())])),
        );
        let decision = inject(
            &request(kind, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &cluster(answer.clone(), Ok(good_secret())),
        );
        assert_eq!(decision.verdict, Verdict::Accept, "{expected}");
        assert_eq!(decision.warnings.len(), 1);
        assert!(
            decision.warnings[0].contains(expected),
            "{:?}",
            decision.warnings
        );
        let prefix = format!(
            "S3 credentials were not injected into {}: ",
            request(kind, "CREATE", &object, &Value::Null).describe()
        );
        assert!(
            decision.warnings[0].starts_with(&prefix),
            "{:?}",
            decision.warnings
        );
    }
}

#[test]
fn missing_container_is_a_warning() {
    let object = pod(json!([{"name": "server"}]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(
        decision.warnings,
        [
            "S3 credentials were not injected into Pod \"dittofs-s3-sample-0\": it has no container \"dittofs\""
        ]
    );
    let custom = settings(json!({"containerName": "server", "hashAnnotation": "example.com/hash"}));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &custom,
        &healthy(),
    );
    assert_eq!(
        mutated(&decision)["metadata"]["annotations"]["example.com/hash"],
        json!(good_hash())
    );
}

#[test]
fn secret_problems_on_create_inject_env_without_hash() {
    let cases = [
        (
            Err(LookupError::NotFound),
            "Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\" was not found",
        ),
        (
            Ok(secret(json!({"accessKeyId": b64(FAKE_KEY)}))),
            "is incomplete: entry \"secretAccessKey\" is missing",
        ),
        (
            Err(LookupError::AccessDenied("forbidden".into())),
            "cannot read Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\": access denied",
        ),
    ];
    for (answer, expected) in cases {
        let object = pod(json!([dittofs_container(plain_env())]));
        let decision = inject(
            &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &cluster(Ok(ditto_with_ref()), answer),
        );
        let result = mutated(&decision);
        assert_eq!(result["spec"]["containers"][0]["env"], injected_env());
        assert_eq!(
            result["metadata"]["annotations"],
            json!({"dittofs.io/s3-credentials-source": expected_record(SECRET, "eu-west-1")}),
            "the record, but no hash"
        );
        assert!(
            decision.warnings.len() == 1 && decision.warnings[0].contains(expected),
            "{:?}",
            decision.warnings
        );
        assert!(decision.warnings[0].contains("without dittofs.io/s3-credentials-hash"));
        assert_no_values(&decision);
    }
}

fn injected_statefulset(hash: &str) -> Value {
    let mut object = statefulset(json!([dittofs_container(injected_env())]));
    object["spec"]["template"]["metadata"]["annotations"] = json!({
        "dittofs.io/s3-credentials-hash": hash,
        "dittofs.io/s3-credentials-source": expected_record(SECRET, "eu-west-1"),
    });
    object
}

#[test]
fn statefulset_update_with_unreadable_dittoserver_carries_env_and_hash_over() {
    let old = injected_statefulset("previous-hash");
    // The operator rewrites the template without our env and annotations.
    let new = statefulset(json!([dittofs_container(plain_env())]));
    for answer in [
        Err(LookupError::NotFound),
        Err(LookupError::Failed("timeout".into())),
    ] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
            &Settings::default(),
            &cluster(answer, Ok(good_secret())),
        );
        assert_eq!(mutated(&decision), &old);
        assert_eq!(decision.warnings.len(), 1);
        assert!(decision.warnings[0].starts_with("kept the S3 env and hash of the previous revision of StatefulSet \"dittofs-s3-sample\": "));
    }
}

#[test]
fn statefulset_update_with_unreadable_secret_keeps_the_previous_hash() {
    let old = injected_statefulset("previous-hash");
    let new = statefulset(json!([dittofs_container(plain_env())]));
    for answer in [
        Err(LookupError::NotFound),
        Err(LookupError::AccessDenied("forbidden".into())),
        Ok(secret(json!({}))),
    ] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
            &Settings::default(),
            &cluster(Ok(ditto_with_ref()), answer),
        );
        assert_eq!(
            mutated(&decision),
            &old,
            "env and hash of the previous revision kept"
        );
        assert!(decision.warnings[0].starts_with(
            "kept the S3 env and hash of the previous revision of StatefulSet \"dittofs-s3-sample\": "
        ));
    }
    // A hash the policy cannot check now does not replace the previous one: nothing rolls.
    let mut explicit = new.clone();
    explicit["spec"]["template"]["metadata"]["annotations"] =
        json!({"dittofs.io/s3-credentials-hash": "explicit"});
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &explicit, &old),
        &Settings::default(),
        &cluster(Ok(ditto_with_ref()), Err(LookupError::NotFound)),
    );
    assert_eq!(mutated(&decision), &old);
}

#[test]
fn a_secret_rename_whose_secret_cannot_be_read_changes_nothing() {
    // The operator re-renders the template for creds-v2 (as operator v0.4-v0.12 do); the
    // policy cannot read creds-v2, so the template must stay at the previous revision.
    let old = injected_statefulset("previous-hash");
    let mut new = statefulset(json!([dittofs_container(json!([
        {"name": "DITTOFS_LOG_LEVEL", "value": "info"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "creds-v2", "key": "accessKeyId"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "creds-v2", "key": "secretAccessKey"}}},
        {"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": "creds-v2", "key": "endpoint", "optional": true}}},
        {"name": "AWS_REGION", "value": "eu-west-1"},
    ]))]));
    new["spec"]["template"]["metadata"]["annotations"] = json!({"operator": "replaced"});
    let renamed =
        ditto(json!({"credentialsSecretRef": {"secretName": "creds-v2"}, "region": "eu-west-1"}));
    for answer in [
        Err(LookupError::NotFound),
        Err(LookupError::AccessDenied("forbidden".into())),
        Err(LookupError::Failed("etcdserver: request timed out".into())),
    ] {
        let lookups = FakeCluster::default()
            .with(ObjectRef::ditto_server(NS, DITTO), Ok(renamed.clone()))
            .with(ObjectRef::secret(NS, "creds-v2"), answer);
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
            &Settings::default(),
            &lookups,
        );
        let result = mutated(&decision);
        assert_eq!(
            result["spec"]["template"]["spec"],
            old["spec"]["template"]["spec"]
        );
        let mut annotations = old["spec"]["template"]["metadata"]["annotations"].clone();
        annotations["operator"] = json!("replaced");
        assert_eq!(
            result["spec"]["template"]["metadata"]["annotations"],
            annotations
        );
        assert!(
            decision.warnings[0].contains("creds-v2"),
            "{:?}",
            decision.warnings
        );
    }
}

#[test]
fn statefulset_update_with_readable_lookups_recomputes() {
    let old = injected_statefulset("previous-hash");
    let new = statefulset(json!([dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
        &Settings::default(),
        &healthy(),
    );
    assert_eq!(mutated(&decision), &injected_statefulset(&good_hash()));
    assert!(decision.warnings.is_empty());
}

#[test]
fn pod_update_is_left_alone_without_lookups() {
    let cluster = healthy();
    let object = pod(json!([dittofs_container(plain_env())]));
    assert_eq!(
        inject(
            &request(WorkloadKind::Pod, "UPDATE", &object, &object),
            &Settings::default(),
            &cluster
        ),
        Decision::accept()
    );
    assert!(cluster.lookups.borrow().is_empty());
}

#[test]
fn malformed_workloads_are_rejected_with_the_field() {
    let cases = [
        (pod(json!({"dittofs": {}})), "spec.containers is malformed"),
        (
            pod(json!([dittofs_container(json!({"AWS_REGION": "x"}))])),
            "spec.containers[0].env is malformed",
        ),
        (
            json!({"metadata": {"name": "p", "labels": {"app": "dittofs-server", "instance": DITTO}}, "spec": "x"}),
            "spec is malformed",
        ),
        (
            json!({"metadata": {"name": "p", "labels": {"app": "dittofs-server", "instance": DITTO}}}),
            "spec is malformed",
        ),
    ];
    for (object, expected) in cases {
        let decision = inject(
            &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &healthy(),
        );
        let message = rejection(&decision);
        assert!(
            message.starts_with("cannot inject S3 credentials into Pod \"p")
                || message.starts_with("cannot inject S3 credentials into Pod \"dittofs"),
            "{message}"
        );
        assert!(message.ends_with(expected), "{message}");
    }
    // A container entry that is not an object is simply not the dittofs container.
    let odd = pod(json!(["dittofs"]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &odd, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert_eq!(decision.verdict, Verdict::Accept);
    assert!(decision.warnings[0].ends_with("it has no container \"dittofs\""));
    let mut bad_annotations = pod(json!([dittofs_container(plain_env())]));
    bad_annotations["metadata"]["annotations"] = json!("x");
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &bad_annotations, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert!(rejection(&decision).ends_with("metadata.annotations is malformed"));
}

// --- verify -----------------------------------------------------------------------------------

fn verify_pod(env: Value, hash: Option<&str>, cluster: &FakeCluster) -> Decision {
    let mut object = pod(json!([dittofs_container(env)]));
    if let Some(hash) = hash {
        object["metadata"]["annotations"] = json!({"dittofs.io/s3-credentials-hash": hash});
    }
    verify(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        cluster,
    )
}

#[test]
fn verify_accepts_fresh_workloads() {
    assert_eq!(
        verify_pod(injected_env(), Some(&good_hash()), &healthy()),
        Decision::accept()
    );
}

#[test]
fn verify_rejects_stale_hash_with_the_rollout_command() {
    let decision = verify_pod(injected_env(), Some("0000"), &healthy());
    assert_eq!(
        rejection(&decision),
        "Pod \"dittofs-s3-sample-0\": it runs with outdated S3 credentials (dittofs.io/s3-credentials-hash does not match \
         Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\"); roll it with: \
         kubectl rollout restart statefulset/dittofs-s3-sample -n dittofs-system"
    );
    let decision = verify_pod(injected_env(), None, &healthy());
    assert!(
        rejection(&decision).contains("it lacks the dittofs.io/s3-credentials-hash annotation")
    );
}

#[test]
fn verify_rejects_missing_and_conflicting_env() {
    let decision = verify_pod(plain_env(), Some(&good_hash()), &healthy());
    assert!(rejection(&decision).contains(
        "container \"dittofs\" lacks AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION"
    ));
    let mut env = injected_env();
    env[4] = json!({"name": "AWS_REGION", "value": "us-east-1"});
    let decision = verify_pod(env, Some(&good_hash()), &healthy());
    assert!(rejection(&decision).contains("defines AWS_REGION differently"));
    assert_no_values(&decision);
}

#[test]
fn verify_rejects_when_the_secret_blocks_the_start() {
    let missing = cluster(Ok(ditto_with_ref()), Err(LookupError::NotFound));
    let decision = verify_pod(injected_env(), Some(&good_hash()), &missing);
    assert_eq!(
        rejection(&decision),
        "Pod \"dittofs-s3-sample-0\": Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\" was not found, \
         so its DittoFS container cannot start"
    );
    let incomplete = cluster(
        Ok(ditto_with_ref()),
        Ok(secret(json!({"accessKeyId": b64(FAKE_KEY)}))),
    );
    assert!(
        rejection(&verify_pod(injected_env(), Some(&good_hash()), &incomplete))
            .contains("is incomplete")
    );
}

#[test]
fn verify_accepts_orphans_and_lookup_failures_with_a_warning() {
    for answer in [
        Err(LookupError::NotFound),
        Err(LookupError::Failed("timeout".into())),
    ] {
        let decision = verify_pod(plain_env(), None, &cluster(answer, Ok(good_secret())));
        assert_eq!(decision.verdict, Verdict::Accept);
        assert!(
            decision.warnings[0]
                .starts_with("cannot verify the S3 credentials of Pod \"dittofs-s3-sample-0\": ")
        );
    }
    let denied = cluster(
        Ok(ditto_with_ref()),
        Err(LookupError::AccessDenied("forbidden".into())),
    );
    let decision = verify_pod(injected_env(), Some("whatever"), &denied);
    assert_eq!(decision.verdict, Verdict::Accept);
    assert!(
        decision.warnings[0]
            .starts_with("cannot verify the credentials hash of Pod \"dittofs-s3-sample-0\": ")
    );
}

#[test]
fn verify_names_the_statefulset_to_roll() {
    let object = injected_statefulset("stale");
    let decision = verify(
        &request(WorkloadKind::StatefulSet, "UPDATE", &object, &object),
        &Settings::default(),
        &healthy(),
    );
    assert!(
        rejection(&decision)
            .starts_with("StatefulSet \"dittofs-s3-sample\": it runs with outdated S3 credentials")
    );
    assert!(
        rejection(&decision)
            .ends_with("kubectl rollout restart statefulset/dittofs-s3-sample -n dittofs-system")
    );
}

/// A DittoServer whose spec.s3 changed since the template was injected.
fn ditto_in(region: &str, secret_name: &str) -> Value {
    ditto(json!({"credentialsSecretRef": {"secretName": secret_name}, "region": region}))
}

fn env_for(secret_name: &str, region: &str) -> Value {
    json!([
        {"name": "DITTOFS_LOG_LEVEL", "value": "info"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "accessKeyId"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "secretAccessKey"}}},
        {"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "endpoint", "optional": true}}},
        {"name": "AWS_REGION", "value": region},
    ])
}

#[test]
fn the_policys_own_entries_follow_the_dittoserver_on_every_write() {
    let moved = FakeCluster::default()
        .with(
            ObjectRef::ditto_server(NS, DITTO),
            Ok(ditto_in("fr-par", SECRET)),
        )
        .with(ObjectRef::secret(NS, SECRET), Ok(good_secret()));
    let stored = injected_statefulset(&good_hash());
    // kubectl rollout restart: the stored template plus a restartedAt annotation.
    let mut restarted = stored.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("2026-11-30T00:00:00Z");
    // The operator's reconcile: annotation map replaced, env kept as it was rendered.
    let mut reconciled = stored.clone();
    reconciled["spec"]["template"]["metadata"]["annotations"] = json!({"operator": "x"});
    for (label, new) in [("restart", &restarted), ("reconcile", &reconciled)] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", new, &stored),
            &Settings::default(),
            &moved,
        );
        let result = mutated(&decision);
        assert!(
            decision.warnings.is_empty(),
            "{label}: {:?}",
            decision.warnings
        );
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"][0]["env"],
            env_for(SECRET, "fr-par"),
            "{label}"
        );
        assert_eq!(
            result["spec"]["template"]["metadata"]["annotations"]["dittofs.io/s3-credentials-source"],
            json!(expected_record(SECRET, "fr-par")),
            "{label}"
        );
    }
    // A pod evicted and recreated from the old template.
    let evicted = pod_of_template(&stored, dittofs_container(injected_env()));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &evicted, &Value::Null),
        &Settings::default(),
        &moved,
    );
    assert_eq!(
        mutated(&decision)["spec"]["containers"][0]["env"],
        env_for(SECRET, "fr-par")
    );
}

#[test]
fn secret_name_changes_follow_too_when_the_new_secret_is_readable() {
    let renamed = FakeCluster::default()
        .with(
            ObjectRef::ditto_server(NS, DITTO),
            Ok(ditto_in("eu-west-1", "creds-v2")),
        )
        .with(ObjectRef::secret(NS, "creds-v2"), {
            let mut renamed = good_secret();
            renamed["metadata"]["name"] = json!("creds-v2");
            Ok(renamed)
        });
    let stored = injected_statefulset(&good_hash());
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &stored, &stored),
        &Settings::default(),
        &renamed,
    );
    let result = mutated(&decision);
    assert_eq!(
        result["spec"]["template"]["spec"]["containers"][0]["env"],
        env_for("creds-v2", "eu-west-1")
    );
    assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
}

#[test]
fn a_persons_different_definition_is_still_a_conflict() {
    let moved = FakeCluster::default()
        .with(
            ObjectRef::ditto_server(NS, DITTO),
            Ok(ditto_in("fr-par", SECRET)),
        )
        .with(ObjectRef::secret(NS, SECRET), Ok(good_secret()));
    // The record says the policy wrote eu-west-1; someone changed it to us-east-1 by hand.
    let mut edited = injected_statefulset(&good_hash());
    edited["spec"]["template"]["spec"]["containers"][0]["env"][4]["value"] = json!("us-east-1");
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &edited, &edited),
        &Settings::default(),
        &moved,
    );
    assert!(
        rejection(&decision).contains("already defines AWS_REGION differently"),
        "{decision:?}"
    );
    // A record that does not parse claims nothing.
    let mut tampered = injected_statefulset(&good_hash());
    tampered["spec"]["template"]["metadata"]["annotations"]["dittofs.io/s3-credentials-source"] =
        json!("{broken");
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &tampered, &tampered),
        &Settings::default(),
        &moved,
    );
    assert!(rejection(&decision).contains("AWS_REGION"), "{decision:?}");
}

#[test]
fn output_of_a_policy_version_without_the_record_is_still_its_own() {
    let moved = FakeCluster::default()
        .with(
            ObjectRef::ditto_server(NS, DITTO),
            Ok(ditto_in("fr-par", SECRET)),
        )
        .with(ObjectRef::secret(NS, SECRET), Ok(good_secret()));
    let mut legacy = statefulset(json!([dittofs_container(injected_env())]));
    legacy["spec"]["template"]["metadata"]["annotations"] =
        json!({"dittofs.io/s3-credentials-hash": good_hash()});
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &legacy, &legacy),
        &Settings::default(),
        &moved,
    );
    assert_eq!(
        mutated(&decision)["spec"]["template"]["spec"]["containers"][0]["env"],
        env_for(SECRET, "fr-par")
    );
}

#[test]
fn an_endpoint_that_breaks_the_rules_is_refused_wherever_the_secret_is_read() {
    let tampered = secret(
        json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
                                 "endpoint": b64("https://s3.attacker.example")}),
    );
    let restricted = settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]}));
    let lookups = cluster(Ok(ditto_with_ref()), Ok(tampered));
    let stored = injected_statefulset(&good_hash());
    let fresh_pod = pod(json!([dittofs_container(plain_env())]));
    let cases = [
        (WorkloadKind::StatefulSet, "UPDATE", &stored, &stored),
        (WorkloadKind::StatefulSet, "CREATE", &stored, &Value::Null),
        (WorkloadKind::Pod, "CREATE", &fresh_pod, &Value::Null),
    ];
    for (kind, operation, object, old) in cases {
        let decision = inject(
            &request(kind, operation, object, old),
            &restricted,
            &lookups,
        );
        let message = rejection(&decision);
        assert!(
            message.ends_with("Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\": entry \"endpoint\" has a host that is not in allowedEndpointHosts"),
            "{message}"
        );
        assert!(!message.contains("attacker"), "{message}");
        let decision = verify(
            &request(kind, operation, object, old),
            &restricted,
            &lookups,
        );
        assert!(
            rejection(&decision).contains("entry \"endpoint\" has a host"),
            "{decision:?}"
        );
    }
    // The https rule applies the same way, without any allow-list.
    let plain_http = cluster(
        Ok(ditto_with_ref()),
        Ok(secret(
            json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
                         "endpoint": b64("http://s3.cubbit.eu\n")}),
        )),
    );
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &fresh_pod, &Value::Null),
        &Settings::default(),
        &plain_http,
    );
    assert!(
        rejection(&decision).contains("must not contain whitespace"),
        "{decision:?}"
    );
}

#[test]
fn a_pod_from_an_injected_template_is_left_as_it_came_when_lookups_fail() {
    let stored = injected_statefulset(&good_hash());
    let from_template = pod_of_template(&stored, dittofs_container(injected_env()));
    let failures = [
        cluster(
            Err(LookupError::Failed("timeout".into())),
            Ok(good_secret()),
        ),
        cluster(
            Ok(ditto_in("fr-par", "creds-v2")),
            Err(LookupError::NotFound),
        ),
    ];
    for lookups in failures {
        let decision = inject(
            &request(WorkloadKind::Pod, "CREATE", &from_template, &Value::Null),
            &Settings::default(),
            &lookups,
        );
        assert_eq!(decision.verdict, Verdict::Accept, "{decision:?}");
        assert!(
            decision.warnings[0]
                .starts_with("S3 credentials of Pod \"dittofs-s3-sample-0\" left as they came: "),
            "{:?}",
            decision.warnings
        );
    }
}

#[test]
fn warnings_put_the_consequence_first_and_fit_the_limit() {
    let long_reason = LookupError::Failed("x".repeat(100));
    let old = injected_statefulset("previous-hash");
    let new = statefulset(json!([dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
        &Settings::default(),
        &cluster(Ok(ditto_with_ref()), Err(long_reason)),
    );
    assert!(decision.warnings[0].starts_with("kept the S3 env and hash"));
    assert!(
        decision
            .warnings
            .iter()
            .all(|w| w.len() <= crate::decision::WARNING_LIMIT)
    );
}

fn attacker_secret() -> Value {
    secret(
        json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
                  "endpoint": b64("https://s3.attacker.example")}),
    )
}

#[test]
fn what_is_kept_after_a_failed_lookup_still_passes_the_endpoint_rules() {
    // The DittoServer now names creds-v2, which is missing; the kept env points at the old
    // Secret, whose endpoint was tampered with meanwhile. Or the DittoServer is gone.
    let restricted = settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]}));
    let stored = injected_statefulset(&good_hash());
    let from_template = pod_of_template(&stored, dittofs_container(injected_env()));
    let renamed = FakeCluster::default()
        .with(
            ObjectRef::ditto_server(NS, DITTO),
            Ok(ditto_in("eu-west-1", "creds-v2")),
        )
        .with(ObjectRef::secret(NS, SECRET), Ok(attacker_secret()));
    let gone = cluster(Err(LookupError::NotFound), Ok(attacker_secret()));
    let mut restarted = stored.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("now");
    for lookups in [&renamed, &gone] {
        for (kind, operation, object, old) in [
            (WorkloadKind::Pod, "CREATE", &from_template, &Value::Null),
            (WorkloadKind::StatefulSet, "UPDATE", &restarted, &stored),
        ] {
            let decision = inject(&request(kind, operation, object, old), &restricted, lookups);
            let message = rejection(&decision);
            assert!(
                message.ends_with("Secret \"dittofs-s3-credentials\" in namespace \"dittofs-system\": entry \"endpoint\" has a host that is not in allowedEndpointHosts"),
                "{message}"
            );
            assert!(!message.contains("attacker"), "{message}");
        }
    }
    // When the kept Secret cannot be read either, what is kept stays (with the warning).
    let unreadable = FakeCluster::default().with(
        ObjectRef::ditto_server(NS, DITTO),
        Err(LookupError::Failed("timeout".into())),
    );
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &restarted, &stored),
        &restricted,
        &unreadable,
    );
    assert_eq!(decision.verdict, Verdict::Accept, "{decision:?}");
}

// --- credential routes ------------------------------------------------------------------------

/// A plain DittoFS pod with an `AWS_ENDPOINT_URL_S3` entry and an `envFrom`.
fn routed_container(env: Value) -> Value {
    let mut container = dittofs_container(env);
    container["envFrom"] = json!([{"configMapRef": {"name": "extra"}}]);
    container
}

fn routed_env() -> Value {
    json!([
        {"name": "DITTOFS_LOG_LEVEL", "value": "info"},
        {"name": "AWS_ENDPOINT_URL_S3", "value": "https://elsewhere.example"},
    ])
}

const ROUTES_REFUSED: &str = "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 \
    credentials elsewhere: env[1] AWS_ENDPOINT_URL_S3 overrides \
    AWS_ENDPOINT_URL; envFrom[0] (configMapRef \"extra\") can set any variable, even later (onCredentialRoute: reject); remove them, or set onCredentialRoute: warn";

#[test]
fn inject_rejects_credential_routes_by_default() {
    let object = pod(json!([routed_container(routed_env())]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert_eq!(rejection(&decision), ROUTES_REFUSED);
    assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
    assert_no_values(&decision);
}

#[test]
fn warn_admits_credential_routes_with_the_patch_and_one_warning() {
    let object = pod(json!([routed_container(routed_env())]));
    let warn = settings(json!({"onCredentialRoute": "warn"}));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &warn,
        &healthy(),
    );
    let result = mutated(&decision);
    let env = result["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    assert_eq!(env.len(), 6, "the managed entries are injected");
    assert_eq!(
        result["metadata"]["annotations"]["dittofs.io/s3-credentials-hash"],
        json!(good_hash())
    );
    assert_eq!(
        decision.warnings,
        [
            "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 credentials elsewhere \
             (onCredentialRoute: warn): env[1] AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL; \
             envFrom[0] (configMapRef \"extra\") can set any variable, even later"
        ]
    );
}

#[test]
fn every_accepting_path_of_inject_weighs_the_routes() {
    let stored = injected_statefulset(&good_hash());
    // Already written (the fast path), a pod from an injected template.
    let mut env = routed_env();
    env.as_array_mut().expect("env").extend(
        env_for(SECRET, "eu-west-1")
            .as_array()
            .expect("env")
            .iter()
            .skip(1)
            .cloned(),
    );
    let written = pod_of_template(&stored, routed_container(env));
    let fresh = pod(json!([routed_container(routed_env())]));
    let cases = [
        ("fast path", &written, healthy()),
        ("write", &fresh, healthy()),
        (
            "kept after a failed DittoServer lookup",
            &written,
            cluster(
                Err(LookupError::Failed("timeout".into())),
                Ok(good_secret()),
            ),
        ),
        (
            "first injection without a hash",
            &fresh,
            cluster(Ok(ditto_with_ref()), Err(LookupError::NotFound)),
        ),
    ];
    for (label, object, lookups) in cases {
        let decision = inject(
            &request(WorkloadKind::Pod, "CREATE", object, &Value::Null),
            &Settings::default(),
            &lookups,
        );
        let message = rejection(&decision);
        let refused = "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 credentials \
            elsewhere: ";
        assert!(
            message.starts_with(refused)
                && message.contains("envFrom[0] (configMapRef \"extra\") can set any variable")
                && message.ends_with(
                    "(onCredentialRoute: reject); remove them, or set onCredentialRoute: warn"
                ),
            "{label}: {message}"
        );
    }
}

#[test]
fn a_kept_pod_with_env_from_is_still_refused() {
    let stored = injected_statefulset(&good_hash());
    let from_template = pod_of_template(&stored, routed_container(injected_env()));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &from_template, &Value::Null),
        &Settings::default(),
        &cluster(Err(LookupError::NotFound), Ok(good_secret())),
    );
    assert_eq!(
        rejection(&decision),
        "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 credentials elsewhere: \
         envFrom[0] (configMapRef \"extra\") can set any variable, even later \
         (onCredentialRoute: reject); remove it, or set onCredentialRoute: warn"
    );
}

#[test]
fn a_repeated_endpoint_definition_is_refused_where_it_would_be_admitted() {
    let mut env = injected_env();
    env.as_array_mut().expect("env").push(json!(
        {"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": "bad", "key": "endpoint", "optional": true}}}
    ));
    let stored = injected_statefulset(&good_hash());
    let object = pod_of_template(&stored, dittofs_container(env.clone()));
    // Kept as it came after a failed lookup: the route decides.
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &cluster(
            Err(LookupError::Failed("timeout".into())),
            Ok(good_secret()),
        ),
    );
    assert_eq!(
        rejection(&decision),
        "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 credentials elsewhere: \
         env[3], env[5] AWS_ENDPOINT_URL differ, and the last one applies \
         (onCredentialRoute: reject); remove it, or set onCredentialRoute: warn"
    );
    // With the lookups answered, the second definition is a person's conflicting one.
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert!(rejection(&decision).contains("already defines AWS_ENDPOINT_URL differently"));
    // Overwritten, both definitions become the policy's: nothing differs any more.
    let overwrite = settings(json!({"onEnvConflict": "overwrite"}));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &object, &Value::Null),
        &overwrite,
        &healthy(),
    );
    assert_eq!(
        mutated(&decision)["spec"]["containers"][0]["env"][5],
        injected_env()[3]
    );
    // verify reports the staleness and the route in one message.
    let decision = verify_pod(env, Some(&good_hash()), &healthy());
    let message = rejection(&decision);
    assert!(
        message.contains("defines AWS_ENDPOINT_URL differently")
            && message.contains(
                "-n dittofs-system. Also, container \"dittofs\" can send its S3 credentials elsewhere: \
                 env[3], env[5] AWS_ENDPOINT_URL differ"
            ),
        "{message}"
    );
}

#[test]
fn verify_rejects_or_warns_on_credential_routes() {
    let mut object = pod(json!([routed_container(injected_env())]));
    object["metadata"]["annotations"] = json!({"dittofs.io/s3-credentials-hash": good_hash()});
    let verified = |object: &Value, settings: &Settings| {
        verify(
            &request(WorkloadKind::Pod, "CREATE", object, &Value::Null),
            settings,
            &healthy(),
        )
    };
    let refusal = "container \"dittofs\" can send its S3 credentials elsewhere: \
        envFrom[0] (configMapRef \"extra\") can set any variable, even later \
        (onCredentialRoute: reject); remove it, or set onCredentialRoute: warn";
    assert_eq!(
        rejection(&verified(&object, &Settings::default())),
        format!("Pod \"dittofs-s3-sample-0\": {refusal}")
    );
    let warn = settings(json!({"onCredentialRoute": "warn"}));
    let decision = verified(&object, &warn);
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(
        decision.warnings,
        [
            "Pod \"dittofs-s3-sample-0\": container \"dittofs\" can send its S3 credentials elsewhere \
             (onCredentialRoute: warn): envFrom[0] (configMapRef \"extra\") can set any variable, even later"
        ]
    );
    // Stale too: one rejection lists both; with warn, the route is a warning beside it.
    object["metadata"]["annotations"] = json!({"dittofs.io/s3-credentials-hash": "0000"});
    let message = rejection(&verified(&object, &Settings::default())).to_owned();
    assert!(
        message.starts_with("Pod \"dittofs-s3-sample-0\": it runs with outdated S3 credentials")
            && message.ends_with(&format!("-n dittofs-system. Also, {refusal}")),
        "{message}"
    );
    let decision = verified(&object, &warn);
    assert!(rejection(&decision).ends_with("-n dittofs-system"));
    assert_eq!(decision.warnings.len(), 1);
    assert!(decision.warnings[0].contains("(onCredentialRoute: warn)"));
}

/// The `dittofs` container as DittoFS operator v0.4.1-v0.12.0 render it.
fn operator_container(command: &str) -> Value {
    let mut env = json!([
        {"name": "DITTOFS_LOGGING_LEVEL", "value": "INFO"},
        {"name": "DITTOFS_CONTROLPLANE_SECRET", "valueFrom": {"secretKeyRef": {"name": "dittofs-s3-sample-jwt", "key": "secret"}}},
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "dittofs-s3-sample-pguser", "key": "uri"}}},
    ]);
    env.as_array_mut().expect("env").extend(
        env_for(SECRET, "eu-west-1")
            .as_array()
            .expect("env")
            .iter()
            .skip(1)
            .cloned(),
    );
    json!({"name": "dittofs", "image": "marmos91c/dittofs:v0.12.0", "command": [command],
           "args": ["start", "--foreground", "--config", "/config/config.yaml"],
           "ports": [{"name": "nfs", "containerPort": 2049, "protocol": "TCP"}],
           "env": env,
           "volumeMounts": [{"name": "metadata", "mountPath": "/data/metadata"},
                            {"name": "cache", "mountPath": "/data/cache"},
                            {"name": "config", "mountPath": "/config"}],
           "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
           "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}}})
}

#[test]
fn operator_rendered_containers_pass_and_the_policys_output_is_a_fixed_point() {
    for command in ["/app/dfs", "/app/dittofs"] {
        let mut object = statefulset(json!([operator_container(command)]));
        object["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "config", "configMap": {"name": "dittofs-s3-sample-config"}}]);
        object["spec"]["template"]["metadata"]["annotations"] =
            json!({"dittofs.io/config-hash": "5555"});
        let create = inject(
            &request(WorkloadKind::StatefulSet, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &healthy(),
        );
        assert!(create.warnings.is_empty(), "{:?}", create.warnings);
        let output = mutated(&create).clone();
        assert_eq!(
            output["spec"]["template"]["spec"], object["spec"]["template"]["spec"],
            "the operator's env already holds what the policy writes"
        );
        // Its own output, written again, changes nothing and is not refused.
        let again = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &output, &output),
            &Settings::default(),
            &healthy(),
        );
        assert_eq!(again, Decision::accept(), "{command}");
        assert_eq!(
            verify(
                &request(WorkloadKind::StatefulSet, "UPDATE", &output, &output),
                &Settings::default(),
                &healthy()
            ),
            Decision::accept(),
            "{command}"
        );
        // Kept after a failed lookup: admitted with the lookup's warning only.
        let kept = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &object, &output),
            &Settings::default(),
            &cluster(
                Err(LookupError::Failed("timeout".into())),
                Ok(good_secret()),
            ),
        );
        assert!(!matches!(kept.verdict, Verdict::Reject(_)), "{kept:?}");
        assert_eq!(kept.warnings.len(), 1);
    }
}

#[test]
fn routes_matter_only_where_credentials_are_injected() {
    // Not DittoFS's, a Pod UPDATE, a container without the credentials: no route is weighed.
    let mut other = pod(json!([routed_container(injected_env())]));
    other["metadata"]["labels"] = json!({"app": "web"});
    let updated = pod(json!([routed_container(injected_env())]));
    let no_credentials = cluster(Ok(ditto(json!({"region": "eu-west-1"}))), Ok(good_secret()));
    let plain = pod(json!([routed_container(plain_env())]));
    for (label, object, operation, lookups) in [
        ("not DittoFS", &other, "CREATE", healthy()),
        ("pod update", &updated, "UPDATE", healthy()),
        ("no credentials", &plain, "CREATE", no_credentials),
    ] {
        let decision = inject(
            &request(WorkloadKind::Pod, operation, object, object),
            &Settings::default(),
            &lookups,
        );
        assert_eq!(decision, Decision::accept(), "{label}");
    }
    // Another container's routes are not the DittoFS container's.
    let mut routed_sidecar = routed_container(plain_env());
    routed_sidecar["name"] = json!("sidecar");
    let sidecar = pod(json!([routed_sidecar, dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &sidecar, &Value::Null),
        &Settings::default(),
        &healthy(),
    );
    assert!(
        matches!(decision.verdict, Verdict::Mutate(_)),
        "{decision:?}"
    );
}

#[test]
fn an_owner_reference_that_is_not_a_name_never_reaches_the_host() {
    let mut object = statefulset(json!([dittofs_container(plain_env())]));
    object["metadata"]["ownerReferences"][0]["name"] =
        json!("../../../namespaces/victim/dittoservers/x");
    let cluster = healthy();
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "CREATE", &object, &Value::Null),
        &Settings::default(),
        &cluster,
    );
    // Its credentials cannot be determined, so it is not created without them.
    assert!(
        rejection(&decision).contains("is not a valid name"),
        "{decision:?}"
    );
    assert!(cluster.lookups.borrow().is_empty());
}

#[test]
fn after_a_failed_lookup_the_previous_credentials_are_not_handed_to_new_code() {
    let old = injected_statefulset("previous-hash");
    for (field, value) in [
        ("image", json!("registry.example/evil:1")),
        ("command", json!(["/bin/sh", "-c", "exfiltrate"])),
        ("args", json!(["--debug"])),
    ] {
        // The operator re-renders the template for a changed DittoServer spec.
        let mut container = dittofs_container(plain_env());
        container[field] = value;
        let new = statefulset(json!([container]));
        for answer in [
            Err(LookupError::NotFound),
            Err(LookupError::Failed("timeout".into())),
        ] {
            let decision = inject(
                &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
                &Settings::default(),
                &cluster(answer, Ok(good_secret())),
            );
            let message = rejection(&decision);
            assert!(
                message.starts_with(&format!(
                    "StatefulSet \"dittofs-s3-sample\": its container \"dittofs\" changes {field} \
                     while the S3 credentials cannot be checked ("
                )),
                "{message}"
            );
        }
    }
}

#[test]
fn the_owner_is_read_fresh_so_a_dropped_reference_is_not_injected_from_a_stale_answer() {
    // The DittoServer no longer names a Secret; whatever the host cached, the policy asks the
    // API server, whose answer is the one that counts.
    let cluster = FakeCluster::default().with(
        ObjectRef::ditto_server(NS, DITTO),
        Ok(
            json!({"kind": "DittoServer", "metadata": {"name": DITTO, "namespace": NS},
                  "spec": {"image": "registry.example/evil:1"}}),
        ),
    );
    let new = statefulset(json!([dittofs_container(plain_env())]));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "CREATE", &new, &Value::Null),
        &Settings::default(),
        &cluster,
    );
    assert_eq!(decision, Decision::accept());
    assert_eq!(
        *cluster.lookups.borrow(),
        [format!(
            "DittoServer \"{DITTO}\" in namespace \"{NS}\" (fresh)"
        )]
    );
}

#[test]
fn a_code_change_keeps_the_credentials_when_the_dittoserver_was_read() {
    // The DittoServer was read, so its image change was asked about when it was written; only
    // its Secret (or its spec.s3, valid when admitted) cannot be used. The operator's write must
    // not be stuck until someone fixes them.
    let old = injected_statefulset("previous-hash");
    let mut container = dittofs_container(plain_env());
    container["image"] = json!("marmos91c/dittofs:0.12.1");
    let new = statefulset(json!([container]));
    let invalid =
        ditto(json!({"credentialsSecretRef": {"secretName": SECRET}, "bucket": "Legacy_Bucket"}));
    for (label, cluster) in [
        ("invalid spec.s3", cluster(Ok(invalid), Ok(good_secret()))),
        (
            "Secret missing",
            cluster(Ok(ditto_with_ref()), Err(LookupError::NotFound)),
        ),
    ] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
            &Settings::default(),
            &cluster,
        );
        let kept = mutated(&decision);
        assert_eq!(
            kept["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("marmos91c/dittofs:0.12.1"),
            "{label}"
        );
        assert_eq!(
            kept["spec"]["template"]["spec"]["containers"][0]["env"],
            old["spec"]["template"]["spec"]["containers"][0]["env"],
            "{label}"
        );
        assert!(
            decision.warnings[0].starts_with("kept the S3 env and hash of the previous revision"),
            "{label}: {decision:?}"
        );
    }
}

#[test]
fn a_failed_lookup_with_nothing_of_the_policys_to_keep_says_so() {
    let old = statefulset(json!([dittofs_container(plain_env())]));
    let mut rendered = plain_env();
    if let Some(env) = rendered.as_array_mut() {
        env.push(json!({"name": "DITTOFS_CACHE", "value": "on"}));
    }
    let new = statefulset(json!([dittofs_container(rendered)]));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
        &Settings::default(),
        &cluster(
            Err(LookupError::Failed("timeout".into())),
            Ok(good_secret()),
        ),
    );
    assert_eq!(decision.verdict, Verdict::Accept, "{decision:?}");
    assert!(
        decision.warnings[0]
            .starts_with("S3 credentials of StatefulSet \"dittofs-s3-sample\" left as they came: "),
        "{:?}",
        decision.warnings
    );
}

// --- lifecycle gaps (issue #22 item 4) ---------------------------------------------------------

/// The managed entries of a workload's `dittofs` container, in order.
fn managed_env(object: &Value, kind: WorkloadKind) -> Vec<Value> {
    find_container(object, kind, "dittofs")
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .map(|entries| env::managed_entries(entries))
        .unwrap_or_default()
}

/// What a decision leaves stored: the mutation, else the object as it came; `None` if refused.
fn admitted(decision: &Decision, object: &Value) -> Option<Value> {
    match &decision.verdict {
        Verdict::Accept => Some(object.clone()),
        Verdict::Mutate(mutated) => Some(mutated.clone()),
        Verdict::Reject(_) => None,
    }
}

#[test]
fn a_statefulset_create_whose_dittoserver_cannot_be_read_is_refused_for_a_retry() {
    // An orphan-adopting recreate: created without hash and record, the template would roll
    // the adopted pods onto no credentials. Refused, the operator retries.
    let object = statefulset(json!([dittofs_container(plain_env())]));
    for answer in [
        Err(LookupError::NotFound),
        Err(LookupError::AccessDenied("forbidden".into())),
        Err(LookupError::Failed("timeout".into())),
        Ok(ditto(json!({"region": "BAD"}))),
    ] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "CREATE", &object, &Value::Null),
            &Settings::default(),
            &cluster(answer, Ok(good_secret())),
        );
        let message = rejection(&decision);
        assert!(
            message.starts_with(
                "StatefulSet \"dittofs-s3-sample\": not created while its S3 credentials cannot \
                 be determined ("
            ),
            "{message}"
        );
        assert!(
            message.ends_with("retry once the lookup succeeds"),
            "{message}"
        );
    }
    // A template that already carries the policy's output keeps passing as it came.
    let carried = injected_statefulset(&good_hash());
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "CREATE", &carried, &Value::Null),
        &Settings::default(),
        &cluster(Err(LookupError::NotFound), Ok(good_secret())),
    );
    assert_eq!(decision.verdict, Verdict::Accept, "{decision:?}");
}

#[test]
fn a_failed_lookup_drops_credentials_the_previous_revision_did_not_have() {
    // The previous template had no AWS_*; operator v0.12 renders creds-v2, which is missing.
    let old = statefulset(json!([dittofs_container(plain_env())]));
    let new = statefulset(json!([dittofs_container(env_for("creds-v2", "eu-west-1"))]));
    let (renamed, unreadable) = (World::Renamed.cluster(), World::DittoTimeout.cluster());
    for lookups in [&renamed, &unreadable] {
        let decision = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &new, &old),
            &Settings::default(),
            lookups,
        );
        assert_eq!(mutated(&decision), &old, "{decision:?}");
        assert!(
            decision.warnings[0].starts_with(
                "removed AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION \
                 from StatefulSet \"dittofs-s3-sample\", as its previous revision had no S3 env: "
            ),
            "{:?}",
            decision.warnings
        );
    }
}

#[test]
fn a_failed_lookup_puts_back_what_a_person_removed_and_says_so() {
    let stored = injected_statefulset(&good_hash());
    let mut edited = stored.clone();
    if let Some(env) = edited["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut() {
        env.retain(|entry| env::entry_name(entry) != Some(env::ENDPOINT_URL));
    }
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &edited, &stored),
        &Settings::default(),
        &cluster(
            Err(LookupError::Failed("timeout".into())),
            Ok(good_secret()),
        ),
    );
    assert_eq!(mutated(&decision), &stored);
    assert!(
        decision.warnings[0].starts_with(
            "kept the S3 env and hash of the previous revision of StatefulSet \
             \"dittofs-s3-sample\" (put back AWS_ENDPOINT_URL, which this write removed): "
        ),
        "{:?}",
        decision.warnings
    );
}

#[test]
fn a_kept_endpoint_is_checked_even_in_the_secret_whose_read_just_failed() {
    // The DittoServer now reads its endpoint from entry "url" of the same Secret, which lacks
    // the secret key; the kept env still reads entry "endpoint", tampered with meanwhile.
    let restricted = settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]}));
    let stored = injected_statefulset(&good_hash());
    let mut restarted = stored.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("now");
    let rekeyed = ditto(
        json!({"credentialsSecretRef": {"secretName": SECRET, "endpointKey": "url"},
                               "region": "eu-west-1"}),
    );
    let incomplete = secret(json!({"accessKeyId": b64(FAKE_KEY),
                                   "endpoint": b64("https://s3.attacker.example")}));
    let decision = inject(
        &request(WorkloadKind::StatefulSet, "UPDATE", &restarted, &stored),
        &restricted,
        &cluster(Ok(rekeyed), Ok(incomplete)),
    );
    let message = rejection(&decision);
    assert!(
        message.ends_with("entry \"endpoint\" has a host that is not in allowedEndpointHosts"),
        "{message}"
    );
}

#[test]
fn a_workload_the_policy_injected_follows_a_dittoserver_that_dropped_its_credentials() {
    let stored = injected_statefulset(&good_hash());
    let from_template = pod_of_template(&stored, dittofs_container(injected_env()));
    let mut restarted = stored.clone();
    restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("now");
    let dropped = cluster(Ok(ditto(json!({"region": "eu-west-1"}))), Ok(good_secret()));
    for (kind, operation, object, old) in [
        (WorkloadKind::Pod, "CREATE", &from_template, &Value::Null),
        (WorkloadKind::StatefulSet, "UPDATE", &restarted, &stored),
    ] {
        let decision = inject(
            &request(kind, operation, object, old),
            &Settings::default(),
            &dropped,
        );
        let result = mutated(&decision);
        assert_eq!(
            find_container(result, kind, "dittofs").and_then(|c| c.get("env")),
            Some(&plain_env()),
            "{kind:?}"
        );
        assert_eq!(
            pod_annotation(result, kind, "dittofs.io/s3-credentials-hash"),
            None
        );
        assert_eq!(
            pod_annotation(result, kind, "dittofs.io/s3-credentials-source"),
            None
        );
        assert!(
            decision.warnings[0].starts_with(
                "removed the S3 env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, \
                 AWS_REGION) the policy injected into "
            ),
            "{:?}",
            decision.warnings
        );
        // Its output is a fixed point, and verify accepts it.
        let again = inject(
            &request(kind, "UPDATE", result, result),
            &Settings::default(),
            &dropped,
        );
        if kind == WorkloadKind::StatefulSet {
            assert_eq!(again, Decision::accept());
        }
        let checked = verify(
            &request(kind, "CREATE", result, &Value::Null),
            &Settings::default(),
            &dropped,
        );
        assert_eq!(checked, Decision::accept());
        // The workload as it came is reported by verify, with the way to roll it.
        let stale = verify(
            &request(kind, operation, object, old),
            &Settings::default(),
            &dropped,
        );
        let message = rejection(&stale);
        assert!(
            message.contains("holds S3 credentials that DittoServer \"dittofs-s3-sample\" in namespace \"dittofs-system\" no longer names"),
            "{message}"
        );
        assert!(
            message.contains("kubectl rollout restart statefulset/dittofs-s3-sample"),
            "{message}"
        );
    }
    // A person's own definitions in a workload the policy never injected stay.
    let own = pod(json!([dittofs_container(
        json!([{"name": "AWS_REGION", "value": "us-east-1"}])
    )]));
    let decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &own, &Value::Null),
        &Settings::default(),
        &dropped,
    );
    assert_eq!(decision, Decision::accept());
}

/// The state of the cluster during one write of the lifecycle sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum World {
    Healthy,
    /// The DittoServer names creds-v2, which does not exist yet.
    Renamed,
    SecretDenied,
    DittoTimeout,
    DittoGone,
    /// The DittoServer dropped spec.s3.
    NoCredentials,
}

const WORLDS: [World; 6] = [
    World::Healthy,
    World::Renamed,
    World::SecretDenied,
    World::DittoTimeout,
    World::DittoGone,
    World::NoCredentials,
];

impl World {
    fn cluster(self) -> FakeCluster {
        match self {
            Self::Healthy => healthy(),
            Self::Renamed => FakeCluster::default()
                .with(
                    ObjectRef::ditto_server(NS, DITTO),
                    Ok(ditto_in("eu-west-1", "creds-v2")),
                )
                .with(
                    ObjectRef::secret(NS, "creds-v2"),
                    Err(LookupError::NotFound),
                )
                .with(ObjectRef::secret(NS, SECRET), Ok(good_secret())),
            Self::SecretDenied => cluster(
                Ok(ditto_with_ref()),
                Err(LookupError::AccessDenied("forbidden".into())),
            ),
            Self::DittoTimeout => cluster(
                Err(LookupError::Failed("etcdserver: request timed out".into())),
                Ok(good_secret()),
            ),
            Self::DittoGone => cluster(Err(LookupError::NotFound), Ok(good_secret())),
            Self::NoCredentials => {
                cluster(Ok(ditto(json!({"region": "eu-west-1"}))), Ok(good_secret()))
            }
        }
    }

    fn owner_unreadable(self) -> bool {
        matches!(self, Self::DittoTimeout | Self::DittoGone)
    }

    fn lookup_fails(self) -> bool {
        !matches!(self, Self::Healthy | Self::NoCredentials)
    }

    /// The env operator v0.4-v0.12 renders, from what its cache says the DittoServer names.
    fn operator_env(self) -> Value {
        match self {
            Self::Renamed => env_for("creds-v2", "eu-west-1"),
            Self::NoCredentials => plain_env(),
            _ => injected_env(),
        }
    }
}

/// Who writes the StatefulSet, and how.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// An operator that renders no AWS env (annotations replaced).
    Operator,
    /// Operator v0.4-v0.12, which renders the AWS env itself.
    OperatorWithEnv,
    /// `kubectl rollout restart`.
    Restart,
    /// A person removes AWS_ENDPOINT_URL from the stored template.
    PersonRemovesEndpoint,
    /// The StatefulSet was deleted with `--cascade=orphan`; the operator creates it again.
    OrphanRecreate,
}

const WRITES: [Write; 5] = [
    Write::Operator,
    Write::OperatorWithEnv,
    Write::Restart,
    Write::PersonRemovesEndpoint,
    Write::OrphanRecreate,
];

/// What pods of a template run with: the managed entries, the hash and the record.
fn credentials_of(object: &Value) -> (Vec<Value>, Option<String>, Option<String>) {
    let kind = WorkloadKind::StatefulSet;
    let annotation = |key| pod_annotation(object, kind, key).map(str::to_owned);
    (
        managed_env(object, kind),
        annotation("dittofs.io/s3-credentials-hash"),
        annotation("dittofs.io/s3-credentials-source"),
    )
}

/// Plays one write against what is stored; returns what is stored afterwards and checks the
/// step's own promises.
fn play(stored: Option<&Value>, world: World, write: Write, trace: &str) -> Option<Value> {
    let lookups = world.cluster();
    let rendered = statefulset(json!([dittofs_container(match write {
        Write::OperatorWithEnv => world.operator_env(),
        _ => plain_env(),
    })]));
    let (operation, object, old) = match (stored, write) {
        (None, _) | (Some(_), Write::OrphanRecreate) => ("CREATE", rendered, Value::Null),
        (Some(stored), Write::Operator | Write::OperatorWithEnv) => {
            ("UPDATE", rendered, stored.clone())
        }
        (Some(stored), Write::Restart) => {
            let mut restarted = stored.clone();
            restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                json!(trace);
            ("UPDATE", restarted, stored.clone())
        }
        (Some(stored), Write::PersonRemovesEndpoint) => {
            let mut edited = stored.clone();
            if let Some(env) =
                edited["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut()
            {
                env.retain(|entry| env::entry_name(entry) != Some(env::ENDPOINT_URL));
            }
            ("UPDATE", edited, stored.clone())
        }
    };
    let decision = inject(
        &request(WorkloadKind::StatefulSet, operation, &object, &old),
        &Settings::default(),
        &lookups,
    );
    assert_no_values(&decision);
    let result = admitted(&decision, &object);
    if world.lookup_fails() {
        match (operation, &result) {
            // What the pods run with stays: the stored template's, or (orphans) the pods' own.
            ("UPDATE", Some(result)) => assert_eq!(
                credentials_of(result),
                credentials_of(&old),
                "{trace}: {decision:?}"
            ),
            // Created without knowing which credentials: refused, the operator retries.
            ("CREATE", Some(_)) if world.owner_unreadable() => {
                panic!("{trace}: created without its credentials: {decision:?}")
            }
            // The DittoServer was read: the first injection names its Secret, without a hash.
            ("CREATE", Some(result)) => assert!(
                credentials_of(result).2.is_some() && credentials_of(result).1.is_none(),
                "{trace}: {decision:?}"
            ),
            _ => {}
        }
    }
    let Some(result) = result else {
        // A refused orphan recreate leaves the pods as they were; a refused write, the stored.
        return stored.cloned();
    };
    // The policy never rejects its own output, in any world, and in the world it was
    // written in, its output is a fixed point.
    for other in WORLDS {
        let again = inject(
            &request(WorkloadKind::StatefulSet, "UPDATE", &result, &result),
            &Settings::default(),
            &other.cluster(),
        );
        assert!(
            !matches!(again.verdict, Verdict::Reject(_)),
            "{trace}, then {other:?}: {again:?}"
        );
        if other == world {
            assert_eq!(again.verdict, Verdict::Accept, "{trace}: {again:?}");
        }
    }
    // A pod created from it is not refused, and a failed lookup leaves it as it came.
    let container = find_container(&result, WorkloadKind::StatefulSet, "dittofs")
        .cloned()
        .unwrap_or(Value::Null);
    let from_template = pod_of_template(&result, container);
    let pod_decision = inject(
        &request(WorkloadKind::Pod, "CREATE", &from_template, &Value::Null),
        &Settings::default(),
        &lookups,
    );
    assert!(
        !matches!(pod_decision.verdict, Verdict::Reject(_)),
        "{trace}: pod {pod_decision:?}"
    );
    // (A template without the policy's output gets the first injection when the DittoServer
    // was read: the documented Secret-missing case.)
    let (_, hash, record) = credentials_of(&result);
    if world.lookup_fails() && (hash.is_some() || record.is_some()) {
        assert_eq!(
            pod_decision.verdict,
            Verdict::Accept,
            "{trace}: pod {pod_decision:?}"
        );
    }
    Some(result)
}

/// Plays every continuation of `stored` for `depth` more writes; returns how many sequences.
fn play_on(stored: Option<&Value>, trace: &str, depth: usize) -> usize {
    if depth == 0 {
        return 1;
    }
    let mut played = 0;
    for world in WORLDS {
        for write in WRITES {
            // With nothing stored every write is the operator's CREATE: two distinct ones.
            if stored.is_none() && !matches!(write, Write::Operator | Write::OperatorWithEnv) {
                continue;
            }
            let trace = format!("{trace}{world:?}/{write:?} ");
            let next = play(stored, world, write, &trace);
            played += play_on(next.as_ref(), &trace, depth - 1);
        }
    }
    played
}

#[test]
fn lifecycle_sequences_never_reject_their_own_output_nor_move_credentials_on_a_failed_lookup() {
    // Each step's output is the next step's stored object.
    // A refused CREATE leaves nothing stored, so only CREATEs follow it.
    let played = play_on(None, "", 3);
    assert!(played >= 12 * 12 * 12, "{played}");
}
