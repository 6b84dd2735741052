//! After a failed lookup: keep what the policy wrote before, since nothing new can be checked,
//! but still refuse credentials that what is kept would send to a forbidden endpoint.

use serde_json::Value;

use super::inject::endpoint_refusal;
use super::object::{container_mut, find_container, finish, pod_annotation, set_annotation};
use super::ownership::RECORD_ANNOTATION;
use super::{WorkloadRequest, env};
use crate::cluster::{Cluster, ObjectRef};
use crate::credentials::{SecretData, endpoint_finding};
use crate::decision::Decision;
use crate::settings::Settings;

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
/// nobody could check. On UPDATE the previous revision's entries and annotations come back;
/// on CREATE the object stays as it came.
/// `looked_up` names the Secret this review already read (or failed to): not asked for again.
pub(super) fn keep_as_it_was(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    reason: &str,
    unknown: Unknown,
    looked_up: Option<&str>,
    cluster: &dyn Cluster,
) -> Decision {
    let what = request.describe();
    let checked = |kept: &Value| kept_endpoint_refusal(kept, request, settings, looked_up, cluster);
    if !request.is_update() {
        if let Some(refusal) = checked(request.object) {
            return refusal;
        }
        let consequence = if request.carries_injection(settings) {
            format!("S3 credentials of {what} left as they came")
        } else {
            format!("S3 credentials were not injected into {what}")
        };
        return Decision::accept().with_warnings(vec![format!("{consequence}: {reason}")]);
    }
    let mut object = request.object.clone();
    let previous_env = find_container(request.old_object, request.kind, &settings.container_name)
        .and_then(|container| container.get("env"))
        .and_then(Value::as_array)
        .map(|env| env::managed_entries(env))
        .unwrap_or_default();
    // This path only preserves: a malformed new object is left as it is.
    if !previous_env.is_empty()
        && let Ok(Some((_, container))) =
            container_mut(&mut object, request.kind, &settings.container_name)
        && let Some(env) = env::env_of(container)
    {
        env::restore(env, &previous_env);
    }
    let mut kept_anything = !previous_env.is_empty();
    for key in [settings.hash_annotation.as_str(), RECORD_ANNOTATION] {
        if let Some(value) = pod_annotation(request.old_object, request.kind, key) {
            kept_anything = true;
            if set_annotation(&mut object, request.kind, key, value.to_owned()).is_err() {
                return Decision::accept().with_warnings(vec![format!(
                    "S3 credentials of {what} left as they came: {reason}"
                )]);
            }
        }
    }
    let changed = match unknown {
        Unknown::Owner => code_changes(request, &object, settings),
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
    if let Some(refusal) = checked(&object) {
        return refusal;
    }
    let warning = if kept_anything {
        format!("kept the S3 env and hash of the previous revision of {what}: {reason}")
    } else {
        // The previous revision had nothing of the policy's to keep.
        format!("S3 credentials of {what} left as they came: {reason}")
    };
    finish(request.object, object).with_warnings(vec![warning])
}

/// What decides the code of the DittoFS container.
const CODE_FIELDS: [&str; 3] = ["image", "command", "args"];

/// The code fields of the DittoFS container that an UPDATE changes, when what is kept of it
/// holds credentials: the previous revision's credentials were checked for its code only.
fn code_changes(
    request: &WorkloadRequest<'_>,
    kept: &Value,
    settings: &Settings,
) -> Vec<&'static str> {
    let container = |object| find_container(object, request.kind, &settings.container_name);
    let holds_credentials = container(kept)
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
    let (before, now) = (container(request.old_object), container(kept));
    CODE_FIELDS
        .into_iter()
        .filter(|field| before.and_then(|c| c.get(*field)) != now.and_then(|c| c.get(*field)))
        .collect()
}

/// What is kept still sends credentials somewhere: the endpoint entry the kept
/// `AWS_ENDPOINT_URL` names (often of another Secret than the one that could not be read) must
/// pass the endpoint rules too. When it cannot be read either, what is kept stays. The Secret
/// the review already read failed to read or passed the rules, so it is not asked for again.
fn kept_endpoint_refusal(
    kept: &Value,
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    looked_up: Option<&str>,
    cluster: &dyn Cluster,
) -> Option<Decision> {
    let reference = find_container(kept, request.kind, &settings.container_name)?
        .get("env")?
        .as_array()?
        .iter()
        .find(|entry| env::entry_name(entry) == Some(env::ENDPOINT_URL))?
        .pointer("/valueFrom/secretKeyRef")?;
    let name = reference.get("name")?.as_str()?;
    if looked_up == Some(name) {
        return None;
    }
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
