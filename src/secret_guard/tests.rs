use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::cluster::fake::FakeCluster;
use crate::cluster::{LookupError, ObjectRef};
use crate::decision::Verdict;
use crate::test_support::{FAKE_KEY, FAKE_SECRET, assert_no_values, b64, settings};

const NS: &str = "ns";

fn ditto(name: &str, reference: Value) -> Value {
    json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"image": "dittofs:0.12.0", "s3": {"credentialsSecretRef": reference, "region": "fr-par"}}})
}

fn named(name: &str, secret: &str) -> Value {
    ditto(name, json!({"secretName": secret}))
}

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": "creds", "namespace": NS}, "data": data})
}

fn good() -> Value {
    secret(
        json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
                  "endpoint": b64("https://s3.example.test")}),
    )
}

/// `good()` with `key` set to `value` (`None` removes it).
fn edited(key: &str, value: Option<&str>) -> Value {
    let mut secret = good();
    match value {
        Some(value) => secret["data"][key] = json!(b64(value)),
        None => {
            secret["data"].as_object_mut().map(|data| data.remove(key));
        }
    }
    secret
}

fn cluster(servers: &[Value]) -> FakeCluster {
    servers
        .iter()
        .fold(FakeCluster::default().pruning(), |cluster, server| {
            let name = server["metadata"]["name"].as_str().unwrap_or_default();
            cluster.with(ObjectRef::ditto_server(NS, name), Ok(server.clone()))
        })
}

fn update(cluster: &FakeCluster, stored: &Value, object: &Value, settings: &Settings) -> Decision {
    let decision = guard(
        &SecretWrite::Update { object, stored },
        NS,
        settings,
        cluster,
    );
    assert_no_values(&decision);
    decision
}

fn rejection(decision: &Decision) -> &str {
    match &decision.verdict {
        Verdict::Reject(message) => message,
        other => panic!("not rejected: {other:?} {:?}", decision.warnings),
    }
}

#[test]
fn a_secret_no_dittoserver_names_is_accepted_after_one_list() {
    let cluster = cluster(&[named("a", "other"), ditto("b", json!(null))]);
    let decision = update(
        &cluster,
        &good(),
        &edited("accessKeyId", Some("")),
        &Settings::default(),
    );
    assert_eq!(decision, Decision::accept());
    assert_eq!(
        *cluster.lookups.borrow(),
        vec!["list the DittoServers of namespace \"ns\"".to_owned()]
    );
}

#[test]
fn the_list_asks_only_for_the_name_and_the_reference() {
    // Answered by a host that prunes: a guard reading anything else would see nothing there.
    let cluster = cluster(&[ditto(
        "a",
        json!({"secretName": "creds", "accessKeyIdKey": "id"}),
    )]);
    let decision = update(
        &cluster,
        &edited("id", Some("x")),
        &good(),
        &Settings::default(),
    );
    assert!(
        rejection(&decision).contains("entry \"id\" is missing"),
        "{decision:?}"
    );
}

#[test]
fn an_update_that_keeps_the_entries_needs_no_lookup() {
    let cluster = cluster(&[named("a", "creds")]);
    let mut relabelled = good();
    relabelled["metadata"]["labels"] = json!({"rotated": "no"});
    assert_eq!(
        update(&cluster, &good(), &relabelled, &Settings::default()),
        Decision::accept()
    );
    assert!(cluster.lookups.borrow().is_empty());
}

#[test]
fn a_rotation_that_breaks_a_dittoserver_is_refused_naming_it_and_the_rule() {
    let cluster = cluster(&[
        named("b", "creds"),
        named("a", "creds"),
        named("c", "other"),
    ]);
    let settings = settings(json!({"allowedEndpointHosts": ["*.example.test"]}));
    for (object, rule) in [
        (
            edited("accessKeyId", Some("")),
            "entry \"accessKeyId\" is empty",
        ),
        (
            edited("secretAccessKey", None),
            "entry \"secretAccessKey\" is missing",
        ),
        (
            edited("endpoint", Some("http://s3.example.test")),
            "entry \"endpoint\" must use https",
        ),
        (
            edited("endpoint", Some("https://collector.attacker.test")),
            "allowedEndpointHosts",
        ),
    ] {
        let decision = update(&cluster, &good(), &object, &settings);
        let message = rejection(&decision);
        assert!(
            message.starts_with("Secret \"creds\" is rejected: it would break DittoServer \"a\" ("),
            "{message}"
        );
        assert!(message.contains(") and DittoServer \"b\" ("), "{message}");
        assert!(message.contains(rule), "{message}");
        assert!(!message.contains("\"c\""), "{message}");
    }
}

