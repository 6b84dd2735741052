//! Reading the repository's YAML files as JSON values.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every document of a YAML file.
pub fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{relative}: {e}")))
        .filter(|document| !document.is_null())
        .collect()
}

pub fn yaml(relative: &str) -> Value {
    let mut documents = yaml_documents(relative);
    assert_eq!(documents.len(), 1, "{relative} should hold one document");
    documents.remove(0)
}

pub fn metadata() -> Value {
    yaml("metadata.yml")
}

pub fn annotation(metadata: &Value, key: &str) -> String {
    metadata["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("metadata lacks {key}"))
        .to_owned()
}
