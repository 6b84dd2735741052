//! DittoFS workloads (Pods and StatefulSet pod templates): which ones belong to a DittoServer,
//! what their `dittofs` container and hash annotation should hold, and injecting it.

pub mod env;
pub mod ownership;

use serde_json::{Map, Value};

use crate::cluster::{Cluster, DITTOSERVER_API_VERSION, DITTOSERVER_KIND, LookupError, ObjectRef};
use crate::credentials::{ConsumedCredentials, SecretData, consumed_fields, endpoint_finding};
use crate::decision::Decision;
use crate::dittoserver::{CredentialsRef, parse_s3};
use crate::naming;
use crate::settings::{OnEnvConflict, Settings};
use ownership::{InjectionRecord, Ownership, RECORD_ANNOTATION};

/// Labels the operator puts on DittoFS pods.
const APP_LABEL: (&str, &str) = ("app", "dittofs-server");
const INSTANCE_LABEL: &str = "instance";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Pod,
    StatefulSet,
}

impl WorkloadKind {
    fn name(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::StatefulSet => "StatefulSet",
        }
    }

    /// Where the pod spec lives in the object.
    fn pod_spec_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["spec"],
            Self::StatefulSet => &["spec", "template", "spec"],
        }
    }

    /// Where the pod metadata (and so the hash annotation) lives in the object.
    fn pod_metadata_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["metadata"],
            Self::StatefulSet => &["spec", "template", "metadata"],
        }
    }

    fn containers_pointer(self) -> &'static str {
        match self {
            Self::Pod => "/spec/containers",
            Self::StatefulSet => "/spec/template/spec/containers",
        }
    }

    fn annotations_pointer(self) -> &'static str {
        match self {
            Self::Pod => "/metadata/annotations",
            Self::StatefulSet => "/spec/template/metadata/annotations",
        }
    }
}

/// The named container of a workload, read-only.
pub fn find_container<'v>(object: &'v Value, kind: WorkloadKind, name: &str) -> Option<&'v Value> {
    object
        .pointer(kind.containers_pointer())?
        .as_array()?
        .iter()
        .find(|container| container.get("name").and_then(Value::as_str) == Some(name))
}

/// A pod annotation of a workload, read-only.
pub fn pod_annotation<'v>(object: &'v Value, kind: WorkloadKind, key: &str) -> Option<&'v str> {
    object
        .pointer(kind.annotations_pointer())?
        .get(key)?
        .as_str()
}

/// The DittoServer a workload belongs to, or `None` for anything that is not DittoFS.
/// StatefulSets by their controller ownerReference, Pods by the operator's labels.
pub fn owning_dittoserver(kind: WorkloadKind, object: &Value) -> Option<&str> {
    match kind {
        WorkloadKind::Pod => {
            let labels = object.pointer("/metadata/labels")?;
            let app = labels.get(APP_LABEL.0).and_then(Value::as_str);
            let instance = labels.get(INSTANCE_LABEL).and_then(Value::as_str);
            instance.filter(|name| app == Some(APP_LABEL.1) && !name.is_empty())
        }
        WorkloadKind::StatefulSet => object
            .pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|owner| {
                owner.get("controller").and_then(Value::as_bool) == Some(true)
                    && owner.get("apiVersion").and_then(Value::as_str)
                        == Some(DITTOSERVER_API_VERSION)
                    && owner.get("kind").and_then(Value::as_str) == Some(DITTOSERVER_KIND)
            })?
            .get("name")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty()),
    }
}

/// A dotted field path for messages.
fn dotted(path: &[&str]) -> String {
    path.join(".")
}

/// Walks `path` through objects, creating missing ones when `create`; `Err` names the field
/// that is not an object.
fn object_at<'v>(
    value: &'v mut Value,
    path: &[&str],
    create: bool,
) -> Result<Option<&'v mut Map<String, Value>>, String> {
    let mut current = value;
    for (depth, key) in path.iter().enumerate() {
        let map = current
            .as_object_mut()
            .ok_or_else(|| dotted(path.get(..depth).unwrap_or_default()))?;
        if !map.contains_key(*key) {
            if !create {
                return Ok(None);
            }
            map.insert((*key).to_owned(), Value::Object(Map::new()));
        }
        current = map.get_mut(*key).ok_or_else(|| dotted(path))?;
        if current.is_null() && create {
            *current = Value::Object(Map::new());
        }
    }
    current
        .as_object_mut()
        .map(Some)
        .ok_or_else(|| dotted(path))
}

/// A container found in a workload: its index and its fields.
type ContainerSlot<'v> = (usize, &'v mut Map<String, Value>);

