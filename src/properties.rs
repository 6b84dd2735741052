//! Property tests over generated inputs: injection is idempotent and keeps unknown fields,
//! verify accepts whatever inject produced, and the hash depends only on the consumed entries.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::cluster::fake::FakeCluster;
use crate::cluster::{Cluster, ObjectRef};
use crate::credentials::{ConsumedCredentials, SecretData};
use crate::decision::{Decision, Verdict};
use crate::dittoserver::SecretKeys;
use crate::settings::Settings;
use crate::test_support::{b64, settings};
use crate::workload::{WorkloadKind, WorkloadRequest, inject, verify};

const NS: &str = "ns";

fn env_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("AWS_REGION".to_owned()),
        Just("AWS_ACCESS_KEY_ID".to_owned()),
        "[A-Z][A-Z0-9_]{0,12}",
    ]
}

fn env_entry() -> impl Strategy<Value = Value> {
    (env_name(), "[a-z0-9-]{0,12}").prop_map(|(name, value)| json!({"name": name, "value": value}))
}

/// Keys no Kubernetes version knows, with arbitrary JSON leaves.
fn unknown_fields() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::from)
    ];
    proptest::collection::btree_map("x[A-Za-z]{1,8}", leaf, 0..3)
        .prop_map(|map| map.into_iter().collect())
}

/// A DittoFS Pod or StatefulSet with random env, sidecars, annotations and unknown fields.
fn workload() -> impl Strategy<Value = (WorkloadKind, Value)> {
    (
        prop_oneof![Just(WorkloadKind::Pod), Just(WorkloadKind::StatefulSet)],
        proptest::collection::vec(env_entry(), 0..6),
        0usize..4,
        proptest::option::of(proptest::collection::btree_map("[a-z.]{1,10}", "[a-z]{0,5}", 0..3)),
        unknown_fields(),
        unknown_fields(),
    )
        .prop_map(|(kind, env, sidecars, annotations, pod_extra, container_extra)| {
            let mut container = json!({"name": "dittofs", "image": "dittofs", "env": env});
            container.as_object_mut().expect("object").extend(container_extra);
            let mut containers: Vec<Value> = (0..sidecars).map(|i| json!({"name": format!("side-{i}")})).collect();
            containers.insert(sidecars / 2, container);
            let mut pod_spec = json!({"containers": containers});
            pod_spec.as_object_mut().expect("object").extend(pod_extra);
            let mut pod_metadata = json!({"name": "p-0", "labels": {"app": "dittofs-server", "instance": "d"}});
            if let Some(annotations) = annotations {
                pod_metadata["annotations"] = json!(annotations);
            }
            let object = match kind {
                WorkloadKind::Pod => json!({"metadata": pod_metadata, "spec": pod_spec}),
                WorkloadKind::StatefulSet => json!({
                    "metadata": {"name": "d", "ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1",
                        "kind": "DittoServer", "name": "d", "controller": true}]},
                    "spec": {"template": {"metadata": pod_metadata, "spec": pod_spec}}}),
            };
            (kind, object)
        })
}

fn cluster(secret_data: Value) -> FakeCluster {
    let ditto = json!({"metadata": {"name": "d"}, "spec": {"s3": {"credentialsSecretRef": {"secretName": "c"}, "region": "fr-par"}}});
    FakeCluster::default()
        .with(ObjectRef::ditto_server(NS, "d"), Ok(ditto))
        .with(ObjectRef::secret(NS, "c"), Ok(json!({"data": secret_data})))
}

fn good_data() -> Value {
    json!({"accessKeyId": b64("FAKE-ID"), "secretAccessKey": b64("FAKE-SECRET")})
}

