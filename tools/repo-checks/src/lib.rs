//! Test-only crate: see `tests/`. It checks files of the repository against each other and
//! against the real schemas they are written for (`schema`).

pub mod schema;

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// Every non-empty document of a YAML file, as JSON values.
pub fn yaml_documents_at(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|document| !document.is_null())
        .collect()
}
