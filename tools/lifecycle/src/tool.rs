//! Runs one admission request through a kwctl-compatible tool (the real kwctl or our runner),
//! with the lookups it may make replayed from a session file written for that request.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

/// One host call the policy may make, and what the cluster answers.
pub enum Lookup {
    /// `kubernetes/get_resource`: the object, or the host's error text.
    Get {
        api_version: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        /// The field masks the policy sends, sorted.
        fields: &'static [&'static str],
        answer: Result<Value, String>,
    },
    /// `kubernetes/can_i` for `get` on a Secret: the SubjectAccessReview status, or an error text.
    MayGetSecret {
        user: String,
        /// Sorted, as the policy sends them.
        groups: Vec<String>,
        namespace: String,
        name: String,
        answer: Result<Value, String>,
    },
    /// `kubernetes/list_resources_by_namespace`: the objects of the collection, whole (the
    /// host prunes them to the masks).
    List {
        api_version: &'static str,
        kind: &'static str,
        namespace: String,
        /// The field masks the policy sends, sorted.
        fields: &'static [&'static str],
        items: Vec<Value>,
    },
}

/// What the tool answered.
pub struct Outcome {
    pub allowed: bool,
    pub message: String,
    pub warnings: Vec<String>,
    /// The request's object with the response's JSON Patch applied, when there was one.
    pub patched: Option<Value>,
    /// Everything the tool printed, for the leak check and for failure reports.
    pub printed: String,
}

impl Outcome {
    /// Reads an AdmissionResponse (kwctl's line, or an AdmissionReview's `response`), applying
    /// its patch to the request's object.
    pub fn from_response(request: &Value, response: &Value, printed: String) -> Result<Self> {
        let patched = match response.get("patch").and_then(Value::as_str) {
            None => None,
            Some(encoded) => Some(apply(request, encoded)?),
        };
        Ok(Self {
            allowed: response["allowed"] == json!(true),
            message: response["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            warnings: response["warnings"]
                .as_array()
                .map(|w| {
                    w.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            patched,
            printed,
        })
    }
}

/// An empty Sigstore trust configuration, in the repository's test data.
const OFFLINE_TRUST_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test_data/sigstore-offline-trust-config.json"
);

pub struct Tool {
    program: PathBuf,
    module: PathBuf,
    workdir: PathBuf,
    runs: usize,
}

impl Tool {
    pub fn new(program: PathBuf, module: PathBuf, workdir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        Ok(Self {
            program,
            module,
            workdir,
            runs: 0,
        })
    }

    /// Evaluates `request` (a bare AdmissionRequest) with `settings`, answering `lookups` in order.
    pub fn evaluate(
        &mut self,
        request: &Value,
        lookups: &[Lookup],
        settings: &Value,
    ) -> Result<Outcome> {
        self.runs += 1;
        let request_path = self.workdir.join(format!("request-{:02}.json", self.runs));
        let session_path = self.workdir.join(format!("session-{:02}.yml", self.runs));
        std::fs::write(&request_path, serde_json::to_vec_pretty(request)?)?;
        std::fs::write(&session_path, session(lookups)?)?;
        let mut command = Command::new(&self.program);
        command.arg("run");
        if self.program.file_name().is_some_and(|name| name == "kwctl") {
            // kwctl fetches Sigstore's trust root at every start (about 1 s of retries offline);
            // a local module is never verified, so it gets an empty one. The runner fetches none.
            command
                .arg("--sigstore-trust-config")
                .arg(OFFLINE_TRUST_CONFIG);
        }
        let output = command
            .arg("--request-path")
            .arg(&request_path)
            .arg("--settings-json")
            .arg(settings.to_string())
            .arg("--allow-context-aware")
            .arg("--replay-host-capabilities-interactions")
            .arg(&session_path)
            .arg(&self.module)
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            bail!(
                "{} exited with {}: {stderr}",
                self.program.display(),
                output.status
            );
        }
        let line = stdout.lines().last().ok_or_else(|| anyhow!("no output"))?;
        let response: Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        Outcome::from_response(
            request,
            &response,
            format!("{stdout}\n{}", policy_lines(&stderr)),
        )
    }
}

/// The stderr lines that carry the policy's own log events (kwctl prints them with the
/// policy_log span; the runner the same word), not the host's diagnostics, which list the
/// session's unreplayed payloads.
fn policy_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| line.contains("policy_log"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn apply(request: &Value, encoded: &str) -> Result<Value> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded)?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes)?;
    let mut object = request["object"].clone();
    json_patch::patch(&mut object, &patch)?;
    Ok(object)
}