#[test]
fn a_good_rotation_is_accepted() {
    let cluster = cluster(&[named("a", "creds")]);
    let rotated = edited("secretAccessKey", Some("FAKE-ROTATED-SECRET-ACCESS-KEY"));
    assert_eq!(
        update(&cluster, &good(), &rotated, &Settings::default()),
        Decision::accept()
    );
    let without_endpoint = edited("endpoint", None);
    assert_eq!(
        update(&cluster, &good(), &without_endpoint, &Settings::default()),
        Decision::accept()
    );
}

#[test]
fn warn_accepts_the_breaking_write_and_says_what_it_breaks() {
    let cluster = cluster(&[named("a", "creds")]);
    let decision = update(
        &cluster,
        &good(),
        &edited("accessKeyId", None),
        &settings(json!({"secretGuard": "warn"})),
    );
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(
        decision.warnings,
        vec!["Secret \"creds\" is accepted, but it would break DittoServer \"a\" (entry \"accessKeyId\" is missing)".to_owned()]
    );
}

#[test]
fn a_secret_broken_before_can_be_repaired_in_steps() {
    let cluster = cluster(&[named("a", "creds")]);
    let broken = secret(json!({"endpoint": b64("http://s3.example.test")}));
    // One step fixes the endpoint; the keys are still missing, as before: warned, not refused.
    let step = secret(json!({"endpoint": b64("https://s3.example.test")}));
    let decision = update(&cluster, &broken, &step, &Settings::default());
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.warnings.len(), 1, "{decision:?}");
    assert!(decision.warnings[0].starts_with(
        "Secret \"creds\" still breaks DittoServer \"a\" (entry \"accessKeyId\" is missing"
    ));
    // A step that adds a problem the stored Secret did not have is refused.
    let worse = secret(json!({"endpoint": b64("https://s3.example.test "),}));
    assert!(
        rejection(&update(&cluster, &step, &worse, &Settings::default())).contains("whitespace")
    );
    assert_eq!(
        update(&cluster, &step, &good(), &Settings::default()),
        Decision::accept()
    );
}

#[test]
fn creating_a_named_secret_is_checked_as_the_audit_scanner_replays_it() {
    let cluster = cluster(&[named("a", "creds")]);
    let create = |object: &Value| {
        guard(
            &SecretWrite::Create(object),
            NS,
            &Settings::default(),
            &cluster,
        )
    };
    assert_eq!(create(&good()), Decision::accept());
    let decision = create(&edited("accessKeyId", Some("")));
    assert_no_values(&decision);
    assert!(rejection(&decision).contains("DittoServer \"a\" (entry \"accessKeyId\" is empty)"));
    let not_a_map = secret(json!(["x"]));
    assert!(rejection(&create(&not_a_map)).contains("its data is not a map"));
}

#[test]
fn deleting_a_named_secret_is_refused_unless_its_dittoservers_are_being_deleted() {
    let mut leaving = named("c", "creds");
    leaving["metadata"]["deletionTimestamp"] = json!("2026-12-05T00:00:00Z");
    let cluster = cluster(&[named("b", "creds"), named("a", "creds"), leaving.clone()]);
    let delete = |settings: &Settings| {
        guard(
            &SecretWrite::Delete(&good(), "creds"),
            NS,
            settings,
            &cluster,
        )
    };
    assert_eq!(
        rejection(&delete(&Settings::default())),
        "deleting Secret \"creds\" is rejected: Secret \"creds\" is named by DittoServer \"a\" and \
         DittoServer \"b\" (spec.s3.credentialsSecretRef): without it their DittoFS pods cannot start"
    );
    let warned = delete(&settings(json!({"secretGuard": "warn"})));
    assert_eq!(warned.verdict, Verdict::Accept);
    assert_eq!(warned.warnings.len(), 1);
    // Only DittoServers on their way out name it: a namespace teardown is not held up.
    let teardown = self::cluster(&[leaving]);
    let decision = guard(
        &SecretWrite::Delete(&good(), "creds"),
        NS,
        &Settings::default(),
        &teardown,
    );
    assert_eq!(decision, Decision::accept());
}

/// The one warning a breaking write gets when the list is answered with `answer`.
fn unchecked_warning(answer: Result<Value, LookupError>) -> String {
    let cluster = FakeCluster::default().with_list(ListRef::ditto_servers(NS), answer);
    let broken = edited("accessKeyId", None);
    let decision = update(&cluster, &good(), &broken, &Settings::default());
    assert_eq!(decision.verdict, Verdict::Accept);
    let [warning] = decision.warnings.as_slice() else {
        panic!("{decision:?}")
    };
    let prefix =
        "Secret \"creds\" was not checked against the DittoServers that may use it: listing them: ";
    assert!(warning.starts_with(prefix), "{warning}");
    warning.clone()
}