fn run(
    decide: fn(&WorkloadRequest<'_>, &Settings, &dyn Cluster) -> Decision,
    kind: WorkloadKind,
    object: &Value,
    settings: &Settings,
) -> Decision {
    let request = WorkloadRequest {
        kind,
        operation: "CREATE",
        namespace: NS,
        object,
        old_object: &Value::Null,
    };
    decide(&request, settings, &cluster(good_data()))
}

fn hash_with(keys: &SecretKeys, data: Value) -> String {
    let secret = json!({ "data": data });
    ConsumedCredentials::read(&SecretData::from_object(&secret).expect("secret"), keys)
        .expect("complete")
        .hash()
}

fn hash_of(data: &Value) -> String {
    hash_with(&SecretKeys::default(), data.clone())
}

proptest! {
    #[test]
    fn injection_is_idempotent_keeps_unknown_fields_and_passes_verify((kind, object) in workload()) {
        let overwrite = settings(json!({"onEnvConflict": "overwrite"}));
        let first = run(inject, kind, &object, &overwrite);
        let output = match first.verdict {
            Verdict::Mutate(output) => output,
            Verdict::Accept => object.clone(),
            Verdict::Reject(message) => return Err(TestCaseError::fail(message)),
        };
        // Running on its own output changes nothing.
        prop_assert_eq!(run(inject, kind, &output, &overwrite).verdict, Verdict::Accept);
        // What injection produced passes verification.
        prop_assert_eq!(run(verify, kind, &output, &Settings::default()), Decision::accept());
        // Only env and the hash annotation may differ: remove both and the objects are equal.
        let strip = |mut value: Value| {
            let (containers, metadata) = match kind {
                WorkloadKind::Pod => ("/spec/containers", "/metadata"),
                WorkloadKind::StatefulSet => ("/spec/template/spec/containers", "/spec/template/metadata"),
            };
            if let Some(containers) = value.pointer_mut(containers).and_then(Value::as_array_mut) {
                for container in containers {
                    if container["name"] == "dittofs" { container.as_object_mut().map(|c| c.remove("env")); }
                }
            }
            if let Some(annotations) = value.pointer_mut(&format!("{metadata}/annotations")).and_then(Value::as_object_mut) {
                annotations.remove("dittofs.io/s3-credentials-hash");
                annotations.remove(crate::workload::ownership::RECORD_ANNOTATION);
                if annotations.is_empty() { value.pointer_mut(metadata).and_then(Value::as_object_mut).map(|m| m.remove("annotations")); }
            }
            value
        };
        prop_assert_eq!(strip(output), strip(object));
    }

    #[test]
    fn hash_ignores_key_order_and_unrelated_keys(
        id in "[ -~]{1,20}", secret in "[ -~]{1,20}", endpoint in proptest::option::of("[ -~]{1,20}"),
        unrelated in proptest::collection::btree_map("u[a-z]{1,5}", "[ -~]{0,10}", 0..4),
    ) {
        let mut forward = Map::new();
        forward.insert("accessKeyId".into(), json!(b64(&id)));
        forward.insert("secretAccessKey".into(), json!(b64(&secret)));
        if let Some(endpoint) = &endpoint { forward.insert("endpoint".into(), json!(b64(endpoint))); }
        let mut noisy: Vec<(String, Value)> = forward.clone().into_iter().collect();
        noisy.extend(unrelated.iter().map(|(k, v)| (k.clone(), json!(b64(v)))));
        noisy.reverse();
        prop_assert_eq!(hash_of(&Value::Object(forward)), hash_of(&Value::Object(noisy.into_iter().collect())));
    }

    #[test]
    fn framing_separates_key_value_splits(key in "[a-z]{1,8}", value in "[a-z]{2,12}", cut in 1usize..11) {
        // A custom key name that absorbs the start of its value: the same bytes, split differently.
        let cut = cut.min(value.len() - 1);
        let (moved, rest) = value.split_at(cut);
        let longer_key = format!("{key}{moved}");
        let keys = |access_key_id: &str| SecretKeys {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: "zz-secret".to_owned(),
            endpoint: "zz-endpoint".to_owned(),
        };
        let short = hash_with(&keys(&key), json!({ key.as_str(): b64(&value), "zz-secret": b64("S") }));
        let long = hash_with(&keys(&longer_key), json!({ longer_key.as_str(): b64(rest), "zz-secret": b64("S") }));
        prop_assert_ne!(short, long);
    }
}