/// A replay session in kwctl's format.
fn session(lookups: &[Lookup]) -> Result<String> {
    let exchanges: Vec<Value> = lookups
        .iter()
        .map(|lookup| {
            let (request, answer) = match lookup {
                Lookup::Get { api_version, kind, namespace, name, fields, answer } => {
                    let masks: String = fields.iter().map(|field| format!("- {field}\n")).collect();
                    // The policy reads the owning DittoServer past the host's cache.
                    let fresh = *kind == "DittoServer";
                    (
                        format!(
                            "!KubernetesGetResource\napi_version: {api_version}\nkind: {kind}\nname: {name}\nnamespace: {namespace}\ndisable_cache: {fresh}\nfield_masks:\n{masks}"
                        ),
                        answer,
                    )
                }
                Lookup::List { api_version, kind, namespace, fields, items } => {
                    let masks: String = fields.iter().map(|field| format!("- {field}\n")).collect();
                    let listed = listed(api_version, kind, fields, items);
                    return json!({"type": "Exchange",
                        "request": format!(
                            "!KubernetesListResourceNamespace\napi_version: {api_version}\nkind: {kind}\nnamespace: {namespace}\nlabel_selector: null\nfield_selector: null\nfield_masks:\n{masks}"
                        ),
                        "response": {"type": "Success", "payload": listed.to_string()}});
                }
                Lookup::MayGetSecret { user, groups, namespace, name, answer } => {
                    let groups: String = groups.iter().map(|group| format!("  - {group}\n")).collect();
                    (
                        format!(
                            "!KubernetesCanI\nrequest:\n  groups:\n{groups}  resource_attributes:\n    group: ''\n    name: {name}\n    namespace: {namespace}\n    resource: secrets\n    subresource: null\n    verb: get\n    version: v1\n  user: {user}\ndisable_cache: false\n"
                        ),
                        answer,
                    )
                }
            };
            let response = match answer {
                Ok(object) => json!({"type": "Success", "payload": object.to_string()}),
                Err(message) => json!({"type": "Error", "message": message}),
            };
            json!({"type": "Exchange", "request": request, "response": response})
        })
        .collect();
    Ok(serde_yaml::to_string(&exchanges)?)
}

/// The list answer as policy-evaluator 1.35 builds it from its reflector's store (kwctl records
/// it so): the list's metadata empty; each item's metadata whole but for `managedFields`
/// (emptied) and the last-applied annotation (removed), and outside metadata only the masked
/// paths, their parents kept where the object has them.
fn listed(api_version: &str, kind: &str, fields: &[&str], items: &[Value]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|object| {
            let mut metadata = object["metadata"].clone();
            metadata["managedFields"] = json!([]);
            let mut annotations = metadata["annotations"].clone();
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
            metadata["annotations"] = match annotations {
                Value::Null => json!({}),
                kept => kept,
            };
            let mut item = json!({"apiVersion": object["apiVersion"], "kind": object["kind"],
                                  "metadata": metadata});
            for field in fields.iter().filter(|f| !f.starts_with("metadata.")) {
                let path: Vec<&str> = field.split('.').collect();
                copy_path(object, &mut item, &path);
            }
            item
        })
        .collect();
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {}, "items": items})
}

/// Copies the value at `path` of `from` into `to`, with the parents `from` has on the way.
fn copy_path(from: &Value, to: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(value) = from.get(*first) else {
        return;
    };
    if rest.is_empty() {
        to[*first] = value.clone();
    } else if value.is_object() {
        if to.get(*first).is_none() {
            to[*first] = json!({});
        }
        copy_path(value, &mut to[*first], rest);
    }
}
