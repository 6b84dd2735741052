//! Translates the deploy kit's policies into the `policies.yml` that policy-server reads, the way
//! Kubewarden's controller writes it into the PolicyServer's ConfigMap (policy-server 1.35):
//!
//!     kit-policies DEPLOY_DIR MODULE_URL [SETTINGS_JSON]
//!
//! One entry per ClusterAdmissionPolicy (or AdmissionPolicy) found in DEPLOY_DIR/*.yaml, keyed by
//! the controller's unique name (`clusterwide-<name>`, `namespaced-<namespace>-<name>`), with the
//! controller's fields: `namespacedName`, `module`, `policyMode`, `allowedToMutate`,
//! `contextAwareResources`, `settings`, `timeoutEvalSeconds` and `hostCapabilities` (`["*"]`:
//! the controller grants every host capability to cluster-wide policies, and to namespaced ones
//! when the PolicyServer does not restrict them). Only `module` differs from the cluster: the
//! kit's `registry://` reference is replaced by MODULE_URL (`file:///…`), the module under test,
//! as a registry mirror would. SETTINGS_JSON, when given, is merged into every policy's settings
//! (a test's extra settings, on top of the kit's). Prints the JSON (YAML's subset) on stdout.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

fn documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Documents are separated by `---` lines, as in the kit.
    let mut values = Vec::new();
    for document in text.split("\n---\n") {
        let value: serde_yaml::Value = serde_yaml::from_str(document)
            .with_context(|| format!("{} is not YAML", path.display()))?;
        if !value.is_null() {
            values.push(serde_json::to_value(value)?);
        }
    }
    Ok(values)
}

/// The controller's entry for one policy (internal/controller/policyserver_controller_configmap.go).
fn entry(policy: &Value, module: &str, overlay: &Map<String, Value>) -> Result<(String, Value)> {
    let metadata = &policy["metadata"];
    let spec = &policy["spec"];
    let name = metadata["name"]
        .as_str()
        .context("a policy without metadata.name")?;
    let namespace = metadata["namespace"].as_str().unwrap_or_default();
    let (unique_name, namespace) = match policy["kind"].as_str() {
        Some("ClusterAdmissionPolicy") => (format!("clusterwide-{name}"), ""),
        Some("AdmissionPolicy") => (format!("namespaced-{namespace}-{name}"), namespace),
        other => bail!("not a policy kind: {other:?}"),
    };
    let settings = match (&spec["settings"], overlay.is_empty()) {
        (settings, true) => settings.clone(),
        (Value::Object(settings), false) => {
            let mut merged = settings.clone();
            merged.extend(overlay.clone());
            Value::Object(merged)
        }
        (_, false) => Value::Object(overlay.clone()),
    };
    let mut entry = Map::new();
    entry.insert(
        "namespacedName".to_owned(),
        json!({"Namespace": namespace, "Name": name}),
    );
    entry.insert("module".to_owned(), json!(module));
    entry.insert(
        "policyMode".to_owned(),
        json!(spec["mode"].as_str().unwrap_or("protect")),
    );
    entry.insert(
        "allowedToMutate".to_owned(),
        json!(spec["mutating"].as_bool().unwrap_or(false)),
    );
    if let Some(resources) = spec["contextAwareResources"]
        .as_array()
        .filter(|r| !r.is_empty())
    {
        entry.insert("contextAwareResources".to_owned(), json!(resources));
    }
    entry.insert("settings".to_owned(), settings);
    if let Some(message) = spec["message"].as_str().filter(|m| !m.is_empty()) {
        entry.insert("message".to_owned(), json!(message));
    }
    if let Some(timeout) = spec["timeoutEvalSeconds"].as_i64() {
        entry.insert("timeoutEvalSeconds".to_owned(), json!(timeout));
    }
    entry.insert("hostCapabilities".to_owned(), json!(["*"]));
    Ok((unique_name, Value::Object(entry)))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, module, overlay) = match args.as_slice() {
        [dir, module] => (dir, module, Map::new()),
        [dir, module, settings] => match serde_json::from_str(settings)? {
            Value::Object(overlay) => (dir, module, overlay),
            _ => bail!("SETTINGS_JSON must be a JSON object"),
        },
        _ => bail!("usage: kit-policies DEPLOY_DIR MODULE_URL [SETTINGS_JSON]"),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {dir}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut policies = Map::new();
    for file in &files {
        for document in documents(file)? {
            if matches!(
                document["kind"].as_str(),
                Some("ClusterAdmissionPolicy" | "AdmissionPolicy")
            ) {
                let (name, entry) = entry(&document, module, &overlay)
                    .with_context(|| format!("in {}", file.display()))?;
                policies.insert(name, entry);
            }
        }
    }
    if policies.is_empty() {
        bail!("no ClusterAdmissionPolicy or AdmissionPolicy in {dir}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(policies))?
    );
    Ok(())
}
