//! DittoFS workloads (Pods and StatefulSet pod templates): which ones belong to a DittoServer,
//! what their `dittofs` container and hash annotation should hold, and injecting it.
//!
//! Split by job: `object` reads and edits the raw workload JSON, `lookup` reads the owner and
//! its Secret, `inject` writes, `restore` keeps what a failed lookup cannot vouch for,
//! `verify` only checks, and `routes` finds definitions that send the credentials elsewhere.

pub mod env;
mod inject;
mod lookup;
mod object;
pub mod ownership;
mod restore;
pub mod routes;
mod verify;

use serde_json::{Map, Value};

use crate::cluster::{DITTOSERVER_API_VERSION, DITTOSERVER_KIND};
use crate::naming;
use crate::settings::Settings;
use crate::value::At;
use ownership::Ownership;

pub use inject::inject;
pub use lookup::{SecretProblem, read_credentials};
pub use object::{find_container, pod_annotation};
pub use verify::verify;

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
}

/// The DittoServer a workload belongs to, or `None` for anything that is not DittoFS.
/// StatefulSets by their controller ownerReference, Pods by the operator's labels.
pub fn owning_dittoserver(kind: WorkloadKind, object: &Value) -> Option<&str> {
    owning_dittoserver_by_metadata(kind, object.get("metadata")?)
}

/// `owning_dittoserver`, from the object's metadata alone.
pub fn owning_dittoserver_by_metadata(kind: WorkloadKind, metadata: &Value) -> Option<&str> {
    match kind {
        WorkloadKind::Pod => {
            let labels = metadata.get("labels")?;
            let app = labels.get(APP_LABEL.0).and_then(Value::as_str);
            let instance = labels.get(INSTANCE_LABEL).and_then(Value::as_str);
            instance.filter(|name| app == Some(APP_LABEL.1) && !name.is_empty())
        }
        WorkloadKind::StatefulSet => metadata
            .get("ownerReferences")?
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
        object
            .at(self.kind.pod_metadata_path())?
            .get("annotations")?
            .as_object()
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

    /// Whether the object already carries what the policy writes (a Pod from an injected
    /// template).
    fn carries_injection(&self, settings: &Settings) -> bool {
        !matches!(self.ownership(settings), Ownership::None)
    }
}

#[cfg(test)]
mod tests;
