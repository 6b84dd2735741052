//! `inject` mode: write the DittoServer's credentials env, the injection record and the hash
//! into the `dittofs` container and pod metadata, as the operator would render them.

use serde_json::Value;

use super::lookup::{Owner, SecretProblem, read_credentials, read_owner};
use super::object::{
    container_slot, env_path, find_container, finish, pod_annotation, remove_annotation,
    set_annotation,
};
use super::ownership::{InjectionRecord, Ownership, RECORD_ANNOTATION};
use super::restore::{Unknown, keep_as_it_was};
use super::routes::{self, Review};
use super::{WorkloadKind, WorkloadRequest, env, owning_dittoserver};
use crate::cluster::{Cluster, ObjectRef};
use crate::decision::{Decision, Verdict};
use crate::dittoserver::CredentialsRef;
use crate::edits::{self, Edits};
use crate::settings::{OnEnvConflict, Settings};

/// Decides on a Pod CREATE or a StatefulSet CREATE/UPDATE in `inject` mode; whatever it would
/// admit, its credential routes are weighed first (see `routes`).
pub fn inject(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision<Edits> {
    let Some(owner_name) = owning_dittoserver(request.kind, request.object) else {
        return Decision::accept();
    };
    // A pod spec cannot change after creation.
    if request.kind == WorkloadKind::Pod && request.operation != "CREATE" {
        return Decision::accept();
    }
    let decision = decide(request, owner_name, settings, cluster);
    routes::weigh(request, settings, decision, Review::Inject)
}

/// The injection decision for a DittoFS workload, before its credential routes are weighed.
fn decide(
    request: &WorkloadRequest<'_>,
    owner_name: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision<Edits> {
    let owner = ObjectRef::ditto_server(request.namespace, owner_name);
    let (credentials, region) = match read_owner(owner, cluster) {
        Owner::NoCredentials => return withdraw(request, settings, &owner),
        Owner::Unreadable(reason) => {
            return keep_as_it_was(request, settings, &reason, Unknown::Owner, cluster);
        }
        Owner::Invalid(reason) => {
            return keep_as_it_was(request, settings, &reason, Unknown::Credentials, cluster);
        }
        Owner::Credentials(credentials, region) => (credentials, region),
    };
    let hash = match read_credentials(&credentials, request.namespace, settings, cluster) {
        Ok(hash) => Some(hash),
        Err(SecretProblem::Endpoint(finding)) => return endpoint_refusal(request, &finding),
        Err(SecretProblem::Unavailable { reason, .. }) => {
            if request.is_update() || request.carries_injection(settings) {
                return keep_as_it_was(request, settings, &reason, Unknown::Credentials, cluster);
            }
            // A first injection: the container waits for the Secret; the hash comes with the
            // next write that can read it.
            return write(request, settings, &owner, &credentials, &region, None).with_warnings(
                vec![format!(
                    "S3 env injected into {} without {}: {reason}",
                    request.describe(),
                    settings.hash_annotation
                )],
            );
        }
    };
    write(request, settings, &owner, &credentials, &region, hash)
}

/// The DittoServer names no credentials (any more): what the policy wrote follows it, as a
/// changed region does. Its entries (by the record), the record and the hash are removed; a
/// person's own definitions stay. Nothing it wrote means nothing to do.
fn withdraw(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    owner: &ObjectRef<'_>,
) -> Decision<Edits> {
    let ownership = request.ownership(settings);
    if matches!(ownership, Ownership::None) {
        return Decision::accept();
    }
    let object = request.object;
    let mut edits = Edits::default();
    let mut removed = Vec::new();
    if let Ok(Some((index, container))) =
        container_slot(object, request.kind, &settings.container_name)
        && let Some(env) = container.get("env").and_then(Value::as_array)
    {
        let mut kept = env.clone();
        kept.retain(|entry| !ownership.wrote(entry));
        let after = env::defined(&kept);
        removed.extend(
            env::defined(env)
                .into_iter()
                .filter(|name| !after.contains(name)),
        );
        let path = env_path(request.kind, index);
        if kept.is_empty() {
            edits.remove(object, path);
        } else {
            // A list read at this path is written back to it: this cannot fail.
            edits.set(object, path, Value::Array(kept)).ok();
        }
    }
    for key in [settings.hash_annotation.as_str(), RECORD_ANNOTATION] {
        remove_annotation(&mut edits, object, request.kind, key);
    }
    let what = if removed.is_empty() {
        "the S3 hash and record of".to_owned()
    } else {
        format!(
            "the S3 env ({}) the policy injected into",
            removed.join(", ")
        )
    };
    let warning = format!(
        "removed {what} {}: {owner} names no S3 credentials any more",
        request.describe()
    );
    match finish(edits) {
        decision @ Decision {
            verdict: Verdict::Mutate(_),
            ..
        } => decision.with_warnings(vec![warning]),
        unchanged => unchanged,
    }
}

/// The refusal for credentials that would go to an endpoint the endpoint rules forbid.
pub(super) fn endpoint_refusal<M>(request: &WorkloadRequest<'_>, finding: &str) -> Decision<M> {
    Decision::reject(format!(
        "{}: its S3 credentials would be sent to an endpoint that breaks the endpoint rules: \
         {finding}",
        request.describe()
    ))
}

/// Writes the desired env, the injection record and, when known, the hash.
fn write(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    owner: &ObjectRef<'_>,
    credentials: &CredentialsRef,
    region: &str,
    hash: Option<String>,
) -> Decision<Edits> {
    let malformed = |field: String| {
        Decision::reject(format!(
            "cannot inject S3 credentials into {}: {field} is malformed",
            request.describe()
        ))
    };
    let desired = env::desired(credentials, region);
    let record = InjectionRecord::new(credentials, region).to_annotation();
    if is_written(request, settings, &desired, &record, hash.as_deref()) {
        return Decision::accept();
    }
    let ownership = request.ownership(settings);
    let object = request.object;
    let mut edits = Edits::default();
    let mut warnings = Vec::new();

    let (index, container) = match container_slot(object, request.kind, &settings.container_name) {
        Err(field) => return malformed(field),
        Ok(None) => {
            return Decision::accept().with_warnings(vec![format!(
                "S3 credentials were not injected into {}: it has no container \"{}\"",
                request.describe(),
                settings.container_name
            )]);
        }
        Ok(Some(found)) => found,
    };
    let path = env_path(request.kind, index);
    let Some(mut env) = env::env_of(container) else {
        return malformed(edits::dotted(&path));
    };
    let comparison = env::compare(&env, &desired, &|entry| ownership.wrote(entry));
    if !comparison.conflicting.is_empty() && settings.on_env_conflict == OnEnvConflict::Reject {
        return Decision::reject(format!(
            "{}: container \"{}\" already defines {} differently from what {owner} requires \
             (onEnvConflict: reject); remove the definition or set onEnvConflict: overwrite",
            request.describe(),
            settings.container_name,
            comparison.conflicting.join(", ")
        ));
    }
    if !comparison.conflicting.is_empty() {
        warnings.push(format!(
            "replaced the definition of {} in container \"{}\" of {} (onEnvConflict: overwrite)",
            comparison.conflicting.join(", "),
            settings.container_name,
            request.describe()
        ));
    }
    env::merge(&mut env, desired);

    let mut written = edits.set(object, path, Value::Array(env));
    written = written
        .and_then(|()| set_annotation(&mut edits, object, request.kind, RECORD_ANNOTATION, record));
    if let Some(hash) = hash {
        written = written.and_then(|()| {
            set_annotation(
                &mut edits,
                object,
                request.kind,
                &settings.hash_annotation,
                hash,
            )
        });
    }
    if let Err(field) = written {
        return malformed(field);
    }
    finish(edits).with_warnings(warnings)
}

/// Whether the workload already holds exactly what `write` would write (every pod of an
/// injected template does): then the answer needs no copy of the object.
fn is_written(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    desired: &[Value],
    record: &str,
    hash: Option<&str>,
) -> bool {
    let annotation = |key: &str| pod_annotation(request.object, request.kind, key);
    find_container(request.object, request.kind, &settings.container_name)
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .is_some_and(|env| env::compare(env, desired, &|_| false).is_satisfied())
        && annotation(RECORD_ANNOTATION) == Some(record)
        && hash.is_none_or(|hash| annotation(&settings.hash_annotation) == Some(hash))
}
