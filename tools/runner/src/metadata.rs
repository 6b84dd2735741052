//! Policy metadata: kwctl's validation of metadata.yml, and the `io.kubewarden.metadata`
//! custom section that kwctl, policy-server and this runner read.

use std::borrow::Cow;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
pub const USAGE_ANNOTATION: &str = "io.kubewarden.policy.usage";

const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];
const EXECUTION_MODES: [&str; 4] = ["kubewarden-wapc", "opa", "gatekeeper", "wasi"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContextAwareResource {
    pub api_version: String,
    pub kind: String,
}

/// What `run` needs from embedded metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedMetadata {
    #[serde(default)]
    pub mutating: bool,
    #[serde(default)]
    pub context_aware_resources: Vec<ContextAwareResource>,
}

fn string_list<'v>(
    rule: &'v Map<String, Value>,
    field: &str,
    index: usize,
) -> Result<Vec<&'v str>> {
    let items = rule
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("rules[{index}].{field} must be a list"))?;
    if items.is_empty() {
        bail!("rules[{index}].{field} must not be empty");
    }
    let strings = items
        .iter()
        .map(|item| {
            item.as_str()
                .ok_or_else(|| anyhow!("rules[{index}].{field} must hold strings"))
        })
        .collect::<Result<Vec<_>>>()?;
    if strings.contains(&"*") && strings.len() > 1 {
        bail!("rules[{index}].{field}: no other elements can be defined when '*' is used");
    }
    Ok(strings)
}

/// Checks metadata the way `kwctl annotate` does before embedding it.
pub fn validate(metadata: &Value) -> Result<()> {
    let root = metadata
        .as_object()
        .ok_or_else(|| anyhow!("metadata must be a mapping"))?;
    match root.get("mutating") {
        Some(Value::Bool(_)) => {}
        Some(_) => bail!("mutating must be a boolean"),
        None => bail!("mutating is required"),
    }
    let rules = root
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("rules is required and must be a list"))?;
    for (index, rule) in rules.iter().enumerate() {
        let rule = rule
            .as_object()
            .ok_or_else(|| anyhow!("rules[{index}] must be a mapping"))?;
        for field in ["apiGroups", "apiVersions"] {
            string_list(rule, field, index)?;
        }
        if string_list(rule, "resources", index)?.contains(&"") {
            bail!("rules[{index}].resources: empty resource is not allowed");
        }
        for operation in string_list(rule, "operations", index)? {
            if !OPERATIONS.contains(&operation) {
                bail!("rules[{index}].operations: unknown operation {operation:?}");
            }
        }
    }
    if let Some(mode) = root.get("executionMode") {
        let known = mode
            .as_str()
            .is_some_and(|mode| EXECUTION_MODES.contains(&mode));
        if !known {
            bail!("executionMode must be one of {EXECUTION_MODES:?}");
        }
    }
    if let Some(resources) = root.get("contextAwareResources") {
        let resources: Vec<ContextAwareResource> = serde_json::from_value(resources.clone())
            .map_err(|e| anyhow!("contextAwareResources: {e}"))?;
        if resources
            .iter()
            .any(|r| r.api_version.is_empty() || r.kind.is_empty())
        {
            bail!("contextAwareResources entries need a non-empty apiVersion and kind");
        }
    }
    for flag in ["backgroundAudit"] {
        if root.get(flag).is_some_and(|v| !v.is_boolean()) {
            bail!("{flag} must be a boolean");
        }
    }
    if let Some(annotations) = root.get("annotations") {
        let all_strings = annotations
            .as_object()
            .is_some_and(|map| map.values().all(Value::is_string));
        if !all_strings {
            bail!("annotations must map strings to strings");
        }
    }
    Ok(())
}

/// Fills in what `kwctl annotate` adds: the protocol version and the README as usage.
pub fn complete(
    mut metadata: Value,
    protocol_version: &str,
    usage: Option<String>,
) -> Result<Value> {
    let root = metadata
        .as_object_mut()
        .ok_or_else(|| anyhow!("metadata must be a mapping"))?;
    root.insert(
        "protocolVersion".into(),
        Value::String(protocol_version.into()),
    );
    if let Some(usage) = usage {
        let annotations = root
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(annotations) = annotations {
            annotations.insert(USAGE_ANNOTATION.into(), Value::String(usage));
        }
    }
    Ok(metadata)
}

