//! Raw-JSON plumbing on a workload object: finding the container and annotations, and editing
//! them without touching fields this policy does not know (a typed round trip would drop them).

use serde_json::{Map, Value};

use super::WorkloadKind;
use crate::decision::Decision;
use crate::value::At;

/// The named container of a workload, read-only.
pub fn find_container<'v>(object: &'v Value, kind: WorkloadKind, name: &str) -> Option<&'v Value> {
    object
        .at(kind.pod_spec_path())?
        .get("containers")?
        .as_array()?
        .iter()
        .find(|container| container.get("name").and_then(Value::as_str) == Some(name))
}

/// A pod annotation of a workload, read-only.
pub fn pod_annotation<'v>(object: &'v Value, kind: WorkloadKind, key: &str) -> Option<&'v str> {
    object
        .at(kind.pod_metadata_path())?
        .get("annotations")?
        .get(key)?
        .as_str()
}

/// A dotted field path for messages.
pub(super) fn dotted(path: &[&str]) -> String {
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
pub(super) type ContainerSlot<'v> = (usize, &'v mut Map<String, Value>);

/// The named container of a workload; `Err` names a malformed field.
pub(super) fn container_mut<'v>(
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

/// Sets a pod annotation, creating the metadata and annotation map as needed; `Err` names a
/// malformed field.
pub(super) fn set_annotation(
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

/// Removes a pod annotation when present; whether it was.
pub(super) fn remove_annotation(object: &mut Value, kind: WorkloadKind, key: &str) -> bool {
    object
        .at_mut(kind.pod_metadata_path())
        .and_then(|metadata| metadata.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .is_some_and(|annotations| annotations.remove(key).is_some())
}

/// A mutation only when something changed, so an unchanged object costs no patch.
pub(super) fn finish(original: &Value, mutated: Value) -> Decision {
    if &mutated == original {
        Decision::accept()
    } else {
        Decision::mutate(mutated)
    }
}
