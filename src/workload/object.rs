//! Raw-JSON plumbing on a workload object: finding the container and annotations, and recording
//! edits of them that touch no field this policy does not know (a typed round trip would drop
//! them).

use serde_json::Value;

use super::WorkloadKind;
use crate::decision::Decision;
use crate::edits::{Edits, Step};
use crate::value::At;

/// The named container of a workload, read-only; `None` also when the pod spec is malformed.
pub fn find_container<'v>(object: &'v Value, kind: WorkloadKind, name: &str) -> Option<&'v Value> {
    container_slot(object, kind, name)
        .ok()
        .flatten()
        .map(|(_, container)| container)
}

/// A pod annotation of a workload, read-only.
pub fn pod_annotation<'v>(object: &'v Value, kind: WorkloadKind, key: &str) -> Option<&'v str> {
    object
        .at(kind.pod_metadata_path())?
        .get("annotations")?
        .get(key)?
        .as_str()
}

/// `prefix` (a workload's constant path) followed by `rest`.
fn path_under(prefix: &[&str], rest: impl IntoIterator<Item = Step>) -> Vec<Step> {
    prefix.iter().map(|&key| key.into()).chain(rest).collect()
}

/// The path of a workload's container, by its index.
pub(super) fn container_path(kind: WorkloadKind, index: usize) -> Vec<Step> {
    path_under(kind.pod_spec_path(), ["containers".into(), index.into()])
}

/// The path of the env list of a workload's container, by the container's index.
pub(super) fn env_path(kind: WorkloadKind, index: usize) -> Vec<Step> {
    path_under(
        kind.pod_spec_path(),
        ["containers".into(), index.into(), "env".into()],
    )
}

/// The path of a pod annotation of a workload.
fn annotation_path(kind: WorkloadKind, key: &str) -> Vec<Step> {
    path_under(kind.pod_metadata_path(), ["annotations".into(), key.into()])
}

/// A container found in a workload: its index and the container, an object.
pub(super) type ContainerSlot<'v> = (usize, &'v Value);

/// The named container of a workload; `Err` names a malformed field.
pub(super) fn container_slot<'v>(
    object: &'v Value,
    kind: WorkloadKind,
    name: &str,
) -> Result<Option<ContainerSlot<'v>>, String> {
    let spec_path = kind.pod_spec_path();
    let mut spec = object;
    for (depth, key) in spec_path.iter().enumerate() {
        let parent = spec
            .as_object()
            .ok_or_else(|| spec_path.get(..depth).unwrap_or_default().join("."))?;
        spec = parent.get(*key).ok_or_else(|| spec_path.join("."))?;
    }
    let containers = spec
        .as_object()
        .ok_or_else(|| spec_path.join("."))?
        .get("containers")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}.containers", spec_path.join(".")))?;
    Ok(containers.iter().enumerate().find(|(_, container)| {
        container.is_object() && container.get("name").and_then(Value::as_str) == Some(name)
    }))
}

/// Records a pod annotation's new value, the metadata and annotation map created as needed;
/// `Err` names a malformed field.
pub(super) fn set_annotation(
    edits: &mut Edits,
    object: &Value,
    kind: WorkloadKind,
    key: &str,
    value: String,
) -> Result<(), String> {
    edits.set(object, annotation_path(kind, key), Value::String(value))
}

/// Records the removal of a pod annotation, when present.
pub(super) fn remove_annotation(edits: &mut Edits, object: &Value, kind: WorkloadKind, key: &str) {
    edits.remove(object, annotation_path(kind, key));
}

/// A mutation only when something changed, so an unchanged object costs no patch.
pub(super) fn finish(edits: Edits) -> Decision<Edits> {
    if edits.is_empty() {
        Decision::accept()
    } else {
        Decision::mutate(edits)
    }
}
