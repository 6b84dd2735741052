//! Runs one admission request through a kwctl-compatible tool (the real kwctl or our runner),
//! with the lookups it may make replayed from a session file written for that request.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

/// One lookup the policy may make, and what the cluster answers.
pub struct Lookup {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The object, or the host's error text.
    pub answer: Result<Value, String>,
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
        let output = Command::new(&self.program)
            .arg("run")
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
        let patched = match response.get("patch").and_then(Value::as_str) {
            None => None,
            Some(encoded) => Some(apply(request, encoded)?),
        };
        Ok(Outcome {
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
            printed: format!("{stdout}\n{}", policy_lines(&stderr)),
        })
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
            let request = format!(
                "!KubernetesGetResource\napi_version: {}\nkind: {}\nname: {}\nnamespace: {}\ndisable_cache: false\n",
                lookup.api_version, lookup.kind, lookup.name, lookup.namespace
            );
            let response = match &lookup.answer {
                Ok(object) => json!({"type": "Success", "payload": object.to_string()}),
                Err(message) => json!({"type": "Error", "message": message}),
            };
            json!({"type": "Exchange", "request": request, "response": response})
        })
        .collect();
    Ok(serde_yaml::to_string(&exchanges)?)
}
