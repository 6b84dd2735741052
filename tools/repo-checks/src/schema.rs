//! A strict checker for the OpenAPI v3 structural schemas of CustomResourceDefinitions, as the
//! API server and `kubectl apply --validate=strict` apply them to a manifest: types (with
//! `nullable`, `x-kubernetes-int-or-string` and `format: int32/int64`), enums, required fields,
//! unknown fields (rejected unless `x-kubernetes-preserve-unknown-fields` or
//! `additionalProperties`), patterns, lengths, item counts and numeric bounds.
//!
//! Stricter than the API server in one place: a `null` where the schema is not `nullable` is an
//! error (the API server would prune it silently, which is never what a manifest meant).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The served versions of one CRD, by `apiVersion` (`group/version`).
pub struct Crd {
    pub kind: String,
    pub namespaced: bool,
    pub schemas: BTreeMap<String, Value>,
}

/// Every CRD in the YAML files of `dir`, by kind.
pub fn load_crds(dir: &Path) -> BTreeMap<String, Crd> {
    let mut crds = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    entries.sort();
    for path in entries {
        for document in crate::yaml_documents_at(&path) {
            if document["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let spec = &document["spec"];
            let group = spec["group"].as_str().expect("group");
            let kind = spec["names"]["kind"].as_str().expect("kind").to_owned();
            let mut schemas = BTreeMap::new();
            for version in spec["versions"].as_array().expect("versions") {
                if version["served"] != Value::Bool(true) {
                    continue;
                }
                let name = version["name"].as_str().expect("version name");
                schemas.insert(
                    format!("{group}/{name}"),
                    version["schema"]["openAPIV3Schema"].clone(),
                );
            }
            let namespaced = spec["scope"] == "Namespaced";
            crds.insert(
                kind.clone(),
                Crd {
                    kind,
                    namespaced,
                    schemas,
                },
            );
        }
    }
    crds
}

/// Every violation of `crd`'s schema in `object`, as `path: problem` lines; empty when valid.
pub fn validate_custom_resource(crd: &Crd, object: &Value) -> Vec<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let Some(schema) = crd.schemas.get(api_version) else {
        return vec![format!(
            "apiVersion: {api_version:?} is not a served version of {} (served: {:?})",
            crd.kind,
            crd.schemas.keys().collect::<Vec<_>>()
        )];
    };
    let mut errors = Vec::new();
    check_metadata(&object["metadata"], crd.namespaced, &mut errors);
    // The root schema's `metadata` is `type: object` with no properties: ObjectMeta is checked
    // above, as the API server does separately.
    let mut root = object.clone();
    if let Some(map) = root.as_object_mut() {
        map.remove("metadata");
    }
    let mut root_schema = schema.clone();
    if let Some(properties) = root_schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        properties.remove("metadata");
    }
    validate(&root_schema, &root, "", &mut errors);
    errors
}

