//! Property tests over generated inputs: injection is idempotent and keeps unknown fields,
//! verify accepts whatever inject produced, and the hash depends only on the consumed entries.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::cluster::fake::FakeCluster;
use crate::cluster::{Cluster, ObjectRef};
use crate::credentials::{ConsumedCredentials, SecretData};
use crate::decision::{Decision, Verdict};
use crate::dittoserver::SecretKeys;
use crate::edits::Edits;
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
    decide: fn(&WorkloadRequest<'_>, &Settings, &dyn Cluster) -> Decision<Edits>,
    kind: WorkloadKind,
    object: &Value,
    settings: &Settings,
) -> Decision {
    run_in(decide, kind, object, settings, &cluster(good_data()))
}

/// A CREATE of `object` decided against `cluster`, its edits applied to a copy of `object`.
fn run_in(
    decide: fn(&WorkloadRequest<'_>, &Settings, &dyn Cluster) -> Decision<Edits>,
    kind: WorkloadKind,
    object: &Value,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    let request = WorkloadRequest {
        kind,
        operation: "CREATE",
        namespace: NS,
        object,
        old_object: &Value::Null,
    };
    decide(&request, settings, cluster).applied_to(object.clone())
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
    /// Requests the early stop skips are accepted untouched by the full review too, DittoFS's or not.
    #[test]
    fn skipping_unparsed_requests_changes_no_decision(
        (kind, object) in workload(),
        operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE")],
        strip in 0usize..4,
    ) {
        let mut object = object;
        // Labels or owners removed or changed: a Pod without its labels, or a StatefulSet without
        // its owner, is not DittoFS's; the other removals leave it DittoFS's.
        match strip {
            1 => { object["metadata"].as_object_mut().expect("metadata").remove("labels"); }
            2 => { object["metadata"].as_object_mut().expect("metadata").remove("ownerReferences"); }
            3 => { object["metadata"]["labels"] = json!({"app": "other"}); }
            _ => {}
        }
        let (group, kind_name) = match kind {
            WorkloadKind::Pod => ("", "Pod"),
            WorkloadKind::StatefulSet => ("apps", "StatefulSet"),
        };
        let request = json!({"uid": "u", "namespace": NS, "operation": operation,
            "kind": {"group": group, "version": "v1", "kind": kind_name},
            "object": object, "oldObject": object});
        let payload = serde_json::to_vec(&json!({"request": request})).expect("json");
        let cluster = cluster(good_data());
        let whole: kubewarden_policy_sdk::request::KubernetesAdmissionRequest =
            serde_json::from_value(request).expect("request");
        let full = crate::admission::decide(whole, &Settings::default(), &cluster);
        prop_assert_eq!(crate::admission::decide_payload(&payload, &cluster), full);
    }

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
    fn a_masking_host_and_an_older_one_give_the_same_decisions(
        (kind, object) in workload(),
        unrelated in proptest::collection::btree_map("u[a-z]{1,5}", "[ -~]{0,10}", 0..4),
        workloads in prop_oneof![Just("inject"), Just("verify")],
    ) {
        let mut data = good_data();
        for (key, value) in &unrelated {
            data[key] = json!(b64(value));
        }
        let settings = settings(json!({"workloads": workloads, "onEnvConflict": "overwrite"}));
        let request = WorkloadRequest { kind, operation: "CREATE", namespace: NS, object: &object, old_object: &Value::Null };
        let decide = if workloads == "inject" { inject } else { verify };
        let whole = decide(&request, &settings, &cluster(data.clone()));
        let pruned = decide(&request, &settings, &cluster(data).pruning());
        prop_assert_eq!(whole, pruned);
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

/// The life of one DittoFS server, as random sequences of cluster events and writes.
mod lifecycle {
    use super::*;
    use crate::cluster::LookupError;
    use crate::workload::env::{MANAGED, entry_name};
    use crate::workload::ownership::RECORD_ANNOTATION;

    const HASH: &str = "dittofs.io/s3-credentials-hash";

    #[derive(Debug, Clone)]
    enum Event {
        RotateSecret,
        CreateSecret(&'static str),
        DeleteSecret(&'static str),
        NameSecret(&'static str),
        NameSecretKey(&'static str),
        SetRegion(&'static str),
        DittoServerUnreadable(bool),
        SecretsDenied(bool),
        OperatorReconcile,
        RolloutRestart,
        PodCreate,
    }

    fn event() -> impl Strategy<Value = Event> {
        let secret = prop_oneof![Just("creds"), Just("creds-v2")];
        prop_oneof![
            Just(Event::RotateSecret),
            secret.clone().prop_map(Event::CreateSecret),
            secret.clone().prop_map(Event::DeleteSecret),
            secret.prop_map(Event::NameSecret),
            prop_oneof![Just("secretAccessKey"), Just("password")].prop_map(Event::NameSecretKey),
            prop_oneof![Just("eu-west-1"), Just("fr-par"), Just("auto")].prop_map(Event::SetRegion),
            any::<bool>().prop_map(Event::DittoServerUnreadable),
            any::<bool>().prop_map(Event::SecretsDenied),
            Just(Event::OperatorReconcile),
            Just(Event::RolloutRestart),
            Just(Event::PodCreate),
        ]
    }

    /// The cluster around the policy: the DittoServer's spec.s3, the Secrets and what fails.
    struct World {
        region: &'static str,
        secret_name: &'static str,
        /// The Secret key that holds the secret access key (spec.s3 may rename it).
        secret_key: &'static str,
        /// Secret name and its rotation count.
        secrets: Vec<(&'static str, u32)>,
        ditto_unreadable: bool,
        secrets_denied: bool,
        /// Operator v0.4-v0.12 render the env themselves; other builds do not.
        operator_injects: bool,
        /// The host applies field masks (Kubewarden >= 1.33).
        host_prunes: bool,
    }

    impl World {
        fn cluster(&self) -> FakeCluster {
            let ditto = json!({"metadata": {"name": "d"}, "spec": {"s3": {
                "credentialsSecretRef": {"secretName": self.secret_name, "secretAccessKeyKey": self.secret_key},
                "region": self.region}}});
            let ditto = if self.ditto_unreadable {
                Err(LookupError::Failed("etcdserver: request timed out".into()))
            } else {
                Ok(ditto)
            };
            let mut cluster = FakeCluster::default().with(ObjectRef::ditto_server(NS, "d"), ditto);
            for (name, version) in &self.secrets {
                let answer = if self.secrets_denied {
                    Err(LookupError::AccessDenied("secrets is forbidden".into()))
                } else {
                    Ok(json!({"data": {"accessKeyId": b64("FAKE-ID"),
                                       "secretAccessKey": b64(&format!("FAKE-SECRET-{version}")),
                                       "password": b64(&format!("FAKE-PASSWORD-{version}"))}}))
                };
                cluster = cluster.with(ObjectRef::secret(NS, name), answer);
            }
            if self.host_prunes {
                cluster.pruning()
            } else {
                cluster
            }
        }

        /// Whether a write now meets a lookup that fails (or a Secret that is not there).
        fn lookups_fail(&self) -> bool {
            self.ditto_unreadable
                || self.secrets_denied
                || !self
                    .secrets
                    .iter()
                    .any(|(name, _)| *name == self.secret_name)
        }

        /// The StatefulSet the operator writes: a new annotation map, its own env.
        fn operator_statefulset(&self) -> Value {
            let mut env = vec![json!({"name": "DITTOFS_LOG_LEVEL", "value": "info"})];
            if self.operator_injects {
                let reference =
                    |key: &str| json!({"secretKeyRef": {"name": self.secret_name, "key": key}});
                env.extend([
                    json!({"name": "AWS_ACCESS_KEY_ID", "valueFrom": reference("accessKeyId")}),
                    json!({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": reference(self.secret_key)}),
                    json!({"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {
                        "name": self.secret_name, "key": "endpoint", "optional": true}}}),
                    json!({"name": "AWS_REGION", "value": self.region}),
                ]);
            }
            json!({"metadata": {"name": "d", "ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1",
                      "kind": "DittoServer", "name": "d", "controller": true}]},
                   "spec": {"template": {
                       "metadata": {"labels": {"app": "dittofs-server", "instance": "d"},
                                    "annotations": {"operator/generation": "n"}},
                       "spec": {"containers": [{"name": "dittofs", "image": "dittofs", "env": env}]}}}})
        }
    }

    /// What the policy writes into a template or pod: its env entries, hash and record.
    fn policy_state(object: &Value, kind: WorkloadKind) -> (Vec<Value>, Value, Value) {
        let (containers, annotations) = match kind {
            WorkloadKind::Pod => ("/spec/containers", "/metadata/annotations"),
            WorkloadKind::StatefulSet => (
                "/spec/template/spec/containers",
                "/spec/template/metadata/annotations",
            ),
        };
        let env = object
            .pointer(containers)
            .and_then(Value::as_array)
            .and_then(|containers| containers.iter().find(|c| c["name"] == "dittofs"))
            .and_then(|container| container.get("env"))
            .and_then(Value::as_array)
            .map(|env| {
                env.iter()
                    .filter(|entry| entry_name(entry).is_some_and(|name| MANAGED.contains(&name)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let annotation = |key: &str| {
            object
                .pointer(annotations)
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or(Value::Null)
        };
        (env, annotation(HASH), annotation(RECORD_ANNOTATION))
    }

    fn write(
        kind: WorkloadKind,
        operation: &str,
        object: &Value,
        old: &Value,
        world: &World,
    ) -> Result<Value, TestCaseError> {
        let request = WorkloadRequest {
            kind,
            operation,
            namespace: NS,
            object,
            old_object: old,
        };
        let decision =
            inject(&request, &Settings::default(), &world.cluster()).applied_to(object.clone());
        match decision.verdict {
            Verdict::Mutate(output) => Ok(output),
            Verdict::Accept => Ok(object.clone()),
            Verdict::Reject(message) => Err(TestCaseError::fail(format!(
                "{operation} {kind:?} rejected: {message}"
            ))),
        }
    }

    fn pod_from(statefulset: &Value) -> Value {
        let mut pod = json!({"metadata": statefulset["spec"]["template"]["metadata"].clone(),
                             "spec": statefulset["spec"]["template"]["spec"].clone()});
        pod["metadata"]["name"] = json!("d-0");
        pod
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn the_policy_never_rejects_its_own_output_nor_rolls_pods_on_a_failed_lookup(
            operator_injects in any::<bool>(),
            host_prunes in any::<bool>(),
            events in proptest::collection::vec(event(), 1..16),
        ) {
            let mut world = World {
                region: "eu-west-1",
                secret_name: "creds",
                secret_key: "secretAccessKey",
                secrets: vec![("creds", 0)],
                ditto_unreadable: false,
                secrets_denied: false,
                operator_injects,
                host_prunes,
            };
            let created = world.operator_statefulset();
            let mut stored = write(WorkloadKind::StatefulSet, "CREATE", &created, &Value::Null, &world)?;
            for event in events {
                let update = match event {
                    Event::RotateSecret => {
                        for (_, version) in &mut world.secrets { *version += 1; }
                        None
                    }
                    Event::CreateSecret(name) => {
                        if !world.secrets.iter().any(|(n, _)| *n == name) { world.secrets.push((name, 0)); }
                        None
                    }
                    Event::DeleteSecret(name) => {
                        world.secrets.retain(|(n, _)| *n != name);
                        None
                    }
                    Event::NameSecret(name) => { world.secret_name = name; None }
                    Event::NameSecretKey(key) => { world.secret_key = key; None }
                    Event::SetRegion(region) => { world.region = region; None }
                    Event::DittoServerUnreadable(on) => { world.ditto_unreadable = on; None }
                    Event::SecretsDenied(on) => { world.secrets_denied = on; None }
                    Event::OperatorReconcile => Some(world.operator_statefulset()),
                    Event::RolloutRestart => {
                        let mut restarted = stored.clone();
                        restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = json!("now");
                        Some(restarted)
                    }
                    Event::PodCreate => {
                        let pod = pod_from(&stored);
                        let created = write(WorkloadKind::Pod, "CREATE", &pod, &Value::Null, &world)?;
                        if world.lookups_fail() {
                            prop_assert_eq!(policy_state(&created, WorkloadKind::Pod), policy_state(&pod, WorkloadKind::Pod));
                        } else {
                            prop_assert_eq!(run_verify(WorkloadKind::Pod, &created, &world), Decision::accept());
                        }
                        None
                    }
                };
                let Some(new) = update else { continue };
                let output = write(WorkloadKind::StatefulSet, "UPDATE", &new, &stored, &world)?;
                if world.lookups_fail() {
                    prop_assert_eq!(
                        policy_state(&output, WorkloadKind::StatefulSet),
                        policy_state(&stored, WorkloadKind::StatefulSet),
                        "a failed lookup changed the template"
                    );
                } else {
                    prop_assert_eq!(run_verify(WorkloadKind::StatefulSet, &output, &world), Decision::accept());
                }
                // A fixed point: the stored result, written again unchanged, gives no patch.
                let again = write(WorkloadKind::StatefulSet, "UPDATE", &output, &output, &world)?;
                prop_assert_eq!(&again, &output, "a second pass changed the template");
                stored = output;
            }
        }
    }

    fn run_verify(kind: WorkloadKind, object: &Value, world: &World) -> Decision {
        run_in(verify, kind, object, &Settings::default(), &world.cluster())
    }
}

/// Sequences of DittoServer writes by an author who may not read the Secret it names: each
/// accepted write becomes the stored object of the next.
mod dittoserver_authority {
    use super::*;
    use crate::cluster::Requester;
    use crate::dittoserver::review::{DittoServerRequest, review};

    /// Spec fields that only size or expose the server (docs/threat-model.md), written out
    /// here on their own so that the policy's list is checked, not restated.
    const SIZING: [&str; 5] = ["replicas", "resources", "service", "metrics", "storage"];
    /// Fields that decide what runs with the Secret, and one the policy does not know.
    const DECIDING: [&str; 6] = ["image", "database", "identity", "percona", "s3", "sidecars"];

    #[derive(Debug, Clone)]
    enum Write {
        Spec(&'static str, u8),
        /// Drops a spec field (dropping spec.s3 drops the Secret reference).
        Remove(&'static str),
        Label(u8),
        Finalizer,
        Status(u8),
    }

    fn write() -> impl Strategy<Value = Write> {
        prop_oneof![
            (proptest::sample::select(&SIZING[..]), any::<u8>())
                .prop_map(|(f, v)| Write::Spec(f, v)),
            (proptest::sample::select(&DECIDING[..]), any::<u8>())
                .prop_map(|(f, v)| Write::Spec(f, v)),
            proptest::sample::select([&SIZING[..], &DECIDING[..]].concat()).prop_map(Write::Remove),
            any::<u8>().prop_map(Write::Label),
            Just(Write::Finalizer),
            any::<u8>().prop_map(Write::Status),
        ]
    }

    fn apply(stored: &Value, write: &Write) -> Value {
        let mut next = stored.clone();
        match write {
            Write::Spec("s3", v) => next["spec"]["s3"]["bucket"] = json!(format!("bucket-{v}")),
            Write::Spec(field, v) => next["spec"][*field] = json!({"value": v}),
            Write::Remove(field) => {
                if let Some(spec) = next["spec"].as_object_mut() {
                    spec.remove(*field);
                }
            }
            Write::Label(v) => next["metadata"]["labels"] = json!({"team": format!("t{v}")}),
            Write::Finalizer => next["metadata"]["finalizers"] = json!(["dittofs.dittofs.com/f"]),
            Write::Status(v) => next["status"] = json!({"phase": format!("p{v}")}),
        }
        next
    }

    proptest! {
        #[test]
        fn an_author_who_may_not_read_the_secret_changes_only_what_decides_nothing(
            writes in proptest::collection::vec(write(), 1..12),
        ) {
            let secret = json!({"metadata": {"name": "creds", "namespace": NS},
                                "data": {"accessKeyId": b64("FAKE-ID"), "secretAccessKey": b64("FAKE-KEY")}});
            let mut stored = json!({"metadata": {"name": "d", "namespace": NS},
                "spec": {"image": "dittofs:0.12.0", "s3": {"credentialsSecretRef": {"secretName": "creds"}}}});
            for write in &writes {
                let next = apply(&stored, write);
                let cluster = FakeCluster::default()
                    .with(ObjectRef::secret(NS, "creds"), Ok(secret.clone()))
                    .with_access("mallory", Ok(false));
                let request = DittoServerRequest {
                    object: &next,
                    previous: Some(&stored),
                    namespace: NS,
                    requester: Some(Requester { username: "mallory", groups: vec!["team"] }),
                };
                let decision = review(&request, &Settings::default(), &cluster);
                let decides = matches!(write, Write::Spec(field, _) | Write::Remove(field) if DECIDING.contains(field))
                    && next["spec"] != stored["spec"];
                let asked = cluster.lookups.borrow().iter().any(|l| l.starts_with("may "));
                let read = cluster.lookups.borrow().iter().any(|l| l.starts_with("Secret "));
                prop_assert_eq!(asked, decides, "{:?}", write);
                prop_assert!(!read, "the Secret was described after {:?}", write);
                if decides {
                    prop_assert!(matches!(decision.verdict, Verdict::Reject(_)), "{:?}: {:?}", write, decision);
                } else {
                    prop_assert_eq!(&decision, &Decision::accept(), "{:?}", write);
                    stored = next;
                }
            }
        }
    }
}
