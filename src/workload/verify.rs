//! `verify` mode: never mutates; reports a DittoFS workload whose env or hash differs from
//! what injection would produce now, or that holds credential routes.

use serde_json::Value;

use super::lookup::{Owner, SecretProblem, read_credentials, read_owner};
use super::object::{find_container, pod_annotation};
use super::routes::{self, Review};
use super::{WorkloadKind, WorkloadRequest, env, owning_dittoserver};
use crate::cluster::{Cluster, ObjectRef};
use crate::decision::Decision;
use crate::edits::Edits;
use crate::settings::Settings;
use crate::value::At;

/// Decides on a Pod or StatefulSet in `verify` mode: never mutates; rejects a DittoFS workload
/// whose env or hash differs from what injection would produce now, or whose Secret names an
/// endpoint that breaks the endpoint rules; weighs its credential routes as `inject` does.
pub fn verify(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision<Edits> {
    let Some(owner_name) = owning_dittoserver(request.kind, request.object) else {
        return Decision::accept();
    };
    let decision = check(request, owner_name, settings, cluster);
    routes::weigh(request, settings, decision, Review::Verify)
}

/// The staleness and endpoint checks of a DittoFS workload, before its credential routes are
/// weighed.
fn check(
    request: &WorkloadRequest<'_>,
    owner_name: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision<Edits> {
    let what = request.describe();
    let owner = ObjectRef::ditto_server(request.namespace, owner_name);
    let (credentials, region) = match read_owner(owner, cluster) {
        Owner::NoCredentials => return withdrawn(request, owner_name, &owner, settings),
        // An orphan or a transient failure must not flap audit reports.
        Owner::Unreadable(reason) | Owner::Invalid(reason) => {
            return Decision::accept().with_warnings(vec![format!(
                "cannot verify the S3 credentials of {what}: {reason}"
            )]);
        }
        Owner::Credentials(credentials, region) => (credentials, region),
    };
    let Some(container) = find_container(request.object, request.kind, &settings.container_name)
    else {
        return Decision::accept().with_warnings(vec![format!(
            "no S3 credentials to verify in {what}: it has no container \"{}\"",
            settings.container_name
        )]);
    };

    // Problems a rolling restart fixes (through the injecting policy).
    let mut stale = Vec::new();
    let env = container
        .get("env")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let comparison = env::compare(env, &env::desired(&credentials, &region), &|_| false);
    if !comparison.missing.is_empty() {
        stale.push(format!(
            "container \"{}\" lacks {}",
            settings.container_name,
            comparison.missing.join(", ")
        ));
    }
    if !comparison.conflicting.is_empty() {
        stale.push(format!(
            "container \"{}\" defines {} differently from what {owner} requires",
            settings.container_name,
            comparison.conflicting.join(", ")
        ));
    }
    let secret_ref = ObjectRef::secret(request.namespace, &credentials.secret_name);
    let mut warnings = Vec::new();
    match read_credentials(&credentials, request.namespace, settings, cluster) {
        Ok(expected) => {
            match pod_annotation(request.object, request.kind, &settings.hash_annotation) {
                Some(actual) if actual == expected => {}
                Some(_) => stale.push(format!(
                    "it runs with outdated S3 credentials ({} does not match {secret_ref})",
                    settings.hash_annotation
                )),
                None => stale.push(format!(
                    "it lacks the {} annotation",
                    settings.hash_annotation
                )),
            }
        }
        Err(SecretProblem::Endpoint(finding)) => {
            return Decision::reject(format!(
                "{what}: its S3 endpoint breaks the endpoint rules: {finding}"
            ));
        }
        Err(SecretProblem::Unavailable {
            reason,
            blocks_start: true,
        }) => {
            return Decision::reject(format!(
                "{what}: {reason}, so its DittoFS container cannot start"
            ));
        }
        Err(SecretProblem::Unavailable {
            reason,
            blocks_start: false,
        }) => {
            warnings.push(format!(
                "cannot verify the credentials hash of {what}: {reason}"
            ));
        }
    }
    if stale.is_empty() {
        return Decision::accept().with_warnings(warnings);
    }
    roll(request, owner_name, &stale).with_warnings(warnings)
}

/// The DittoServer names no credentials: a workload still holding entries the policy injected
/// (by its record) runs with credentials nobody names any more, until it rolls.
fn withdrawn(
    request: &WorkloadRequest<'_>,
    owner_name: &str,
    owner: &ObjectRef<'_>,
    settings: &Settings,
) -> Decision<Edits> {
    let ownership = request.ownership(settings);
    let holds = find_container(request.object, request.kind, &settings.container_name)
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .is_some_and(|env| env.iter().any(|entry| ownership.wrote(entry)));
    if !holds {
        return Decision::accept();
    }
    roll(
        request,
        owner_name,
        &[format!(
            "container \"{}\" holds S3 credentials that {owner} no longer names",
            settings.container_name
        )],
    )
}

/// The rejection of a stale workload, with the command that rolls it through the injecting
/// policy.
fn roll(request: &WorkloadRequest<'_>, owner_name: &str, stale: &[String]) -> Decision<Edits> {
    let statefulset = match request.kind {
        WorkloadKind::StatefulSet => request
            .object
            .at(["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or(owner_name),
        // The operator names the StatefulSet after its DittoServer.
        WorkloadKind::Pod => owner_name,
    };
    Decision::reject(format!(
        "{}: {}; roll it with: kubectl rollout restart statefulset/{statefulset} -n {}",
        request.describe(),
        stale.join("; "),
        request.namespace
    ))
}