/// The named container of a workload; `Err` names a malformed field.
fn container_mut<'v>(
    object: &'v mut Value,
    kind: WorkloadKind,
    name: &str,
) -> Result<Option<ContainerSlot<'v>>, String> {
    let spec_path = kind.pod_spec_path();
    let field = format!("{}.containers", dotted(spec_path));
    let Some(spec) = object_at(object, spec_path, false)? else {
        return Err(dotted(spec_path));
    };
    let containers = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| field.clone())?;
    for (index, container) in containers.iter_mut().enumerate() {
        if container.get("name").and_then(Value::as_str) == Some(name) {
            return container
                .as_object_mut()
                .map(|c| Some((index, c)))
                .ok_or(format!("{field}[{index}]"));
        }
    }
    Ok(None)
}

/// The request as the workload review needs it.
pub struct WorkloadRequest<'a> {
    pub kind: WorkloadKind,
    pub operation: &'a str,
    pub namespace: &'a str,
    pub object: &'a Value,
    pub old_object: &'a Value,
}

impl WorkloadRequest<'_> {
    fn is_update(&self) -> bool {
        self.operation == "UPDATE"
    }

    fn describe(&self) -> String {
        naming::describe(self.kind.name(), self.object)
    }

    fn pod_annotations<'v>(&self, object: &'v Value) -> Option<&'v Map<String, Value>> {
        object.pointer(self.kind.annotations_pointer())?.as_object()
    }

    /// What the policy wrote before: the object's record, else (on UPDATE) the previous
    /// revision's, since the operator replaces the template's annotations on reconcile.
    fn ownership(&self, settings: &Settings) -> Ownership {
        let previous = self
            .is_update()
            .then(|| self.pod_annotations(self.old_object))
            .flatten();
        Ownership::of(
            &[self.pod_annotations(self.object), previous],
            &settings.hash_annotation,
        )
    }
}

/// The owning DittoServer's credentials, or why they cannot be known.
enum Owner {
    NoCredentials,
    /// The credentials reference and the effective region.
    Credentials(CredentialsRef, String),
    Unreadable(String),
}

fn read_owner(owner: ObjectRef<'_>, cluster: &dyn Cluster) -> Owner {
    // Of its owner a workload review reads spec.s3 only.
    match cluster.get(owner, &["spec.s3".to_owned()]) {
        Err(LookupError::NotFound) => Owner::Unreadable(format!("{owner} was not found")),
        Err(error) => Owner::Unreadable(format!("cannot read {owner}: {error}")),
        // The host answered with something else (a proxy's page, another kind): unreadable, so
        // a template is kept rather than stripped of its credentials.
        Ok(other)
            if other
                .get("kind")
                .is_some_and(|kind| kind != DITTOSERVER_KIND) =>
        {
            Owner::Unreadable(format!(
                "cannot read {owner}: the lookup answered with another kind"
            ))
        }
        Ok(ditto) => match parse_s3(&ditto) {
            Err(violations) => {
                let details: Vec<String> = violations.iter().map(ToString::to_string).collect();
                Owner::Unreadable(format!(
                    "{owner} has an invalid spec.s3 ({})",
                    details.join("; ")
                ))
            }
            Ok(Some(spec)) => match spec.credentials {
                Some(credentials) => Owner::Credentials(credentials, spec.region),
                None => Owner::NoCredentials,
            },
            Ok(None) => Owner::NoCredentials,
        },
    }
}

/// Why the consumed credentials cannot be used.
pub enum SecretProblem {
    /// The lookup failed, or the Secret is missing or incomplete.
    Unavailable {
        reason: String,
        /// The Secret is missing or lacks a required entry: the container cannot start.
        blocks_start: bool,
    },
    /// The endpoint entry breaks the endpoint rules: credentials must not be sent there.
    Endpoint(String),
}