#[test]
fn a_failed_list_never_blocks_the_write() {
    for error in [
        LookupError::AccessDenied("dittoservers is forbidden".to_owned()),
        LookupError::Failed("the server could not find the requested resource".to_owned()),
    ] {
        let reason = error.to_string();
        assert!(unchecked_warning(Err(error)).ends_with(&reason));
    }
}

#[test]
fn an_answer_about_another_namespace_is_not_used() {
    let mut elsewhere = named("a", "creds");
    elsewhere["metadata"]["namespace"] = json!("victim");
    let answer = json!({"kind": "DittoServerList", "items": [elsewhere]});
    let warning = unchecked_warning(Ok(answer));
    assert!(warning.ends_with("the host answered with objects of another kind or namespace)"));
}

#[test]
fn an_unnamed_or_invalid_reference_consumes_nothing() {
    let cluster = cluster(&[
        ditto(
            "a",
            json!({"secretName": "creds", "accessKeyIdKey": "x", "secretAccessKeyKey": "x"}),
        ),
        ditto("b", json!({"secretName": "Creds"})),
    ]);
    let decision = update(
        &cluster,
        &good(),
        &edited("accessKeyId", None),
        &Settings::default(),
    );
    assert_eq!(decision, Decision::accept());
}

/// One random edit of a Secret's entries: set a key to a value, or remove it.
fn edit() -> impl Strategy<Value = (String, Option<String>)> {
    (
        prop_oneof![
            Just("accessKeyId".to_owned()),
            Just("secretAccessKey".to_owned()),
            Just("endpoint".to_owned()),
            Just("other".to_owned()),
        ],
        proptest::option::of(prop_oneof![
            Just(String::new()),
            Just("FAKE-VALUE".to_owned()),
            Just("https://s3.example.test".to_owned()),
            Just("http://s3.example.test".to_owned()),
            Just("https://elsewhere.test".to_owned()),
        ]),
    )
}

proptest! {
    /// Rotations played as a cluster plays them (each accepted Secret is the next one's stored
    /// object): a Secret that serves its DittoServers never stops serving them, whatever is
    /// written, and the guard refuses exactly the writes that would break them.
    #[test]
    fn a_working_secret_stays_working(edits in proptest::collection::vec(edit(), 1..12)) {
        let settings = settings(json!({"allowedEndpointHosts": ["*.example.test"]}));
        let keys = dittoserver::credentials_ref(&named("a", "creds")).expect("reference");
        let cluster = cluster(&[named("a", "creds")]);
        let mut stored = good();
        for (key, value) in edits {
            let mut object = stored.clone();
            match &value {
                Some(value) => object["data"][&key] = json!(b64(value)),
                None => { object["data"].as_object_mut().map(|data| data.remove(&key)); }
            }
            let decision = update(&cluster, &stored, &object, &settings);
            let breaks = !problems_of(&object, &keys, &settings).is_empty();
            prop_assert_eq!(matches!(decision.verdict, Verdict::Reject(_)), breaks, "{:?}", decision);
            if !breaks {
                stored = object;
            }
            prop_assert!(problems_of(&stored, &keys, &settings).is_empty());
        }
    }
}

#[test]
fn secrets_that_cannot_hold_credentials_are_never_looked_at() {
    let cluster = cluster(&[named("a", "creds")]);
    for kind in NOT_CREDENTIALS {
        let mut token = edited("accessKeyId", None);
        token["type"] = json!(kind);
        assert_eq!(
            update(&cluster, &good(), &token, &Settings::default()),
            Decision::accept()
        );
    }
    assert!(cluster.lookups.borrow().is_empty());
}

