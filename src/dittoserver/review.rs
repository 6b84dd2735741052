//! Admission of DittoServer objects: `spec.s3` rules, settings allow-lists and the Secret check.

use serde_json::Value;

use super::{CredentialsRef, S3Spec, access, compatibility, parse_s3};
use crate::cluster::{Cluster, LookupError, ObjectRef, Requester};
use crate::credentials::{SecretData, consumed_fields, credential_problems};
use crate::decision::Decision;
use crate::naming;
use crate::settings::{SecretAccessCheck, SecretCheck, Settings};
use crate::value::At;

/// One problem with the referenced Secret; `hard` ones reject whatever `secretCheck` says.
struct SecretFinding {
    message: String,
    hard: bool,
}

/// A DittoServer write as the review needs it.
pub struct DittoServerRequest<'a> {
    pub object: &'a Value,
    /// The stored revision, on UPDATE.
    pub previous: Option<&'a Value>,
    pub namespace: &'a str,
    /// Who writes it; `None` for requests without a user (the audit scanner's).
    pub requester: Option<Requester<'a>>,
}

/// Decides on a DittoServer CREATE or UPDATE.
pub fn review(
    request: &DittoServerRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    let compatibility = compatibility::ignored_env_warning(request.object);
    judge(request, settings, cluster).with_warnings(compatibility.into_iter().collect())
}

fn judge(request: &DittoServerRequest<'_>, settings: &Settings, cluster: &dyn Cluster) -> Decision {
    let DittoServerRequest {
        object,
        previous,
        namespace,
        ref requester,
    } = *request;
    let name = naming::describe("DittoServer", object);
    let s3_unchanged =
        previous.is_some_and(|previous| previous.at(["spec", "s3"]) == object.at(["spec", "s3"]));
    // Finalizers, labels and the like must stay editable when a rule or the Secret changed
    // after the spec was admitted: an unchanged spec.s3 is not judged again.
    let spec = if s3_unchanged {
        check_spec(object, settings)
            .map_err(|problems| format!("{name} would be rejected if spec.s3 changed: {problems}"))
    } else {
        match check_spec(object, settings) {
            Ok(spec) => Ok(spec),
            Err(problems) => return Decision::reject(format!("{name} is invalid: {problems}")),
        }
    };
    // Before anything about a Secret is described to the author: may they have pods read it?
    let changes = access::deciding_changes(object, previous);
    if let Some(requester) = requester
        && !changes.is_empty()
    {
        let secrets = match access::secrets_at_stake(object, previous) {
            Ok(secrets) => secrets,
            Err(problem) => return Decision::reject(format!("{name} is invalid: {problem}")),
        };
        if let Some(refusal) =
            access::refusal(requester, &secrets, &changes, namespace, settings, cluster)
        {
            if settings.secret_access_check == SecretAccessCheck::Reject {
                return Decision::reject(format!("{name} is rejected: {refusal}"));
            }
            // The content of a Secret its author may not read is not described to them.
            return Decision::accept().with_warnings(vec![format!(
                "{name} was not checked against its Secret: {refusal}"
            )]);
        }
    }
    if s3_unchanged {
        return Decision::accept().with_warnings(spec.err().into_iter().collect());
    }
    let Ok(Some(spec)) = spec else {
        return Decision::accept();
    };

    let Some(credentials) = &spec.credentials else {
        return Decision::accept()
            .with_warnings(unused_settings_warning(&spec).into_iter().collect());
    };
    if settings.secret_check == SecretCheck::Skip {
        return Decision::accept();
    }

    let findings = check_secret(credentials, namespace, settings, cluster);
    let (hard, soft): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| f.hard);
    let messages =
        |findings: Vec<SecretFinding>| findings.into_iter().map(|f| f.message).collect::<Vec<_>>();
    if !hard.is_empty() || (settings.secret_check == SecretCheck::Reject && !soft.is_empty()) {
        let mut all = messages(hard);
        all.extend(messages(soft));
        return Decision::reject(format!("{name} is rejected: {}", all.join("; ")));
    }
    Decision::accept().with_warnings(messages(soft))
}