/// Reads the Secret as the container will: the endpoint entry must pass the endpoint rules,
/// and the hash covers the consumed entries only.
pub fn read_credentials(
    credentials: &CredentialsRef,
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Result<String, SecretProblem> {
    let secret_ref = ObjectRef::secret(namespace, &credentials.secret_name);
    let unavailable = |reason: String, blocks_start: bool| SecretProblem::Unavailable {
        reason,
        blocks_start,
    };
    let secret = match cluster.get(secret_ref, &consumed_fields(&credentials.keys)) {
        Ok(secret) => secret,
        Err(LookupError::NotFound) => {
            return Err(unavailable(format!("{secret_ref} was not found"), true));
        }
        Err(error) => {
            return Err(unavailable(
                format!("cannot read {secret_ref}: {error}"),
                false,
            ));
        }
    };
    let data = SecretData::from_object(&secret)
        .map_err(|problem| unavailable(format!("cannot read {secret_ref}: {problem}"), false))?;
    if let Some(finding) = endpoint_finding(&data, &credentials.keys.endpoint, settings) {
        return Err(SecretProblem::Endpoint(format!(
            "{secret_ref}: {}",
            finding.message
        )));
    }
    ConsumedCredentials::read(&data, &credentials.keys)
        .map(|consumed| consumed.hash())
        .map_err(|problems| {
            let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
            unavailable(
                format!("{secret_ref} is incomplete: {}", details.join("; ")),
                true,
            )
        })
}

/// Decides on a Pod CREATE or a StatefulSet CREATE/UPDATE in `inject` mode.
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
    let owner = ObjectRef::ditto_server(request.namespace, owner_name);
    let (credentials, region) = match read_owner(owner, cluster) {
        Owner::NoCredentials => return Decision::accept(),
        Owner::Unreadable(reason) => {
            return keep_as_it_was(request, settings, &reason, None, cluster);
        }
        Owner::Credentials(credentials, region) => (credentials, region),
    };
    let hash = match read_credentials(&credentials, request.namespace, settings, cluster) {
        Ok(hash) => Some(hash),
        Err(SecretProblem::Endpoint(finding)) => return endpoint_refusal(request, &finding),
        Err(SecretProblem::Unavailable { reason, .. }) => {
            if request.is_update() || carries_injection(request, settings) {
                let looked_up = Some(credentials.secret_name.as_str());
                return keep_as_it_was(request, settings, &reason, looked_up, cluster);
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

/// Whether the object already carries what the policy writes (a Pod from an injected template).
fn carries_injection(request: &WorkloadRequest<'_>, settings: &Settings) -> bool {
    !matches!(request.ownership(settings), Ownership::None)
}

/// A lookup failed: nothing the policy wrote may change, or pods would roll onto credentials
/// nobody could check. On UPDATE the previous revision's entries and annotations come back;
/// on CREATE the object stays as it came.
/// `looked_up` names the Secret this review already read (or failed to): not asked for again.
fn keep_as_it_was(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    reason: &str,
    looked_up: Option<&str>,
    cluster: &dyn Cluster,
) -> Decision {
    let what = request.describe();
    let checked = |kept: &Value| kept_endpoint_refusal(kept, request, settings, looked_up, cluster);
    if !request.is_update() {
        if let Some(refusal) = checked(request.object) {
            return refusal;
        }
        let consequence = if carries_injection(request, settings) {
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
    for key in [settings.hash_annotation.as_str(), RECORD_ANNOTATION] {
        if let Some(value) = pod_annotation(request.old_object, request.kind, key)
            && set_annotation(&mut object, request.kind, key, value.to_owned()).is_err()
        {
            return Decision::accept().with_warnings(vec![format!(
                "S3 credentials of {what} left as they came: {reason}"
            )]);
        }
    }
    if let Some(refusal) = checked(&object) {
        return refusal;
    }
    finish(request.object, object).with_warnings(vec![format!(
        "kept the S3 env and hash of the previous revision of {what}: {reason}"
    )])
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

fn endpoint_refusal(request: &WorkloadRequest<'_>, finding: &str) -> Decision {
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

fn set_annotation(
    object: &mut Value,
    kind: WorkloadKind,
    key: &str,
    value: String,
) -> Result<(), String> {
    let metadata_path = kind.pod_metadata_path();
    let metadata = object_at(object, metadata_path, true)?.ok_or_else(|| dotted(metadata_path))?;
    let slot = metadata.entry("annotations").or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    let annotations = slot
        .as_object_mut()
        .ok_or_else(|| format!("{}.annotations", dotted(metadata_path)))?;
    if annotations.get(key).and_then(Value::as_str) != Some(value.as_str()) {
        annotations.insert(key.to_owned(), Value::String(value));
    }
    Ok(())
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

/// A mutation only when something changed.
fn finish(original: &Value, mutated: Value) -> Decision {
    if &mutated == original {
        Decision::accept()
    } else {
        Decision::mutate(mutated)
    }
}

/// Decides on a Pod or StatefulSet in `verify` mode: never mutates; rejects a DittoFS workload
/// whose env or hash differs from what injection would produce now, or whose Secret names an
/// endpoint that breaks the endpoint rules.
pub fn verify(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    let Some(owner_name) = owning_dittoserver(request.kind, request.object) else {
        return Decision::accept();
    };
    let what = request.describe();
    let owner = ObjectRef::ditto_server(request.namespace, owner_name);
    let (credentials, region) = match read_owner(owner, cluster) {
        Owner::NoCredentials => return Decision::accept(),
        // An orphan or a transient failure must not flap audit reports.
        Owner::Unreadable(reason) => {
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
    let statefulset = match request.kind {
        WorkloadKind::StatefulSet => request
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(owner_name),
        // The operator names the StatefulSet after its DittoServer.
        WorkloadKind::Pod => owner_name,
    };
    Decision::reject(format!(
        "{what}: {}; roll it with: kubectl rollout restart statefulset/{statefulset} -n {}",
        stale.join("; "),
        request.namespace
    ))
    .with_warnings(warnings)
}

#[cfg(test)]
mod tests;