#[test]
fn an_endpoint_moved_between_two_disallowed_hosts_is_a_new_problem() {
    let cluster = cluster(&[named("a", "creds")]);
    let settings = settings(json!({"allowedEndpointHosts": ["*.example.test"]}));
    for (stored, moved, rules) in [
        (
            "https://s3.old-provider.test",
            "https://collector.attacker.test",
            &settings,
        ),
        (
            "http://minio.storage.svc:9000",
            "http://collector.attacker.test",
            &Settings::default(),
        ),
        (
            "https://u@s3.example.test",
            "https://u@collector.attacker.test",
            &Settings::default(),
        ),
    ] {
        let (stored, moved) = (
            edited("endpoint", Some(stored)),
            edited("endpoint", Some(moved)),
        );
        let decision = update(&cluster, &stored, &moved, rules);
        assert!(
            rejection(&decision).contains("entry \"endpoint\""),
            "{decision:?}"
        );
    }
    // The same broken endpoint kept while another entry changes is still only warned about.
    let stored = edited("endpoint", Some("https://s3.old-provider.test"));
    let mut rotated = stored.clone();
    rotated["data"]["secretAccessKey"] = json!(b64("FAKE-ROTATED-SECRET-ACCESS-KEY"));
    let decision = update(&cluster, &stored, &rotated, &settings);
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.warnings.len(), 1);
}

#[test]
fn a_deletion_is_refused_only_for_the_dittoservers_the_secret_serves() {
    let cluster = cluster(&[
        named("a", "creds"),
        ditto("b", json!({"secretName": "creds", "accessKeyIdKey": "id"})),
    ]);
    let delete = |stored: &Value| {
        let decision = guard(
            &SecretWrite::Delete(stored, "creds"),
            NS,
            &Settings::default(),
            &cluster,
        );
        assert_no_values(&decision);
        decision
    };
    // It serves "a" and breaks "b" (no entry "id"): refused for "a", "b" named in a warning.
    let decision = delete(&good());
    let message = rejection(&decision);
    assert!(
        message.contains("named by DittoServer \"a\" (spec.s3"),
        "{message}"
    );
    assert!(!message.contains("\"b\""), "{message}");
    assert_eq!(
        decision.warnings,
        vec![
            "Secret \"creds\" still breaks DittoServer \"b\" (entry \"id\" is missing)".to_owned()
        ]
    );
    // A Secret that serves none of them can go (an immutable one can only be made again).
    let broken = edited("accessKeyId", None);
    let decision = delete(&broken);
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.warnings.len(), 2);
}

#[test]
fn a_deletion_without_the_stored_secret_is_judged_by_the_request_name() {
    let cluster = cluster(&[named("a", "creds")]);
    let decision = guard(
        &SecretWrite::Delete(&Value::Null, "creds"),
        NS,
        &Settings::default(),
        &cluster,
    );
    assert!(rejection(&decision).starts_with("deleting Secret \"creds\" is rejected"));
}

#[test]
fn an_answer_that_never_mentions_the_name_is_not_read() {
    // Not even parsed: whatever it holds, no DittoServer in it names "creds".
    let garbage = FakeCluster::default().with_list(
        ListRef::ditto_servers(NS),
        Ok(json!({"items": "this would not parse as a list", "note": "creds-v2"})),
    );
    let decision = update(
        &garbage,
        &good(),
        &edited("accessKeyId", None),
        &Settings::default(),
    );
    assert_eq!(decision, Decision::accept());
    // Mentioned elsewhere (an annotation), it is read, and names nothing either.
    let mut annotated = named("a", "other");
    annotated["metadata"]["annotations"] = json!({"example.com/was": "creds"});
    let mentioned = cluster(&[annotated]);
    let decision = update(
        &mentioned,
        &good(),
        &edited("accessKeyId", None),
        &Settings::default(),
    );
    assert_eq!(decision, Decision::accept());
    // A name no DittoServer could hold is not looked up.
    let strict = cluster(&[named("a", "creds")]);
    let mut odd = edited("accessKeyId", None);
    odd["metadata"]["name"] = json!("Creds\"");
    assert_eq!(
        update(&strict, &good(), &odd, &Settings::default()),
        Decision::accept()
    );
    assert!(strict.lookups.borrow().is_empty());
}

#[test]
fn consumers_come_sorted_by_name_keeping_the_list_order_of_equal_names() {
    let listed = [
        ("b", "k1"),
        ("a", "k2"),
        ("b", "k3"),
        ("a", "k4"),
        ("c", "k5"),
        ("b", "k6"),
    ];
    let servers: Vec<Value> = listed
        .iter()
        .map(|(name, key)| ditto(name, json!({"secretName": "s", "accessKeyIdKey": key})))
        .collect();
    let order: Vec<(String, String)> = consumers(&servers, "s")
        .into_iter()
        .map(|consumer| (consumer.name, consumer.keys.keys.access_key_id))
        .collect();
    let expected = [
        ("a", "k2"),
        ("a", "k4"),
        ("b", "k1"),
        ("b", "k3"),
        ("b", "k6"),
        ("c", "k5"),
    ];
    assert_eq!(
        order,
        expected.map(|(name, key)| (name.to_owned(), key.to_owned()))
    );
}