/// The parts of ObjectMeta a manifest sets: a name, labels and annotations as string maps, and
/// a namespace only where the kind has one.
pub fn check_metadata(metadata: &Value, namespaced: bool, errors: &mut Vec<String>) {
    let Some(map) = metadata.as_object() else {
        errors.push("metadata: must be an object".to_owned());
        return;
    };
    match map.get("name").and_then(Value::as_str) {
        Some(name) if is_dns_subdomain(name) => {}
        Some(name) => errors.push(format!(
            "metadata.name: {name:?} is not a DNS-1123 subdomain"
        )),
        None => errors.push("metadata.name: required".to_owned()),
    }
    if let Some(namespace) = map.get("namespace") {
        if !namespaced {
            errors.push("metadata.namespace: set on a cluster-scoped kind".to_owned());
        } else if !namespace.as_str().is_some_and(is_dns_label) {
            errors.push(format!(
                "metadata.namespace: {namespace} is not a DNS-1123 label"
            ));
        }
    }
    for field in ["labels", "annotations"] {
        if let Some(entries) = map.get(field) {
            let all_strings = entries
                .as_object()
                .is_some_and(|entries| entries.values().all(Value::is_string));
            if !all_strings {
                errors.push(format!("metadata.{field}: must map strings to strings"));
            }
        }
    }
    for key in map.keys() {
        if ![
            "name",
            "namespace",
            "labels",
            "annotations",
            "generateName",
            "finalizers",
        ]
        .contains(&key.as_str())
        {
            errors.push(format!("metadata.{key}: not a field a manifest sets"));
        }
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`, appending `path: problem` lines to `errors`.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let shown = if path.is_empty() { "<root>" } else { path };
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errors.push(format!("{shown}: null, and the schema is not nullable"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !(value.is_string() || type_name(value) == "integer") {
            errors.push(format!(
                "{shown}: must be an integer or a string, not {}",
                type_name(value)
            ));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str() {
        let actual = type_name(value);
        let matches = actual == expected || (expected == "number" && actual == "integer");
        if !matches {
            errors.push(format!("{shown}: must be {expected}, not {actual}"));
            return;
        }
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        errors.push(format!(
            "{shown}: {value} is not one of {}",
            Value::from(options.clone())
        ));
    }
    match value {
        Value::Object(map) => validate_object(schema, map, path, errors),
        Value::Array(items) => {
            check_bound(schema, "minItems", items.len(), shown, errors, |n, b| {
                n >= b
            });
            check_bound(schema, "maxItems", items.len(), shown, errors, |n, b| {
                n <= b
            });
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{index}]"), errors);
                }
            }
        }
        Value::String(text) => {
            let length = text.chars().count();
            check_bound(schema, "minLength", length, shown, errors, |n, b| n >= b);
            check_bound(schema, "maxLength", length, shown, errors, |n, b| n <= b);
            if let Some(pattern) = schema["pattern"].as_str() {
                let regex = regex::Regex::new(pattern)
                    .unwrap_or_else(|e| panic!("schema pattern {pattern:?}: {e}"));
                if !regex.is_match(text) {
                    errors.push(format!("{shown}: {text:?} does not match {pattern}"));
                }
            }
        }
        Value::Number(number) => {
            if let Some(minimum) = schema["minimum"].as_f64()
                && number.as_f64().is_some_and(|n| n < minimum)
            {
                errors.push(format!("{shown}: {number} is below the minimum {minimum}"));
            }
            if let Some(maximum) = schema["maximum"].as_f64()
                && number.as_f64().is_some_and(|n| n > maximum)
            {
                errors.push(format!("{shown}: {number} is above the maximum {maximum}"));
            }
            let range = match schema["format"].as_str() {
                Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
                Some("int64") => Some((i64::MIN, i64::MAX)),
                _ => None,
            };
            if let Some((low, high)) = range
                && !number.as_i64().is_some_and(|n| (low..=high).contains(&n))
            {
                errors.push(format!(
                    "{shown}: {number} is out of the {} range",
                    schema["format"]
                ));
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn check_bound(
    schema: &Value,
    keyword: &str,
    actual: usize,
    shown: &str,
    errors: &mut Vec<String>,
    holds: fn(u64, u64) -> bool,
) {
    if let Some(bound) = schema[keyword].as_u64()
        && !holds(actual as u64, bound)
    {
        errors.push(format!("{shown}: {actual} breaks {keyword} {bound}"));
    }
}

fn validate_object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    if let Some(required) = schema["required"].as_array() {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                errors.push(format!("{}: required", at(path, field)));
            }
        }
    }
    let properties = schema["properties"].as_object();
    let preserve_unknown = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
    for (key, value) in map {
        let child = at(path, key);
        if let Some(property) = properties.and_then(|properties| properties.get(key)) {
            validate(property, value, &child, errors);
        } else if let Some(additional) = schema.get("additionalProperties") {
            match additional {
                Value::Bool(false) => errors.push(format!("{child}: unknown field")),
                Value::Bool(true) => {}
                additional => validate(additional, value, &child, errors),
            }
        } else if !preserve_unknown {
            errors.push(format!("{child}: unknown field"));
        }
    }
    check_bound(schema, "minProperties", map.len(), path, errors, |n, b| {
        n >= b
    });
    check_bound(schema, "maxProperties", map.len(), path, errors, |n, b| {
        n <= b
    });
}
