//! Routes a validation payload to the decision for its kind. Pure but for the `Cluster` it is given.

mod read;

use kubewarden_policy_sdk::request::{GroupVersionKind, KubernetesAdmissionRequest};
use serde_json::Value;

use crate::cluster::{Cluster, Requester};
use crate::decision::Decision;
use crate::dittoserver;
use crate::dittoserver::review::DittoServerRequest;
use crate::secret_guard::{self, SecretWrite};
use crate::settings::{Settings, WorkloadMode};
use crate::value::At;
use crate::workload::{self, WorkloadKind, WorkloadRequest};
use read::Read;

const DITTOFS_GROUP: &str = "dittofs.dittofs.com";

/// What a request concerns: decided from its kind, its operation and, for Pods and StatefulSets,
/// the DittoServer that owns the workload.
#[derive(Clone, Copy)]
enum Target {
    DittoServer,
    Workload(WorkloadKind),
    Secret,
}

impl Target {
    /// The operations this kind's review acts on: a Secret's deletion can break a DittoServer,
    /// a DittoServer's or a workload's cannot change what runs.
    fn acts_on(&self, operation: &str) -> bool {
        match self {
            Self::Secret => matches!(operation, "CREATE" | "UPDATE" | "DELETE"),
            Self::DittoServer | Self::Workload(_) => matches!(operation, "CREATE" | "UPDATE"),
        }
    }
}

/// The kind of request the policy reviews, from the request's kind alone.
fn kind_target(kind: &GroupVersionKind) -> Option<Target> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        (DITTOFS_GROUP, "DittoServer") => Some(Target::DittoServer),
        ("", "Pod") => Some(Target::Workload(WorkloadKind::Pod)),
        ("apps", "StatefulSet") => Some(Target::Workload(WorkloadKind::StatefulSet)),
        ("", "Secret") => Some(Target::Secret),
        _ => None,
    }
}

fn target(request: &KubernetesAdmissionRequest) -> Option<Target> {
    // A subresource write (status, scale) changes neither a DittoServer's spec nor the dittofs
    // container: verify must not reject a kubelet's pods/status update, nor inject patch
    // statefulsets/status. An ephemeral container (pods/ephemeralcontainers, under custom rules)
    // is a container of its own, written by a pod author (docs/threat-model.md).
    if !request.sub_resource.is_empty() {
        return None;
    }
    let target = kind_target(&request.kind)?;
    // Most Pods and StatefulSets are not DittoFS ones: they cost no settings parsing either.
    if let Target::Workload(kind) = target
        && workload::owning_dittoserver(kind, &request.object).is_none()
    {
        return None;
    }
    if !target.acts_on(&request.operation) {
        return None;
    }
    let acts_on = match request.operation.as_str() {
        // Only a stored object can be being deleted (the API server clears the field on create).
        // Such an update only loses finalizers or is torn down: never block it. A DittoServer's
        // spec can still be changed then, and a spec change is judged (a Secret named during
        // deletion reaches pods recreated meanwhile).
        "UPDATE" => {
            !is_being_deleted(&request.object)
                || (matches!(target, Target::DittoServer)
                    && request.object.get("spec") != request.old_object.get("spec"))
                // A Secret held by a finalizer keeps serving its entries: an edit is judged
                // (the guard skips writes that keep them).
                || matches!(target, Target::Secret)
        }
        _ => true,
    };
    acts_on.then_some(target)
}

/// Decides on a raw `validate` payload. Malformed input is rejected with a message, never an error.
pub fn decide_payload(payload: &[u8], cluster: &dyn Cluster) -> Decision {
    let (request, settings) = match read::read(payload) {
        Ok(Read::Skipped) => return Decision::accept(),
        Ok(Read::Request(request, settings)) => (request, settings),
        Err(error) => {
            return Decision::reject(format!(
                "malformed validation request: {}",
                excerpt(&error.to_string())
            ));
        }
    };
    if target(&request).is_none() {
        return Decision::accept();
    }
    let settings = match settings {
        None => Settings::default(),
        Some(raw) => match Settings::parse(raw.get().as_bytes()) {
            Ok(settings) => settings,
            Err(message) => return Decision::reject(format!("policy misconfigured: {message}")),
        },
    };
    decide(*request, &settings, cluster)
}