/// The module with every metadata section replaced by one holding `metadata`.
pub fn embed(module: &[u8], metadata: &Value) -> Result<Vec<u8>> {
    let mut output = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let payload = payload?;
        if let wasmparser::Payload::CustomSection(reader) = &payload
            && reader.name() == METADATA_SECTION
        {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            let data = module
                .get(range)
                .ok_or_else(|| anyhow!("truncated module"))?;
            output.section(&wasm_encoder::RawSection { id, data });
        }
    }
    output.section(&wasm_encoder::CustomSection {
        name: Cow::Borrowed(METADATA_SECTION),
        data: Cow::Owned(serde_json::to_vec(metadata)?),
    });
    Ok(output.finish())
}

/// The embedded metadata JSON, if the module has been annotated (the first section wins).
pub fn read_embedded(module: &[u8]) -> Result<Option<Value>> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::CustomSection(reader) = payload?
            && reader.name() == METADATA_SECTION
        {
            return Ok(Some(serde_json::from_slice(reader.data())?));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "rules": [{"apiGroups": ["dittofs.dittofs.com"], "apiVersions": ["v1alpha1"],
                       "resources": ["dittoservers"], "operations": ["CREATE", "UPDATE"]}],
            "mutating": false,
            "contextAwareResources": [{"apiVersion": "v1", "kind": "Secret"}],
            "executionMode": "kubewarden-wapc",
            "annotations": {"io.kubewarden.policy.title": "t"},
        })
    }

    #[test]
    fn valid_metadata_passes() {
        validate(&valid()).unwrap();
    }

    #[test]
    fn invalid_metadata_is_refused() {
        type Breakage = fn(&mut Value);
        let cases: Vec<(Breakage, &str)> = vec![
            (
                |m| {
                    m.as_object_mut().unwrap().remove("mutating");
                },
                "mutating is required",
            ),
            (
                |m| m["mutating"] = json!("yes"),
                "mutating must be a boolean",
            ),
            (
                |m| {
                    m.as_object_mut().unwrap().remove("rules");
                },
                "rules is required",
            ),
            (
                |m| m["rules"][0]["apiGroups"] = json!([]),
                "apiGroups must not be empty",
            ),
            (
                |m| m["rules"][0]["apiVersions"] = json!(["*", "v1"]),
                "'*' is used",
            ),
            (
                |m| m["rules"][0]["operations"] = json!(["PATCH"]),
                "unknown operation",
            ),
            (
                |m| m["rules"][0]["resources"] = json!([""]),
                "empty resource",
            ),
            (
                |m| m["executionMode"] = json!("kubewarden"),
                "executionMode",
            ),
            (
                |m| m["contextAwareResources"] = json!([{"apiVersion": "v1", "Kind": "Secret"}]),
                "contextAwareResources",
            ),
            (
                |m| m["contextAwareResources"] = json!([{"apiVersion": "", "kind": "Secret"}]),
                "non-empty",
            ),
            (|m| m["annotations"] = json!({"a": 1}), "annotations"),
        ];
        for (mutate, expected) in cases {
            let mut metadata = valid();
            mutate(&mut metadata);
            let error = validate(&metadata).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    /// The smallest valid module: header only, plus one custom section to be replaced.
    fn tiny_module() -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        module.section(&wasm_encoder::CustomSection {
            name: METADATA_SECTION.into(),
            data: b"{\"old\":true}".as_slice().into(),
        });
        module.section(&wasm_encoder::CustomSection {
            name: "other".into(),
            data: b"keep".as_slice().into(),
        });
        module.finish()
    }

    #[test]
    fn embedding_replaces_old_metadata_and_keeps_other_sections() {
        let metadata = complete(valid(), "v1", Some("# usage".into())).unwrap();
        let annotated = embed(&tiny_module(), &metadata).unwrap();
        let read = read_embedded(&annotated).unwrap().unwrap();
        assert_eq!(read["protocolVersion"], "v1");
        assert_eq!(read["annotations"][USAGE_ANNOTATION], "# usage");
        let names: Vec<String> = wasmparser::Parser::new(0)
            .parse_all(&annotated)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::CustomSection(r) => Some(r.name().to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["other", METADATA_SECTION]);
        // Annotating twice gives the same bytes.
        assert_eq!(embed(&annotated, &metadata).unwrap(), annotated);
    }
}