/// The spec's own rules and the settings' allow-lists; `Err` lists what is broken.
fn check_spec(object: &Value, settings: &Settings) -> Result<Option<S3Spec>, String> {
    let spec = match parse_s3(object) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(None),
        Err(violations) => {
            let details: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Err(details.join("; "));
        }
    };
    if let Some(allowed) = &settings.allowed_regions
        && !allowed.contains(&spec.region)
    {
        let origin = if spec.region_is_explicit {
            ""
        } else {
            " (the default)"
        };
        return Err(format!(
            "spec.s3.region: \"{}\"{origin} is not in allowedRegions [{}]",
            spec.region,
            allowed.join(", ")
        ));
    }
    Ok(Some(spec))
}

fn unused_settings_warning(spec: &S3Spec) -> Option<String> {
    let set: Vec<&str> = [
        ("region", spec.region_is_explicit),
        ("bucket", spec.bucket.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();
    (!set.is_empty()).then(|| {
        format!(
            "spec.s3 sets {} but no credentialsSecretRef: no S3 credentials will be injected into DittoFS pods",
            set.join(" and ")
        )
    })
}

fn check_secret(
    credentials: &CredentialsRef,
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Vec<SecretFinding> {
    let secret_ref = ObjectRef::secret(namespace, &credentials.secret_name);
    let soft = |message: String| {
        vec![SecretFinding {
            message,
            hard: false,
        }]
    };
    let secret = match cluster.get(secret_ref, &consumed_fields(&credentials.keys)) {
        Ok(secret) => secret,
        Err(LookupError::NotFound) => {
            return soft(format!(
                "{secret_ref} (spec.s3.credentialsSecretRef.secretName) was not found: \
                 DittoFS pods will not start until it exists"
            ));
        }
        Err(error) => return soft(format!("cannot check {secret_ref}: {error}")),
    };
    let data = match SecretData::from_object(&secret) {
        Ok(data) => data,
        Err(problem) => return soft(format!("cannot check {secret_ref}: {problem}")),
    };

    credential_problems(&data, &credentials.keys, settings)
        .into_iter()
        .map(|problem| SecretFinding {
            message: format!("{secret_ref}: {}", problem.message),
            hard: problem.hard,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::decision::Verdict;
    use crate::test_support::{FAKE_KEY, FAKE_SECRET, assert_no_values, b64, settings};
    use serde_json::json;

    const NS: &str = "dittofs-system";

    fn review_create(
        object: &Value,
        namespace: &str,
        settings: &Settings,
        cluster: &dyn Cluster,
    ) -> Decision {
        review_update(object, None, namespace, settings, cluster)
    }

    /// A write without a user, as the audit scanner sends (the access check is tested apart).
    fn review_update(
        object: &Value,
        previous: Option<&Value>,
        namespace: &str,
        settings: &Settings,
        cluster: &dyn Cluster,
    ) -> Decision {
        let request = DittoServerRequest {
            object,
            previous,
            namespace,
            requester: None,
        };
        review(&request, settings, cluster)
    }

    fn ditto(s3: Value) -> Value {
        json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
               "metadata": {"name": "dittofs-s3", "namespace": NS}, "spec": {"s3": s3}})
    }

    fn with_ref() -> Value {
        ditto(json!({"credentialsSecretRef": {"secretName": "s3-creds"}, "region": "eu-west-1"}))
    }

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds", "namespace": NS}, "data": data})
    }

    fn good_data() -> Value {
        json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64("https://s3.cubbit.eu")})
    }

    fn cluster_with(answer: Result<Value, LookupError>) -> FakeCluster {
        FakeCluster::default().with(ObjectRef::secret(NS, "s3-creds"), answer)
    }

    #[test]
    fn valid_dittoserver_with_good_secret_is_accepted_silently() {
        let cluster = cluster_with(Ok(secret(good_data())));
        let decision = review_create(&with_ref(), NS, &Settings::default(), &cluster);
        assert_eq!(decision, Decision::accept());
        assert_eq!(
            *cluster.lookups.borrow(),
            [format!("Secret \"s3-creds\" in namespace \"{NS}\"")]
        );
    }

    #[test]
    fn dittoserver_without_s3_needs_no_lookup() {
        let cluster = FakeCluster::default();
        let object = json!({"metadata": {"name": "plain"}, "spec": {"nfsPort": 2049}});
        assert_eq!(
            review_create(&object, NS, &Settings::default(), &cluster),
            Decision::accept()
        );
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn structural_violations_reject_with_name_and_field() {
        let object = ditto(json!({"credentialsSecretRef": {"secretName": "Bad_Name"}}));
        let decision = review_create(&object, NS, &Settings::default(), &FakeCluster::default());
        let Verdict::Reject(message) = decision.verdict else {
            panic!("expected rejection")
        };
        assert!(
            message.starts_with(
                "DittoServer \"dittofs-s3\" is invalid: spec.s3.credentialsSecretRef.secretName:"
            ),
            "{message}"
        );
    }

    #[test]
    fn region_allow_list_applies_to_explicit_and_default_regions() {
        let restrict = settings(json!({"allowedRegions": ["fr-par"]}));
        let cluster = cluster_with(Ok(secret(good_data())));
        let explicit = review_create(&with_ref(), NS, &restrict, &cluster);
        assert_eq!(
            explicit.verdict,
            Verdict::Reject("DittoServer \"dittofs-s3\" is invalid: spec.s3.region: \"eu-west-1\" is not in allowedRegions [fr-par]".into())
        );
        let defaulted = review_create(&ditto(json!({})), NS, &restrict, &cluster);
        let Verdict::Reject(message) = defaulted.verdict else {
            panic!("expected rejection")
        };
        assert!(
            message.contains("\"eu-west-1\" (the default) is not in allowedRegions"),
            "{message}"
        );
        let allowed = review_create(&ditto(json!({"region": "fr-par"})), NS, &restrict, &cluster);
        assert_eq!(allowed.verdict, Verdict::Accept);
    }

    #[test]
    fn region_or_bucket_without_credentials_warns() {
        let cases = [
            (
                json!({"region": "eu-west-1"}),
                Some("spec.s3 sets region but no credentialsSecretRef"),
            ),
            (
                json!({"bucket": "data"}),
                Some("spec.s3 sets bucket but no credentialsSecretRef"),
            ),
            (
                json!({"region": "auto", "bucket": "data"}),
                Some("spec.s3 sets region and bucket but"),
            ),
            (json!({}), None),
        ];
        for (s3, expected) in cases {
            let decision = review_create(
                &ditto(s3.clone()),
                NS,
                &Settings::default(),
                &FakeCluster::default(),
            );
            assert_eq!(decision.verdict, Verdict::Accept, "{s3}");
            match expected {
                Some(text) => assert!(
                    decision.warnings.len() == 1 && decision.warnings[0].starts_with(text),
                    "{s3}: {:?}",
                    decision.warnings
                ),
                None => assert!(decision.warnings.is_empty(), "{s3}"),
            }
        }
    }

    /// Every Secret-check outcome under warn (default) and reject.
    #[test]
    fn secret_check_outcomes() {
        let cases: Vec<(&str, Result<Value, LookupError>, &str)> = vec![
            (
                "missing",
                Err(LookupError::NotFound),
                "Secret \"s3-creds\" in namespace \"dittofs-system\" (spec.s3.credentialsSecretRef.secretName) was not found",
            ),
            (
                "denied",
                Err(LookupError::AccessDenied("secrets is forbidden".into())),
                "cannot check Secret \"s3-creds\" in namespace \"dittofs-system\": access denied (secrets is forbidden)",
            ),
            (
                "api error",
                Err(LookupError::Failed("etcdserver: request timed out".into())),
                "lookup failed (etcdserver: request timed out)",
            ),
            (
                "not a secret",
                Ok(json!(["garbage"])),
                "cannot check Secret \"s3-creds\" in namespace \"dittofs-system\": the lookup answer is not an object",
            ),
            (
                "no access key",
                Ok(secret(json!({"secretAccessKey": b64(FAKE_SECRET)}))),
                "entry \"accessKeyId\" is missing",
            ),
            (
                "empty secret key",
                Ok(secret(
                    json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": ""}),
                )),
                "entry \"secretAccessKey\" is empty",
            ),
            (
                "not base64",
                Ok(secret(
                    json!({"accessKeyId": "%%%", "secretAccessKey": b64(FAKE_SECRET)}),
                )),
                "entry \"accessKeyId\" is not valid base64",
            ),
            (
                "http endpoint",
                Ok(secret(
                    json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64("http://s3.cubbit.eu")}),
                )),
                "entry \"endpoint\" must use https",
            ),
            (
                "relative endpoint",
                Ok(secret(
                    json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64("s3.cubbit.eu")}),
                )),
                "entry \"endpoint\" must be an absolute URL",
            ),
        ];
        for (label, answer, expected) in cases {
            let cluster = cluster_with(answer);
            let warned = review_create(&with_ref(), NS, &Settings::default(), &cluster);
            assert_eq!(warned.verdict, Verdict::Accept, "{label}");
            assert!(
                warned.warnings.iter().any(|w| w.contains(expected)),
                "{label}: {:?}",
                warned.warnings
            );
            assert_no_values(&warned);

            let rejected = review_create(
                &with_ref(),
                NS,
                &settings(json!({"secretCheck": "reject"})),
                &cluster,
            );
            let Verdict::Reject(message) = &rejected.verdict else {
                panic!("{label}: expected rejection")
            };
            assert!(
                message.starts_with("DittoServer \"dittofs-s3\" is rejected: ")
                    && message.contains(expected),
                "{label}: {message}"
            );
            assert_no_values(&rejected);
        }
    }

    #[test]
    fn skip_makes_no_lookup() {
        let cluster = FakeCluster::default();
        let decision = review_create(
            &with_ref(),
            NS,
            &settings(json!({"secretCheck": "skip"})),
            &cluster,
        );
        assert_eq!(decision, Decision::accept());
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn endpoint_allow_list_always_rejects() {
        let data = json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64("https://s3.amazonaws.com")});
        let cluster = cluster_with(Ok(secret(data)));
        let decision = review_create(
            &with_ref(),
            NS,
            &settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]})),
            &cluster,
        );
        assert_eq!(
            decision.verdict,
            Verdict::Reject("DittoServer \"dittofs-s3\" is rejected: Secret \"s3-creds\" in namespace \"dittofs-system\": entry \"endpoint\" has a host that is not in allowedEndpointHosts".into())
        );
        let allowed = cluster_with(Ok(secret(good_data())));
        let decision = review_create(
            &with_ref(),
            NS,
            &settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]})),
            &allowed,
        );
        assert_eq!(decision, Decision::accept());
    }

    #[test]
    fn insecure_endpoint_allowed_by_setting() {
        let data = json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET), "endpoint": b64("http://minio.local:9000")});
        let cluster = cluster_with(Ok(secret(data)));
        let decision = review_create(
            &with_ref(),
            NS,
            &settings(json!({"allowInsecureEndpoint": true})),
            &cluster,
        );
        assert_eq!(decision, Decision::accept());
    }

    #[test]
    fn custom_key_names_are_checked() {
        let object = ditto(
            json!({"credentialsSecretRef": {"secretName": "s3-creds", "accessKeyIdKey": "id", "secretAccessKeyKey": "key"}}),
        );
        let cluster = cluster_with(Ok(secret(good_data())));
        let decision = review_create(&object, NS, &Settings::default(), &cluster);
        let expected = [
            "Secret \"s3-creds\" in namespace \"dittofs-system\": entry \"id\" is missing",
            "Secret \"s3-creds\" in namespace \"dittofs-system\": entry \"key\" is missing",
        ];
        assert_eq!(decision.warnings, expected);
    }

    #[test]
    fn an_update_that_leaves_spec_s3_alone_is_accepted_without_lookups() {
        let restrict = settings(json!({"allowedRegions": ["fr-par"], "secretCheck": "reject"}));
        let cluster = FakeCluster::default();
        let stored = with_ref();
        let mut relabelled = stored.clone();
        relabelled["metadata"]["labels"] = json!({"team": "storage"});
        relabelled["metadata"]["finalizers"] = json!(["example.com/keep"]);
        let decision = review_update(&relabelled, Some(&stored), NS, &restrict, &cluster);
        assert_eq!(decision.verdict, Verdict::Accept);
        assert_eq!(
            decision.warnings,
            [
                "DittoServer \"dittofs-s3\" would be rejected if spec.s3 changed: spec.s3.region: \"eu-west-1\" is not in allowedRegions [fr-par]"
            ]
        );
        assert!(cluster.lookups.borrow().is_empty());
        // A spec that passes today gives no warning.
        let fine = review_update(
            &relabelled,
            Some(&stored),
            NS,
            &Settings::default(),
            &cluster,
        );
        assert_eq!(fine, Decision::accept());
        // Changing spec.s3 is judged as usual.
        let mut moved = relabelled.clone();
        moved["spec"]["s3"]["bucket"] = json!("new-bucket");
        let judged = review_update(&moved, Some(&stored), NS, &restrict, &cluster);
        assert!(matches!(judged.verdict, Verdict::Reject(_)), "{judged:?}");
    }

    #[test]
    fn a_dittoserver_without_a_name_is_called_unnamed() {
        let mut object = ditto(json!({"region": "NOPE"}));
        object["metadata"] = json!({"generateName": ""});
        let Verdict::Reject(message) =
            review_create(&object, NS, &Settings::default(), &FakeCluster::default()).verdict
        else {
            panic!("accepted")
        };
        assert!(
            message.starts_with("unnamed DittoServer is invalid: spec.s3.region"),
            "{message}"
        );
    }

    #[test]
    fn a_dittofs_image_from_0_13_gets_a_warning_whatever_the_verdict() {
        let cluster = cluster_with(Ok(secret(good_data())));
        let mut object = with_ref();
        object["spec"]["image"] = json!("marmos91c/dittofs:0.13.0");
        let decision = review_create(&object, NS, &Settings::default(), &cluster);
        assert_eq!(decision.verdict, Verdict::Accept);
        assert_eq!(decision.warnings.len(), 1);
        assert!(decision.warnings[0].contains("from 0.13.0 on DittoFS ignores AWS_* variables"));
        object["spec"]["image"] = json!("marmos91c/dittofs:0.12.0");
        assert_eq!(
            review_create(&object, NS, &Settings::default(), &cluster),
            Decision::accept()
        );
    }

    fn write_as(
        username: &str,
        groups: &[&str],
        object: &Value,
        previous: Option<&Value>,
        settings: &Settings,
        cluster: &dyn Cluster,
    ) -> Decision {
        let request = DittoServerRequest {
            object,
            previous,
            namespace: NS,
            requester: Some(Requester {
                username,
                groups: groups.to_vec(),
            }),
        };
        review(&request, settings, cluster)
    }

    #[test]
    fn an_author_who_may_read_the_secret_passes_silently() {
        let cluster = cluster_with(Ok(secret(good_data())));
        let decision = write_as(
            "system:serviceaccount:gitops:argocd",
            &["system:authenticated", "system:serviceaccounts"],
            &with_ref(),
            None,
            &Settings::default(),
            &cluster,
        );
        assert_eq!(decision, Decision::accept());
        assert_eq!(
            *cluster.lookups.borrow(),
            [
                "may system:serviceaccount:gitops:argocd (system:authenticated,system:serviceaccounts) get Secret \"s3-creds\" in namespace \"dittofs-system\"",
                "Secret \"s3-creds\" in namespace \"dittofs-system\"",
            ]
        );
    }

    #[test]
    fn an_author_who_may_not_read_the_secret_is_refused_per_setting() {
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
        let rejected = write_as(
            "mallory",
            &[],
            &with_ref(),
            None,
            &Settings::default(),
            &cluster,
        );
        assert_eq!(
            rejected.verdict,
            Verdict::Reject("DittoServer \"dittofs-s3\" is rejected: user \"mallory\" may not get Secret \"s3-creds\" in namespace \"dittofs-system\", so it may not have DittoFS pods read it (secretAccessCheck); grant the user get on that Secret, or name one the user can read".into())
        );
        let warn = settings(json!({"secretAccessCheck": "warn"}));
        let cluster = cluster_with(Ok(secret(json!({})))).with_access("mallory", Ok(false));
        let warned = write_as("mallory", &[], &with_ref(), None, &warn, &cluster);
        assert_eq!(warned.verdict, Verdict::Accept);
        assert_eq!(warned.warnings.len(), 1);
        assert!(warned.warnings[0].starts_with("DittoServer \"dittofs-s3\" was not checked against its Secret: user \"mallory\" may not get"));
        // The Secret a refused author names is not looked at, so nothing about it is told.
        assert_eq!(cluster.lookups.borrow().len(), 1);
        let skip = settings(json!({"secretAccessCheck": "skip"}));
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
        assert_eq!(
            write_as("mallory", &[], &with_ref(), None, &skip, &cluster),
            Decision::accept()
        );
        assert!(
            cluster
                .lookups
                .borrow()
                .iter()
                .all(|l| !l.starts_with("may "))
        );
    }

    #[test]
    fn a_failing_access_review_is_reported_per_setting_never_an_error() {
        let failing = Err(LookupError::AccessDenied(
            "subjectaccessreviews.authorization.k8s.io is forbidden".into(),
        ));
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("alice", failing.clone());
        let Verdict::Reject(message) = write_as(
            "alice",
            &[],
            &with_ref(),
            None,
            &Settings::default(),
            &cluster,
        )
        .verdict
        else {
            panic!("accepted")
        };
        assert!(
            message.contains("cannot check whether user \"alice\" may get Secret \"s3-creds\""),
            "{message}"
        );
        let warn = settings(json!({"secretAccessCheck": "warn"}));
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("alice", failing);
        let decision = write_as("alice", &[], &with_ref(), None, &warn, &cluster);
        assert_eq!(decision.verdict, Verdict::Accept);
        assert!(
            decision.warnings[0].contains("access denied (subjectaccessreviews"),
            "{:?}",
            decision.warnings
        );
    }

    /// Whether `cluster` was asked anything about access, and whether it read a Secret.
    fn asked_and_read(cluster: &FakeCluster) -> (bool, bool) {
        let lookups = cluster.lookups.borrow();
        (
            lookups.iter().any(|l| l.starts_with("may ")),
            lookups.iter().any(|l| l.starts_with("Secret ")),
        )
    }

    #[test]
    fn writes_that_only_size_or_expose_the_server_ask_nothing() {
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
        let stored = with_ref();
        let mut scaled = stored.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["resources"] = json!({"limits": {"memory": "2Gi"}});
        scaled["spec"]["service"] = json!({"type": "LoadBalancer"});
        scaled["metadata"]["labels"] = json!({"team": "storage"});
        scaled["metadata"]["finalizers"] = json!(["dittofs.dittofs.com/finalizer"]);
        scaled["status"] = json!({"phase": "Running"});
        let decision = write_as(
            "mallory",
            &[],
            &scaled,
            Some(&stored),
            &Settings::default(),
            &cluster,
        );
        assert_eq!(decision, Decision::accept());
        assert_eq!(asked_and_read(&cluster), (false, false));
    }

    /// The rejection of mallory's UPDATE of `stored` to `object`, under default settings.
    fn refused_to_mallory(object: &Value, stored: &Value, cluster: &dyn Cluster) -> String {
        let decision = write_as(
            "mallory",
            &[],
            object,
            Some(stored),
            &Settings::default(),
            cluster,
        );
        match decision.verdict {
            Verdict::Reject(message) => message,
            _ => panic!("expected a rejection, got {decision:?}"),
        }
    }

    /// A change of a DittoServer, by the field it changes.
    type Change = (&'static str, fn(&mut Value));

    #[test]
    fn every_write_that_decides_what_runs_with_the_secret_is_asked_about() {
        let stored = with_ref();
        let changes: [Change; 7] = [
            ("spec.image", |o| {
                o["spec"]["image"] = json!("attacker.example/dittofs:evil")
            }),
            ("spec.database", |o| {
                o["spec"]["database"] = json!({"type": "postgres"})
            }),
            ("spec.identity", |o| {
                o["spec"]["identity"] = json!({"admin": {"username": "mallory"}})
            }),
            ("spec.percona", |o| {
                o["spec"]["percona"] = json!({"enabled": true})
            }),
            ("spec.s3", |o| {
                o["spec"]["s3"]["bucket"] = json!("other-bucket")
            }),
            ("spec.s3", |o| {
                o["spec"]["s3"]["credentialsSecretRef"]["secretAccessKeyKey"] = json!("password")
            }),
            ("spec.sidecars", |o| {
                o["spec"]["sidecars"] = json!([{"image": "x"}])
            }),
        ];
        for (field, change) in changes {
            let mut changed = stored.clone();
            change(&mut changed);
            let refused = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
            let message = &refused_to_mallory(&changed, &stored, &refused);
            assert!(
                message.contains(&format!("(this write changes {field})"))
                    && message.contains("user \"mallory\" may not get Secret \"s3-creds\""),
                "{message}"
            );
            let advice = if field == "spec.s3" {
                "or name one the user can read"
            } else {
                "or have someone who may read it make this change"
            };
            assert!(message.ends_with(advice), "{message}");
            // Nothing about the Secret is described to an author who may not read it.
            assert_eq!(asked_and_read(&refused), (true, false), "{field}");

            let warn = settings(json!({"secretAccessCheck": "warn"}));
            let warned = write_as("mallory", &[], &changed, Some(&stored), &warn, &refused);
            assert_eq!(warned.verdict, Verdict::Accept, "{field}");
            assert!(
                warned.warnings[0].contains("was not checked against its Secret"),
                "{field}"
            );

            let skip = settings(json!({"secretAccessCheck": "skip"}));
            let skipping = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
            let skipped = write_as("mallory", &[], &changed, Some(&stored), &skip, &skipping);
            assert_eq!(skipped.verdict, Verdict::Accept, "{field}");
            assert!(!asked_and_read(&skipping).0, "{field}");

            let granted = cluster_with(Ok(secret(good_data())));
            let allowed = write_as(
                "alice",
                &[],
                &changed,
                Some(&stored),
                &Settings::default(),
                &granted,
            );
            assert_eq!(allowed.verdict, Verdict::Accept, "{field}: {allowed:?}");
        }
    }

    #[test]
    fn dropping_the_secret_reference_while_changing_the_image_is_asked_about_that_secret() {
        let stored = with_ref();
        let mut evil = stored.clone();
        evil["spec"] = json!({"image": "attacker.example/dittofs:evil"});
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
        let message = refused_to_mallory(&evil, &stored, &cluster);
        assert!(
            message.contains("user \"mallory\" may not get Secret \"s3-creds\"")
                && message.contains("(this write changes spec.image, spec.s3)"),
            "{message}"
        );
    }

    #[test]
    fn several_refused_secrets_are_named_in_one_short_clause() {
        let mut object = with_ref();
        object["spec"]["database"] = json!({"postgresSecretRef": {"name": "pg-url"}});
        let failing = Err(LookupError::Failed("etcdserver: request timed out".into()));
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", Ok(false));
        let decision = write_as(
            "mallory",
            &[],
            &object,
            None,
            &Settings::default(),
            &cluster,
        );
        assert_eq!(
            decision.verdict,
            Verdict::Reject(
                "DittoServer \"dittofs-s3\" is rejected: user \"mallory\" may not get Secrets \
                 \"s3-creds\", \"pg-url\" in namespace \"dittofs-system\", so it may not have DittoFS \
                 pods read it (secretAccessCheck); grant the user get on that Secret, or name one the \
                 user can read"
                    .into()
            )
        );
        let warn = settings(json!({"secretAccessCheck": "warn"}));
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("mallory", failing);
        let decision = write_as("mallory", &[], &object, None, &warn, &cluster);
        // One clause for both Secrets: who, which Secrets and why fit the 256-byte warning.
        let [warning] = decision.warnings.as_slice() else {
            panic!("{decision:?}")
        };
        assert!(
            warning.starts_with(
                "DittoServer \"dittofs-s3\" was not checked against its Secret: cannot check \
                 whether user \"mallory\" may get Secrets \"s3-creds\", \"pg-url\" in namespace \
                 \"dittofs-system\": lookup failed (etcdserver: request timed out), so it may not \
                 have DittoFS pods read it"
            ) && warning.len() <= crate::decision::WARNING_LIMIT,
            "{warning}"
        );
    }

    #[test]
    fn every_secret_the_dittoserver_names_is_asked_about() {
        let mut object = with_ref();
        object["spec"]["database"] = json!({"postgresSecretRef": {"name": "pg-url", "key": "url"}});
        object["spec"]["percona"] = json!({"backup": {"credentialsSecretRef": {"name": "backup-keys"}, "endpoint": "https://evil.example"}});
        let cluster = cluster_with(Ok(secret(good_data()))).with_secret_access(
            "mallory",
            "backup-keys",
            Ok(false),
        );
        let decision = write_as(
            "mallory",
            &[],
            &object,
            None,
            &Settings::default(),
            &cluster,
        );
        assert_eq!(
            decision.verdict,
            Verdict::Reject(
                "DittoServer \"dittofs-s3\" is rejected: user \"mallory\" may not get Secret \"backup-keys\" \
                 in namespace \"dittofs-system\" (named in spec.percona.backup.credentialsSecretRef.name), \
                 so it may not have DittoFS pods read it (secretAccessCheck); grant the user get on that \
                 Secret, or name one the user can read"
                    .into()
            )
        );
        let asked: Vec<String> = cluster
            .lookups
            .borrow()
            .iter()
            .filter(|l| l.starts_with("may "))
            .cloned()
            .collect();
        assert_eq!(
            asked,
            [
                format!("may mallory () get Secret \"s3-creds\" in namespace \"{NS}\""),
                format!("may mallory () get Secret \"pg-url\" in namespace \"{NS}\""),
                format!("may mallory () get Secret \"backup-keys\" in namespace \"{NS}\""),
            ]
        );
    }

    #[test]
    fn a_secret_reference_that_is_not_a_name_is_refused_before_any_question() {
        let mut object = with_ref();
        object["spec"]["database"] =
            json!({"postgresSecretRef": {"name": "../../../namespaces/victim/secrets/x"}});
        let cluster = cluster_with(Ok(secret(good_data())));
        let decision = write_as("alice", &[], &object, None, &Settings::default(), &cluster);
        let Verdict::Reject(message) = decision.verdict else {
            panic!("expected a rejection")
        };
        assert!(
            message.starts_with(
                "DittoServer \"dittofs-s3\" is invalid: spec.database.postgresSecretRef.name: "
            ),
            "{message}"
        );
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn a_request_with_groups_but_no_user_name_is_asked_about() {
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("", Ok(false));
        let decision = write_as(
            "",
            &["system:masters"],
            &with_ref(),
            None,
            &Settings::default(),
            &cluster,
        );
        let Verdict::Reject(message) = decision.verdict else {
            panic!("expected a rejection")
        };
        assert!(
            message.contains("the unnamed user of groups [system:masters] may not get Secret"),
            "{message}"
        );
    }

    #[test]
    fn requests_without_a_user_are_not_asked_about() {
        let cluster = cluster_with(Ok(secret(good_data()))).with_access("", Ok(false));
        assert_eq!(
            review_create(&with_ref(), NS, &Settings::default(), &cluster),
            Decision::accept()
        );
        assert!(
            cluster
                .lookups
                .borrow()
                .iter()
                .all(|l| !l.starts_with("may "))
        );
    }

    #[test]
    fn a_masking_host_and_an_older_one_give_the_same_reviews() {
        let variants = [
            good_data(),
            json!({"accessKeyId": b64(FAKE_KEY), "unrelated": b64("x")}),
            json!({"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
                   "endpoint": b64("http://minio.local")}),
        ];
        let restrict = settings(json!({"allowedEndpointHosts": ["*.cubbit.eu"]}));
        for data in variants {
            for settings in [Settings::default(), restrict.clone()] {
                let whole = review_create(
                    &with_ref(),
                    NS,
                    &settings,
                    &cluster_with(Ok(secret(data.clone()))),
                );
                let pruned = review_create(
                    &with_ref(),
                    NS,
                    &settings,
                    &cluster_with(Ok(secret(data.clone()))).pruning(),
                );
                assert_eq!(whole, pruned, "{data}");
            }
        }
    }
}