/// Decides on one admission request. A mutation edits the request's own object, which becomes
/// the answer.
pub fn decide(
    request: KubernetesAdmissionRequest,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    let Some(target) = target(&request) else {
        return Decision::accept();
    };
    let namespace = request_namespace(&request);
    let workload_kind = match target {
        Target::DittoServer => {
            let ditto_request = DittoServerRequest {
                object: &request.object,
                previous: (request.operation == "UPDATE").then_some(&request.old_object),
                namespace,
                requester: requester(&request),
            };
            return dittoserver::review::review(&ditto_request, settings, cluster);
        }
        Target::Workload(kind) => kind,
        Target::Secret => {
            let write = match request.operation.as_str() {
                "CREATE" => SecretWrite::Create(&request.object),
                "UPDATE" => SecretWrite::Update {
                    object: &request.object,
                    stored: &request.old_object,
                },
                _ => SecretWrite::Delete(&request.old_object, &request.name),
            };
            return secret_guard::guard(&write, namespace, settings, cluster);
        }
    };
    let workload_request = WorkloadRequest {
        kind: workload_kind,
        operation: &request.operation,
        namespace,
        object: &request.object,
        old_object: &request.old_object,
    };
    let decision = match settings.workloads {
        WorkloadMode::Inject => workload::inject(&workload_request, settings, cluster),
        WorkloadMode::Verify => workload::verify(&workload_request, settings, cluster),
    };
    decision.applied_to(request.object)
}

/// The authenticated user, when the request has one: a name or groups (the audit scanner
/// sends neither; a request with groups but no name is still asked about).
fn requester(request: &KubernetesAdmissionRequest) -> Option<Requester<'_>> {
    let username = request.user_info.username.as_str();
    if username.is_empty() && request.user_info.groups.is_empty() {
        return None;
    }
    // Sorted as they are collected: std's sort would add kilobytes of code for a few names.
    let mut groups: Vec<&str> = Vec::with_capacity(request.user_info.groups.len());
    for group in &request.user_info.groups {
        groups.insert(
            groups.partition_point(|sorted| *sorted <= group.as_str()),
            group,
        );
    }
    Some(Requester { username, groups })
}

/// Parser errors quote the input; a rejection must not echo megabytes of it.
fn excerpt(text: &str) -> String {
    crate::decision::truncate(text, 200)
}

/// An object being deleted only loses finalizers or is torn down: never block or mutate it.
fn is_being_deleted(object: &Value) -> bool {
    object
        .at(["metadata", "deletionTimestamp"])
        .is_some_and(|timestamp| !timestamp.is_null())
}

