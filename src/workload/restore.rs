//! After a failed lookup: keep what the policy wrote before, since nothing new can be checked,
//! but still refuse credentials that what is kept would send to a forbidden endpoint.

use serde_json::Value;

use super::inject::endpoint_refusal;
use super::object::{
    container_path, container_slot, env_path, find_container, finish, pod_annotation,
    set_annotation,
};
use super::ownership::RECORD_ANNOTATION;
use super::{WorkloadKind, WorkloadRequest, env};
use crate::cluster::{Cluster, ObjectRef};
use crate::credentials::{SecretData, endpoint_finding};
use crate::decision::Decision;
use crate::edits::Edits;
use crate::settings::Settings;
use crate::value::At;

/// What a failed lookup leaves unknown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    /// The owning DittoServer could not be read: whether it still names these credentials is
    /// unknown, so a write that changes the container's code may not keep them.
    Owner,
    /// The DittoServer was read (a change of its image was asked about when it was written);
    /// only its Secret or its spec.s3 cannot be used.
    Credentials,
}

/// A lookup failed: nothing the policy wrote may change, or pods would roll onto credentials
/// nobody could check. On UPDATE the managed entries become exactly the previous revision's
/// (put back, restored, or removed when it had none) and its annotations come back; on CREATE
/// the object stays as it came, except that a StatefulSet without the policy's output is
/// refused: created without hash and record, it would roll the pods it adopts.
pub(super) fn keep_as_it_was(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    reason: &str,
    unknown: Unknown,
    cluster: &dyn Cluster,
) -> Decision<Edits> {
    let what = request.describe();
    let checked = |kept: Option<&Value>| kept_endpoint_refusal(kept, request, settings, cluster);
    if !request.is_update() {
        let container = find_container(request.object, request.kind, &settings.container_name);
        if let Some(refusal) = checked(container) {
            return refusal;
        }
        let carried = request.carries_injection(settings);
        if request.kind == WorkloadKind::StatefulSet && !carried {
            return Decision::reject(format!(
                "{what}: not created while its S3 credentials cannot be determined ({reason}); \
                 created now, its pod template would lack them and roll any pods it adopts onto \
                 none: retry once the lookup succeeds"
            ));
        }
        let consequence = if carried {
            format!("S3 credentials of {what} left as they came")
        } else {
            format!("S3 credentials were not injected into {what}")
        };
        return Decision::accept().with_warnings(vec![format!("{consequence}: {reason}")]);
    }
    let object = request.object;
    let mut edits = Edits::default();
    let managed = |object| env::managed_entries(whole_env(object, request, settings));
    let previous_env = managed(request.old_object);
    let (was, is) = (
        env::defined(&previous_env),
        env::defined(&managed(request.object)),
    );
    let slot = container_slot(object, request.kind, &settings.container_name)
        .ok()
        .flatten();
    // This path only preserves: a malformed new object is left as it is.
    if (!previous_env.is_empty() || !is.is_empty())
        && let Some((index, container)) = slot
        && let Some(mut env) = env::env_of(container)
    {
        env::restore(&mut env, whole_env(request.old_object, request, settings));
        // The container was found an object, without an env or with a list: this cannot fail.
        edits
            .set(object, env_path(request.kind, index), Value::Array(env))
            .ok();
    }
    let kept_hash = pod_annotation(request.old_object, request.kind, &settings.hash_annotation);
    let kept_record = pod_annotation(request.old_object, request.kind, RECORD_ANNOTATION);
    for (key, value) in [
        (settings.hash_annotation.as_str(), kept_hash),
        (RECORD_ANNOTATION, kept_record),
    ] {
        if let Some(value) = value
            && set_annotation(&mut edits, object, request.kind, key, value.to_owned()).is_err()
        {
            return Decision::accept().with_warnings(vec![format!(
                "S3 credentials of {what} left as they came: {reason}"
            )]);
        }
    }
    let kept = slot.and_then(|(index, _)| edits.view(object, &container_path(request.kind, index)));
    let kept = kept.as_deref();
    let changed = match unknown {
        Unknown::Owner => code_changes(request, kept, settings),
        Unknown::Credentials => Vec::new(),
    };
    if !changed.is_empty() {
        return Decision::reject(format!(
            "{what}: its container \"{}\" changes {} while the S3 credentials cannot be checked \
             ({reason}); the previous revision's credentials are not handed to new code unchecked, \
             so the workload stays as it was: retry once the lookup succeeds",
            settings.container_name,
            changed.join(", ")
        ));
    }
    if let Some(refusal) = checked(kept) {
        return refusal;
    }
    let removed: Vec<&str> = is
        .iter()
        .copied()
        .filter(|name| !was.contains(name))
        .collect();
    let mut kept = Vec::new();
    if !previous_env.is_empty() {
        kept.push("env");
    }
    if kept_hash.is_some() {
        kept.push("hash");
    }
    if kept.is_empty() && kept_record.is_some() {
        kept.push("record");
    }
    let warning = if !kept.is_empty() {
        // An operator's rendering replaces all of them or none; a write that drops some while
        // it keeps others is a person's edit, and putting those back is said.
        let put_back: Vec<&str> = if is.is_empty() {
            Vec::new()
        } else {
            was.iter()
                .copied()
                .filter(|name| !is.contains(name))
                .collect()
        };
        let mut undone = Vec::new();
        if !put_back.is_empty() {
            undone.push(format!(
                "put back {}, which this write removed",
                put_back.join(", ")
            ));
        }
        if !removed.is_empty() {
            undone.push(format!(
                "removed {}, which the previous revision lacked",
                removed.join(", ")
            ));
        }
        let undone = if undone.is_empty() {
            String::new()
        } else {
            format!(" ({})", undone.join("; "))
        };
        format!(
            "kept the S3 {} of the previous revision of {what}{undone}: {reason}",
            kept.join(" and ")
        )
    } else if !removed.is_empty() {
        format!(
            "removed {} from {what}, as its previous revision had no S3 env: {reason}",
            removed.join(", ")
        )
    } else {
        // The previous revision had nothing of the policy's to keep.
        format!("S3 credentials of {what} left as they came: {reason}")
    };
    finish(edits).with_warnings(vec![warning])
}

