//! `inject` mode: write the DittoServer's credentials env, the injection record and the hash
//! into the `dittofs` container and pod metadata, as the operator would render them.

use serde_json::Value;

use super::lookup::{Owner, SecretProblem, read_credentials, read_owner};
use super::object::{
    container_mut, dotted, find_container, finish, pod_annotation, remove_annotation,
    set_annotation,
};
use super::ownership::{InjectionRecord, Ownership, RECORD_ANNOTATION};
use super::restore::{Unknown, keep_as_it_was};
use super::routes::{self, Review};
use super::{WorkloadKind, WorkloadRequest, env, owning_dittoserver};
use crate::cluster::{Cluster, ObjectRef};
use crate::decision::{Decision, Verdict};
use crate::dittoserver::CredentialsRef;
use crate::settings::{OnEnvConflict, Settings};

/// Decides on a Pod CREATE or a StatefulSet CREATE/UPDATE in `inject` mode; whatever it would
/// admit, its credential routes are weighed first (see `routes`).
pub fn inject(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
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
) -> Decision {
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
fn withdraw(request: &WorkloadRequest<'_>, settings: &Settings, owner: &ObjectRef<'_>) -> Decision {
    let ownership = request.ownership(settings);
    if matches!(ownership, Ownership::None) {
        return Decision::accept();
    }
    let mut object = request.object.clone();
    let mut removed = Vec::new();
    if let Ok(Some((_, container))) =
        container_mut(&mut object, request.kind, &settings.container_name)
        && let Some(env) = container.get_mut("env").and_then(Value::as_array_mut)
    {
        let before = env::defined(env);
        env.retain(|entry| !ownership.wrote(entry));
        let after = env::defined(env);
        removed.extend(before.into_iter().filter(|name| !after.contains(name)));
        if env.is_empty() {
            container.remove("env");
        }
    }
    for key in [settings.hash_annotation.as_str(), RECORD_ANNOTATION] {
        remove_annotation(&mut object, request.kind, key);
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
    match finish(request.object, object) {
        decision @ Decision {
            verdict: Verdict::Mutate(_),
            ..
        } => decision.with_warnings(vec![warning]),
        unchanged => unchanged,
    }
}

/// The refusal for credentials that would go to an endpoint the endpoint rules forbid.
pub(super) fn endpoint_refusal(request: &WorkloadRequest<'_>, finding: &str) -> Decision {
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
) -> Decision {
    let what = request.describe();
    let malformed = |field: String| {
        Decision::reject(format!(
            "cannot inject S3 credentials into {what}: {field} is malformed"
        ))
    };
    let desired = env::desired(credentials, region);
    let record = InjectionRecord::new(credentials, region).to_annotation();
    if is_written(request, settings, &desired, &record, hash.as_deref()) {
        return Decision::accept();
    }
    let ownership = request.ownership(settings);
    let mut object = request.object.clone();
    let mut warnings = Vec::new();

    let (index, container) =
        match container_mut(&mut object, request.kind, &settings.container_name) {
            Err(field) => return malformed(field),
            Ok(None) => {
                return Decision::accept().with_warnings(vec![format!(
                    "S3 credentials were not injected into {what}: it has no container \"{}\"",
                    settings.container_name
                )]);
            }
            Ok(Some(found)) => found,
        };
    let env_field = format!(
        "{}.containers[{index}].env",
        dotted(request.kind.pod_spec_path())
    );
    let Some(env) = env::env_of(container) else {
        return malformed(env_field);
    };
    let comparison = env::compare(env, &desired, &|entry| ownership.wrote(entry));
    if !comparison.conflicting.is_empty() && settings.on_env_conflict == OnEnvConflict::Reject {
        return Decision::reject(format!(
            "{what}: container \"{}\" already defines {} differently from what {owner} requires \
             (onEnvConflict: reject); remove the definition or set onEnvConflict: overwrite",
            settings.container_name,
            comparison.conflicting.join(", ")
        ));
    }
    if !comparison.conflicting.is_empty() {
        warnings.push(format!(
            "replaced the definition of {} in container \"{}\" of {what} (onEnvConflict: overwrite)",
            comparison.conflicting.join(", "),
            settings.container_name
        ));
    }
    env::merge(env, &desired);

    let mut written = set_annotation(&mut object, request.kind, RECORD_ANNOTATION, record);
    if let Some(hash) = hash {
        written = written.and_then(|()| {
            set_annotation(&mut object, request.kind, &settings.hash_annotation, hash)
        });
    }
    if let Err(field) = written {
        return malformed(field);
    }
    finish(request.object, object).with_warnings(warnings)
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
