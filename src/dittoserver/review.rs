//! Admission of DittoServer objects: `spec.s3` rules, settings allow-lists and the Secret check.

use serde_json::Value;

use super::{CredentialsRef, S3Spec, parse_s3};
use crate::cluster::{Cluster, LookupError, ObjectRef};
use crate::credentials::{ConsumedCredentials, SecretData, check_endpoint};
use crate::decision::Decision;
use crate::settings::{SecretCheck, Settings};

/// One problem with the referenced Secret; `hard` ones reject whatever `secretCheck` says.
struct SecretFinding {
    message: String,
    hard: bool,
}

/// Decides on a DittoServer CREATE or UPDATE.
pub fn review(
    object: &Value,
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = match parse_s3(object) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Decision::accept(),
        Err(violations) => {
            let details: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Decision::reject(format!(
                "DittoServer \"{name}\" is invalid: {}",
                details.join("; ")
            ));
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
        return Decision::reject(format!(
            "DittoServer \"{name}\" is invalid: spec.s3.region: \"{}\"{origin} is not in allowedRegions [{}]",
            spec.region,
            allowed.join(", ")
        ));
    }

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
        return Decision::reject(format!(
            "DittoServer \"{name}\" is rejected: {}",
            all.join("; ")
        ));
    }
    Decision::accept().with_warnings(messages(soft))
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
    let secret = match cluster.get(secret_ref) {
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

    let mut findings = Vec::new();
    if let Err(problems) = ConsumedCredentials::read(&data, &credentials.keys) {
        findings.extend(problems.iter().map(|problem| SecretFinding {
            message: format!("{secret_ref}: {problem}"),
            hard: false,
        }));
    }
    if let crate::credentials::Entry::Present(endpoint) = data.entry(&credentials.keys.endpoint)
        && let Err(problem) = check_endpoint(
            &endpoint,
            settings.allow_insecure_endpoint,
            settings.allowed_endpoint_hosts.as_deref(),
        )
    {
        findings.push(SecretFinding {
            message: format!(
                "{secret_ref}: entry \"{}\" {}",
                credentials.keys.endpoint,
                problem.describe()
            ),
            hard: problem.breaks_allow_list(),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::decision::Verdict;
    use crate::test_support::{FAKE_KEY, FAKE_SECRET, assert_no_values, b64, settings};
    use serde_json::json;

    const NS: &str = "dittofs-system";

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
        let decision = review(&with_ref(), NS, &Settings::default(), &cluster);
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
            review(&object, NS, &Settings::default(), &cluster),
            Decision::accept()
        );
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn structural_violations_reject_with_name_and_field() {
        let object = ditto(json!({"credentialsSecretRef": {"secretName": "Bad_Name"}}));
        let decision = review(&object, NS, &Settings::default(), &FakeCluster::default());
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
        let explicit = review(&with_ref(), NS, &restrict, &cluster);
        assert_eq!(
            explicit.verdict,
            Verdict::Reject("DittoServer \"dittofs-s3\" is invalid: spec.s3.region: \"eu-west-1\" is not in allowedRegions [fr-par]".into())
        );
        let defaulted = review(&ditto(json!({})), NS, &restrict, &cluster);
        let Verdict::Reject(message) = defaulted.verdict else {
            panic!("expected rejection")
        };
        assert!(
            message.contains("\"eu-west-1\" (the default) is not in allowedRegions"),
            "{message}"
        );
        let allowed = review(&ditto(json!({"region": "fr-par"})), NS, &restrict, &cluster);
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
            let decision = review(
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
            let warned = review(&with_ref(), NS, &Settings::default(), &cluster);
            assert_eq!(warned.verdict, Verdict::Accept, "{label}");
            assert!(
                warned.warnings.iter().any(|w| w.contains(expected)),
                "{label}: {:?}",
                warned.warnings
            );
            assert_no_values(&warned);

            let rejected = review(
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
        let decision = review(
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
        let decision = review(
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
        let decision = review(
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
        let decision = review(
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
        let decision = review(&object, NS, &Settings::default(), &cluster);
        let expected = [
            "Secret \"s3-creds\" in namespace \"dittofs-system\": entry \"id\" is missing",
            "Secret \"s3-creds\" in namespace \"dittofs-system\": entry \"key\" is missing",
        ];
        assert_eq!(decision.warnings, expected);
    }
}