/// The env of a revision's DittoFS container; empty when it has none.
fn whole_env<'v>(
    object: &'v Value,
    request: &WorkloadRequest<'_>,
    settings: &Settings,
) -> &'v [Value] {
    find_container(object, request.kind, &settings.container_name)
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// What decides the code of the DittoFS container.
const CODE_FIELDS: [&str; 3] = ["image", "command", "args"];

/// The code fields of the DittoFS container that an UPDATE changes, when what is kept of it
/// holds credentials: the previous revision's credentials were checked for its code only.
fn code_changes(
    request: &WorkloadRequest<'_>,
    kept: Option<&Value>,
    settings: &Settings,
) -> Vec<&'static str> {
    let holds_credentials = kept
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .is_some_and(|env| {
            env.iter().any(|entry| {
                env::entry_name(entry).is_some_and(|name| {
                    name == env::ACCESS_KEY_ID || name == env::SECRET_ACCESS_KEY
                })
            })
        });
    if !holds_credentials {
        return Vec::new();
    }
    let before = find_container(request.old_object, request.kind, &settings.container_name);
    CODE_FIELDS
        .into_iter()
        .filter(|field| before.and_then(|c| c.get(*field)) != kept.and_then(|c| c.get(*field)))
        .collect()
}

/// What is kept still sends credentials somewhere: the endpoint entry the kept
/// `AWS_ENDPOINT_URL` names (often of another Secret than the one that could not be read) must
/// pass the endpoint rules too. When it cannot be read either, what is kept stays. It is read
/// even when it is the Secret whose read just failed: the kept entry may be another key of it,
/// and a failed read checked no endpoint.
fn kept_endpoint_refusal(
    kept: Option<&Value>,
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Option<Decision<Edits>> {
    let reference = kept?
        .get("env")?
        .as_array()?
        .iter()
        .find(|entry| env::entry_name(entry) == Some(env::ENDPOINT_URL))?
        .at(["valueFrom", "secretKeyRef"])?;
    let name = reference.get("name")?.as_str()?;
    let key = reference.get("key")?.as_str()?;
    let secret_ref = ObjectRef::secret(request.namespace, name);
    let field = if key.contains('.') {
        "data".to_owned()
    } else {
        format!("data.{key}")
    };
    let secret = cluster.get(secret_ref, &[field]).ok()?;
    let finding = endpoint_finding(&SecretData::from_object(&secret).ok()?, key, settings)?;
    Some(endpoint_refusal(
        request,
        &format!("{secret_ref}: {}", finding.message),
    ))
}