/// The request's namespace, or the object's when the request omits it.
fn request_namespace(request: &KubernetesAdmissionRequest) -> &str {
    if request.namespace.is_empty() {
        request
            .object
            .at(["metadata", "namespace"])
            .and_then(Value::as_str)
            .unwrap_or("")
    } else {
        &request.namespace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::decision::Verdict;
    use serde_json::json;

    fn payload(kind: Value, operation: &str, object: Value, settings: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "request": {"uid": "1", "kind": kind, "operation": operation, "namespace": "ns", "object": object},
            "settings": settings,
        }))
        .expect("json")
    }

    fn ditto_kind() -> Value {
        json!({"group": DITTOFS_GROUP, "version": "v1alpha1", "kind": "DittoServer"})
    }

    fn bad_ditto() -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"s3": {"region": "NOPE"}}})
    }

    #[test]
    fn secret_writes_reach_the_guard_deletions_included_subresources_never() {
        use crate::cluster::ObjectRef;
        let ditto = json!({"metadata": {"name": "d"}, "spec": {"s3": {"credentialsSecretRef": {"secretName": "c"}}}});
        let cluster = FakeCluster::default().with(ObjectRef::ditto_server("ns", "d"), Ok(ditto));
        let secret = json!({"metadata": {"name": "c"},
            "data": {"accessKeyId": "QQ==", "secretAccessKey": "QQ=="}});
        let kind = json!({"group": "", "version": "v1", "kind": "Secret"});
        let raw = |operation: &str, sub_resource: &str| {
            serde_json::to_vec(
                &json!({"request": {"uid": "1", "kind": kind, "operation": operation,
                "subResource": sub_resource, "namespace": "ns", "name": "c",
                "object": if operation == "DELETE" { Value::Null } else { secret.clone() },
                "oldObject": if operation == "CREATE" { Value::Null } else { secret.clone() }},
                "settings": {}}),
            )
            .expect("json")
        };
        let rejected = |decision: Decision| matches!(decision.verdict, Verdict::Reject(_));
        assert!(rejected(decide_payload(&raw("DELETE", ""), &cluster)));
        assert_eq!(
            decide_payload(&raw("CREATE", ""), &cluster),
            Decision::accept()
        );
        assert_eq!(cluster.lookups.borrow().len(), 2);
        // A Secret held by a finalizer keeps serving its entries: an edit of it is judged.
        let mut terminating = secret.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-12-05T00:00:00Z");
        let mut emptied = terminating.clone();
        emptied["data"] = json!({"accessKeyId": ""});
        let update = serde_json::to_vec(&json!({"request": {"uid": "1", "kind": kind,
            "operation": "UPDATE", "namespace": "ns", "name": "c",
            "object": emptied, "oldObject": terminating}, "settings": {}}))
        .expect("json");
        assert!(rejected(decide_payload(&update, &cluster)));
        assert_eq!(cluster.lookups.borrow().len(), 3);
        assert_eq!(
            decide_payload(&raw("DELETE", "status"), &cluster),
            Decision::accept()
        );
        assert_eq!(
            decide_payload(&raw("CONNECT", ""), &cluster),
            Decision::accept()
        );
        assert_eq!(cluster.lookups.borrow().len(), 3);
    }

    #[test]
    fn malformed_payloads_are_rejected_with_a_message() {
        let cluster = FakeCluster::default();
        for raw in [
            &b"not json"[..],
            b"",
            b"{}",
            b"[]",
            br#"{"request": 5}"#,
            br#"{"request": {"kind": "x"}}"#,
        ] {
            let decision = decide_payload(raw, &cluster);
            let Verdict::Reject(message) = decision.verdict else {
                panic!("{raw:?} accepted")
            };
            assert!(
                message.starts_with("malformed validation request"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_payload_that_is_not_utf8_is_malformed_even_past_the_early_stop() {
        // A Pod that is not DittoFS's: its read would stop at `metadata`, before the bad byte.
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let mut raw = payload(
            pod_kind,
            "CREATE",
            json!({"metadata": {"name": "p"}}),
            json!({}),
        );
        let end = raw.len() - 1;
        raw.splice(end..end, *b",\"x\":\"\xff\"");
        let decision = decide_payload(&raw, &FakeCluster::default());
        assert_eq!(
            decision.verdict,
            Verdict::Reject(format!(
                "malformed validation request: the payload is not UTF-8 text (from byte {})",
                end + 6
            ))
        );
    }

    #[test]
    fn invalid_settings_at_evaluation_reject() {
        let raw = payload(
            ditto_kind(),
            "CREATE",
            bad_ditto(),
            json!({"secretCheck": "sometimes"}),
        );
        let decision = decide_payload(&raw, &FakeCluster::default());
        let Verdict::Reject(message) = decision.verdict else {
            panic!("accepted")
        };
        assert!(
            message
                .starts_with("policy misconfigured: invalid settings: unknown variant `sometimes`"),
            "{message}"
        );
    }

    #[test]
    fn dittoservers_are_reviewed_on_create_and_update_only() {
        let cluster = FakeCluster::default();
        for (operation, rejected) in [
            ("CREATE", true),
            ("UPDATE", true),
            ("DELETE", false),
            ("CONNECT", false),
        ] {
            let decision = decide_payload(
                &payload(ditto_kind(), operation, bad_ditto(), json!({})),
                &cluster,
            );
            assert_eq!(
                matches!(decision.verdict, Verdict::Reject(_)),
                rejected,
                "{operation}"
            );
        }
    }

    #[test]
    fn other_kinds_pass_untouched_without_lookups() {
        let cluster = FakeCluster::default();
        let kinds = [
            json!({"group": "", "version": "v1", "kind": "ConfigMap"}),
            json!({"group": "other.io", "version": "v1", "kind": "DittoServer"}),
        ];
        for kind in kinds {
            let decision =
                decide_payload(&payload(kind, "CREATE", bad_ditto(), json!({})), &cluster);
            assert_eq!(decision, Decision::accept());
        }
        assert!(cluster.lookups.borrow().is_empty());
    }

    /// The whole payload as the SDK parses it.
    #[derive(serde::Deserialize)]
    struct Whole {
        request: KubernetesAdmissionRequest,
    }

    /// Whether reading the payload went on past the early stop.
    fn may_concern(text: &str) -> bool {
        !matches!(read::read(text.as_bytes()), Ok(Read::Skipped))
    }

    /// The early stop may only skip what the full parse would not review, and where it can tell
    /// (`exact`, in the hosts' key order) it skips exactly the workloads that are not DittoFS's (an
    /// operation no review acts on is left to the full parse). Another order only loses the stop.
    fn early_stop_agrees(kind: &Value, operation: &str, object_text: &str, exact: bool) {
        let sorted = format!(
            r#"{{"request": {{"uid": "1", "kind": {kind}, "operation": "{operation}", "object": {object_text}}}}}"#
        );
        let object_first = format!(
            r#"{{"request": {{"object": {object_text}, "operation": "{operation}", "kind": {kind}}}}}"#
        );
        for (text, exact) in [(sorted, exact), (object_first, false)] {
            let concerns = may_concern(&text);
            let whole: Whole = serde_json::from_str(&text).expect("payload");
            let reviewed = target(&whole.request).is_some();
            assert!(concerns || !reviewed, "skipped a reviewed request: {text}");
            if exact && operation != "DELETE" {
                assert_eq!(concerns, reviewed, "{text}");
            }
        }
    }

    #[test]
    fn the_early_stop_skips_only_what_is_not_reviewed() {
        let pod = json!({"group": "", "version": "v1", "kind": "Pod"});
        let sts = json!({"group": "apps", "version": "v1", "kind": "StatefulSet"});
        let well_formed = [
            r#"{"metadata": {"labels": {"app": "dittofs-server", "instance": "d"}}}"#,
            r#"{"metadata": {"labels": {"app": "dittofs\u002dserver", "instance": "d"}}}"#,
            r#"{"metadata": {"labels": {"app": "dittofs-server", "instance": ""}}}"#,
            r#"{"metadata": {"labels": {"app": "other", "instance": "d"}}}"#,
            r#"{"metadata": {"labels": {"app": 5, "instance": "d"}}}"#,
            r#"{"metadata": {"labels": null}}"#,
            r#"{"metadata": null}"#,
            r#"{}"#,
            r#"{"metadata": {"ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1",
                "kind": "DittoServer", "name": "d", "controller": true}]}}"#,
            r#"{"metadata": {"ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1",
                "kind": "DittoServer", "name": "d", "controller": false}]}}"#,
            r#"{"metadata": {"ownerReferences": {"not": "a list"}}}"#,
            r#"{"metadata": {"labels": {"app": "other", "app": "dittofs-server", "instance": "d"}}}"#,
        ];
        // Where the early stop cannot tell (a repeated field in metadata, metadata or an object that
        // is not an object), it leaves the decision to the full parse.
        let undecided = [
            r#"{"metadata": "text"}"#,
            r#"[1]"#,
            r#"null"#,
            r#"{"metadata": {"labels": {"app": "dittofs-server", "instance": "d"}, "labels": {}}}"#,
        ];
        for kind in [&pod, &sts, &ditto_kind()] {
            for operation in ["CREATE", "UPDATE", "DELETE"] {
                for object in well_formed {
                    early_stop_agrees(kind, operation, object, true);
                }
                for object in undecided {
                    early_stop_agrees(kind, operation, object, false);
                }
            }
        }
    }

    /// Once the kind and the object's metadata are read the rest is not: a non-DittoFS Pod costs
    /// its first few hundred bytes, whatever follows (even what would not parse).
    #[test]
    fn reading_stops_at_a_non_dittofs_workloads_metadata() {
        let head = r#"{"request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": {"metadata": "#;
        let tail = r#", "spec": {"containers": [this is not JSON"#;
        let other = format!(r#"{head}{{"labels": {{"app": "web"}}}}{tail}"#);
        let dittofs =
            format!(r#"{head}{{"labels": {{"app": "dittofs-server", "instance": "d"}}}}{tail}"#);
        assert!(!may_concern(&other));
        assert!(may_concern(&dittofs));
        // Read whole, a DittoFS Pod's malformed rest is refused.
        assert!(
            matches!(decide_payload(dittofs.as_bytes(), &FakeCluster::default()).verdict,
            Verdict::Reject(message) if message.starts_with("malformed validation request"))
        );
        // Other kinds are told from the kind alone.
        let config_map = r#"{"request": {"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}, "object": [this is not JSON"#;
        assert!(!may_concern(config_map));
    }

    /// Hosts serialize parsed objects, so a payload never repeats a key; if one did, the first
    /// `metadata` would decide what the early stop skips (src/admission/read.rs).
    #[test]
    fn the_first_metadata_decides_the_early_stop() {
        let text = r#"{"request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "object": {"metadata": {"labels": {"app": "other"}},
                       "metadata": {"labels": {"app": "dittofs-server", "instance": "d"}}}}}"#;
        assert!(!may_concern(text));
    }

    /// A reviewed object is refused for nesting exactly where parsing the whole payload at once
    /// refuses it (serde_json's limit counts the payload's and the request's levels too).
    #[test]
    fn reviewed_objects_keep_the_nesting_limit_of_the_whole_payload() {
        for depth in 120..132 {
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let text = format!(
                r#"{{"request": {{"uid": "1", "kind": {}, "operation": "CREATE", "object": {{"spec": {nested}}}}}}}"#,
                ditto_kind()
            );
            let whole_fails = serde_json::from_str::<Whole>(&text).is_err();
            let verdict = decide_payload(text.as_bytes(), &FakeCluster::default()).verdict;
            let refused = matches!(&verdict, Verdict::Reject(message)
                if message.starts_with("malformed validation request: recursion limit exceeded"));
            assert_eq!(refused, whole_fails, "depth {depth}: {verdict:?}");
        }
    }

    #[test]
    fn namespace_falls_back_to_the_object() {
        let raw = serde_json::to_vec(
            &json!({"request": {"kind": ditto_kind(), "operation": "CREATE",
            "object": {"metadata": {"name": "d", "namespace": "objns"},
                       "spec": {"s3": {"credentialsSecretRef": {"secretName": "creds"}}}}}}),
        )
        .expect("json");
        let cluster = FakeCluster::default();
        decide_payload(&raw, &cluster);
        assert_eq!(
            *cluster.lookups.borrow(),
            ["Secret \"creds\" in namespace \"objns\""]
        );
    }

    fn dittofs_pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "dittofs-server", "instance": "d"}},
               "spec": {"containers": [{"name": "dittofs"}]}})
    }

    fn owner_cluster() -> FakeCluster {
        use crate::cluster::ObjectRef;
        let ditto = json!({"metadata": {"name": "d"}, "spec": {"s3": {"credentialsSecretRef": {"secretName": "c"}}}});
        let secret = json!({"data": {"accessKeyId": "RkFLRQ==", "secretAccessKey": "RkFLRQ=="}});
        FakeCluster::default()
            .with(ObjectRef::ditto_server("ns", "d"), Ok(ditto))
            .with(ObjectRef::secret("ns", "c"), Ok(secret))
    }

    #[test]
    fn pods_and_statefulsets_are_routed_by_group_and_kind() {
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let decision = decide_payload(
            &payload(pod_kind, "CREATE", dittofs_pod(), json!({})),
            &owner_cluster(),
        );
        assert!(
            matches!(decision.verdict, Verdict::Mutate(_)),
            "{decision:?}"
        );
        // A Pod kind from another group is not a Pod.
        let cluster = owner_cluster();
        let other = json!({"group": "example.com", "version": "v1", "kind": "Pod"});
        assert_eq!(
            decide_payload(
                &payload(other, "CREATE", dittofs_pod(), json!({})),
                &cluster
            ),
            Decision::accept()
        );
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn verify_mode_never_mutates() {
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let raw = payload(
            pod_kind,
            "CREATE",
            dittofs_pod(),
            json!({"workloads": "verify"}),
        );
        let decision = decide_payload(&raw, &owner_cluster());
        let Verdict::Reject(message) = decision.verdict else {
            panic!("expected rejection: {decision:?}")
        };
        assert!(message.contains("lacks AWS_ACCESS_KEY_ID"), "{message}");
    }

    #[test]
    fn subresource_writes_are_accepted_without_review_or_lookups() {
        let cluster = owner_cluster();
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let sts_kind = json!({"group": "apps", "version": "v1", "kind": "StatefulSet"});
        for (kind, object, settings, subresource) in [
            // verify would reject this stale pod; a kubelet's status update must pass.
            (
                pod_kind,
                dittofs_pod(),
                json!({"workloads": "verify"}),
                "status",
            ),
            (ditto_kind(), bad_ditto(), Value::Null, "status"),
            (
                sts_kind,
                json!({"metadata": {"ownerReferences": []}}),
                Value::Null,
                "scale",
            ),
        ] {
            let raw = serde_json::to_vec(&json!({
                "request": {"uid": "1", "kind": kind, "operation": "UPDATE", "namespace": "ns",
                            "subResource": subresource, "object": object.clone(), "oldObject": object},
                "settings": settings,
            }))
            .expect("json");
            assert_eq!(
                decide_payload(&raw, &cluster),
                Decision::accept(),
                "{subresource}"
            );
        }
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn objects_being_deleted_are_accepted_without_lookups() {
        let cluster = owner_cluster();
        let mut bad = bad_ditto();
        bad["metadata"]["deletionTimestamp"] = json!("2026-11-28T00:00:00Z");
        let finalizer_removed = serde_json::to_vec(&json!({"request": {"uid": "1",
            "kind": ditto_kind(), "operation": "UPDATE", "namespace": "ns",
            "object": bad.clone(), "oldObject": bad}}))
        .expect("json");
        assert_eq!(
            decide_payload(&finalizer_removed, &cluster),
            Decision::accept()
        );
        let mut pod = dittofs_pod();
        pod["metadata"]["deletionTimestamp"] = json!("2026-11-28T00:00:00Z");
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        for settings in [json!({}), json!({"workloads": "verify"})] {
            let raw = payload(pod_kind.clone(), "UPDATE", pod.clone(), settings);
            assert_eq!(decide_payload(&raw, &cluster), Decision::accept());
        }
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn a_dittoserver_spec_changed_while_being_deleted_is_judged() {
        // A finalizer holds the DittoServer; its spec.s3 is pointed at a Secret the author may
        // not read: the deletion must not be a way around the checks.
        let cluster = FakeCluster::default().with_access("mallory", Ok(false));
        let mut old = json!({"metadata": {"name": "d", "finalizers": ["example.com/hold"],
                                          "deletionTimestamp": "2026-11-28T00:00:00Z"},
                             "spec": {"s3": {"credentialsSecretRef": {"secretName": "creds"}}}});
        let mut new = old.clone();
        new["spec"]["s3"]["credentialsSecretRef"] = json!({"secretName": "db-password"});
        let request = |object: &Value, old: &Value| {
            serde_json::to_vec(&json!({"request": {"uid": "1", "kind": ditto_kind(),
                "operation": "UPDATE", "namespace": "ns",
                "userInfo": {"username": "mallory"}, "object": object, "oldObject": old}}))
            .expect("json")
        };
        let decision = decide_payload(&request(&new, &old), &cluster);
        assert!(
            matches!(decision.verdict, Verdict::Reject(_)),
            "{decision:?}"
        );
        // Removing the finalizer is never held up.
        new = old.clone();
        new["metadata"]["finalizers"] = json!([]);
        old["metadata"]["labels"] = json!({"a": "b"});
        let cluster = FakeCluster::default();
        assert_eq!(
            decide_payload(&request(&new, &old), &cluster),
            Decision::accept()
        );
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn a_deletion_timestamp_on_create_does_not_skip_injection() {
        // The API server clears it on create, so it cannot mean "being deleted" there.
        let mut pod = dittofs_pod();
        pod["metadata"]["deletionTimestamp"] = json!("2026-11-28T00:00:00Z");
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let decision = decide_payload(
            &payload(pod_kind, "CREATE", pod, json!({})),
            &owner_cluster(),
        );
        assert!(
            matches!(decision.verdict, Verdict::Mutate(_)),
            "{decision:?}"
        );
    }

    #[test]
    fn malformed_requests_are_not_echoed_at_length() {
        let huge = format!("{{\"request\": \"{}\"}}", "x".repeat(100_000));
        let Verdict::Reject(message) =
            decide_payload(huge.as_bytes(), &FakeCluster::default()).verdict
        else {
            panic!("accepted")
        };
        assert!(
            message.starts_with("malformed validation request: invalid type: string"),
            "{message}"
        );
        assert!(
            message.chars().count() <= 240,
            "{} chars",
            message.chars().count()
        );
    }

    #[test]
    fn the_requesting_user_with_sorted_groups_is_asked_about() {
        let object = json!({"metadata": {"name": "d"},
                            "spec": {"s3": {"credentialsSecretRef": {"secretName": "creds"}}}});
        let raw = serde_json::to_vec(&json!({"request": {
            "uid": "1", "kind": ditto_kind(), "operation": "CREATE", "namespace": "ns",
            "userInfo": {"username": "alice", "groups": ["team-b", "system:authenticated", "team-a"]},
            "object": object}}))
        .expect("json");
        let cluster = FakeCluster::default();
        decide_payload(&raw, &cluster);
        assert_eq!(
            cluster.lookups.borrow().first().map(String::as_str),
            Some(
                "may alice (system:authenticated,team-a,team-b) get Secret \"creds\" in namespace \"ns\""
            )
        );
    }
}
