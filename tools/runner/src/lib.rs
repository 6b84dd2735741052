//! policy-runner: runs Kubewarden waPC policies like `kwctl run`, `kwctl bench` and
//! `kwctl annotate`, and publishes them like `kwctl push` and `kwctl pull`, for machines where
//! kwctl is not available.
//!
//! Two binaries share this command line: `policy-runner` (run, bench, annotate, scaffold) and,
//! with the `registry` feature, `policy-runner-registry`, which also reaches OCI registries
//! (push, pull, `run registry://…`). The registry client (oci-client, reqwest, tokio, rustls,
//! docker_credential) stays out of the binary `make demo` builds.

mod bench;
mod engine;
mod evaluate;
mod host;
mod metadata;
#[cfg(feature = "registry")]
mod registry;
mod replay;
mod scaffold;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::evaluate::Policy;
use crate::host::Host;
use crate::replay::Replay;

#[derive(Parser)]
#[command(version, about = "Run Kubewarden waPC policies like kwctl")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate one admission request and print the AdmissionResponse as one JSON line.
    Run {
        #[command(flatten)]
        run: RunArgs,
        /// Also print, on standard error, the WebAssembly instructions the guest's `validate`
        /// call executed: `validate: N instructions (wasmtime fuel)`. One unit is one operator
        /// (nop, drop, block, loop, else, end, return, unreachable free) plus one per byte that
        /// memory.copy/fill/init moves; instantiation, settings validation and the host's work
        /// are not counted. The same module, request and session give the same count every run.
        /// Each host call is listed first with the count so far (`validate: host call
        /// "kubernetes/get_resource" after N instructions`): a profile of the evaluation by phase.
        #[arg(long)]
        count_instructions: bool,
    },
    /// Time `validate` with a fresh instance per request and on a warm instance.
    Bench {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 200)]
        num_samples: usize,
        #[arg(long, default_value_t = 20)]
        warm_up_samples: usize,
        /// Print one JSON object per mode instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate files derived from metadata.yml, like `kwctl scaffold`.
    Scaffold {
        #[command(subcommand)]
        what: ScaffoldCommand,
    },
    /// Embed metadata (and the README as usage) into a module, like `kwctl annotate`.
    Annotate {
        #[arg(short = 'm', long = "metadata-path")]
        metadata: PathBuf,
        #[arg(short = 'u', long = "usage-path")]
        usage: Option<PathBuf>,
        #[arg(short = 'o', long = "output-path")]
        output: PathBuf,
        module: PathBuf,
    },
    /// Publish an annotated module as a Kubewarden OCI artifact, like `kwctl push`.
    Push {
        module: PathBuf,
        /// registry://HOST/REPO:TAG
        uri: String,
        #[arg(short = 'o', long, value_enum, default_value_t = PushOutput::Text)]
        output: PushOutput,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Download a policy module from a registry, like `kwctl pull`.
    Pull {
        /// registry://HOST/REPO:TAG or registry://HOST/REPO@sha256:DIGEST
        uri: String,
        /// Where to write the module (default: the repository's last path segment + .wasm).
        #[arg(short = 'o', long = "output-path")]
        output: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PushOutput {
    /// The immutable reference as a registry:// URI.
    Text,
    /// `{"immutable_ref": "HOST/REPO@sha256:…"}`, as `kwctl push -o json` prints it.
    Json,
}

#[derive(Args)]
struct RegistryArgs {
    /// Reach a loopback registry (localhost, 127.0.0.0/8, [::1]) over plain HTTP; refused for
    /// any other host, which is always reached over TLS.
    #[arg(long)]
    plain_http: bool,
}

#[derive(Subcommand)]
enum ScaffoldCommand {
    /// artifacthub-pkg.yml for Artifact Hub.
    Artifacthub {
        #[arg(short = 'm', long)]
        metadata_path: PathBuf,
        #[arg(short = 'q', long)]
        questions_path: Option<PathBuf>,
        /// RFC 3339 creation time (default: now, from `date`).
        #[arg(long)]
        created_at: Option<String>,
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// AdmissionRequest or AdmissionReview JSON file, or - for standard input.
    #[arg(short = 'r', long)]
    request_path: String,
    #[arg(long, conflicts_with = "settings_path")]
    settings_json: Option<String>,
    /// Settings as a YAML or JSON file.
    #[arg(short = 's', long)]
    settings_path: Option<PathBuf>,
    /// Grant the lookups the module's metadata lists under contextAwareResources.
    #[arg(long)]
    allow_context_aware: bool,
    #[arg(long)]
    replay_host_capabilities_interactions: Option<PathBuf>,
    /// The policy module: a path, a file:// URI or a registry:// reference.
    module: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Why a build without the `registry` feature cannot do what was asked.
#[cfg(not(feature = "registry"))]
fn without_registry(what: &str) -> anyhow::Error {
    anyhow!(
        "{what} needs the registry client, which this build of policy-runner leaves out: \
         use policy-runner-registry (make registry-runner builds target/tool/policy-runner-registry)"
    )
}

fn read_module(uri: &str, registry: &RegistryArgs) -> Result<Vec<u8>> {
    if uri.starts_with("registry://") {
        #[cfg(feature = "registry")]
        {
            let location = registry::Location::parse(uri, registry.plain_http)?;
            return Ok(registry::pull(&location)?.module);
        }
        #[cfg(not(feature = "registry"))]
        {
            let _ = registry.plain_http;
            return Err(without_registry(&format!("reading {uri}")));
        }
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    std::fs::read(path).with_context(|| format!("cannot read module {path}"))
}

/// The request, checked and normalised as kwctl does (see `evaluate::admission_request`),
/// with kwctl's error texts.
fn read_request(path: &str) -> Result<Value> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow!("Error opening request file {path}; {e}"))?
    };
    evaluate::admission_request(serde_json::from_str(&text)?)
}

/// Settings as kwctl reads them: absent or null is `{}`, anything else must be an object.
fn read_settings(args: &RunArgs) -> Result<Value> {
    let settings: Option<Value> = if let Some(json) = &args.settings_json {
        serde_json::from_str(json).map_err(|e| anyhow!("Cannot parse settings JSON: {e}"))?
    } else if let Some(path) = &args.settings_path {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("Cannot open settings file {}: {e}", path.display()))?;
        serde_yaml::from_str(&text)
            .map_err(|e| anyhow!("Cannot parse settings file {}: {e}", path.display()))?
    } else {
        None
    };
    match settings {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(settings @ Value::Object(_)) => Ok(settings),
        Some(_) => Err(anyhow!("Invalid settings in CRD, not an object")),
    }
}

/// Everything `run` and `bench` share: the module, a host, the inputs, settings checked.
struct Prepared {
    policy: Policy,
    host: Arc<Host>,
    request: Value,
    settings: Value,
}

fn prepare(args: &RunArgs, cycle_replay: bool, counting: bool) -> Result<Result<Prepared, String>> {
    let module = read_module(&args.module, &args.registry)?;
    let policy = if counting {
        Policy::load_counting(&module)?
    } else {
        Policy::load(&module)?
    };
    let granted = match (&policy.metadata, args.allow_context_aware) {
        (Some(metadata), true) => metadata.context_aware_resources.clone(),
        (None, true) => {
            eprintln!(
                "warning: the module has no embedded metadata, so no lookups are granted (annotate it first)"
            );
            Vec::new()
        }
        (_, false) => Vec::new(),
    };
    let replay = match &args.replay_host_capabilities_interactions {
        Some(path) => Replay::new(replay::load(path)?, cycle_replay),
        None => Replay::without_session(),
    };
    let host = Arc::new(Host::new(granted, replay));
    let request = read_request(&args.request_path)?;
    let settings = read_settings(args)?;
    // kwctl connects to the cluster of the environment's kubeconfig when lookups are granted
    // and no session is replayed (after reading request and settings, before validating them),
    // and stops with `failed to infer config: …` when there is none; this runner has no
    // Kubernetes client, so it always stops there, with the same error class.
    if args.allow_context_aware && args.replay_host_capabilities_interactions.is_none() {
        return Err(anyhow!(
            "failed to infer config: policy-runner reaches no cluster: with --allow-context-aware, \
             replay a session recorded by kwctl (--replay-host-capabilities-interactions FILE)"
        ));
    }
    let checker = policy.instantiate(host.clone())?;
    if let Err(message) = evaluate::validate_settings(&checker, &settings) {
        return Ok(Err(message));
    }
    Ok(Ok(Prepared {
        policy,
        host,
        request,
        settings,
    }))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// metadata.yml as JSON, validated the way kwctl validates it.
fn read_metadata(path: &Path) -> Result<Value> {
    let metadata: Value = serde_yaml::from_str(&read_text(path)?)
        .with_context(|| format!("{} is not YAML", path.display()))?;
    metadata::validate(&metadata).map_err(|e| anyhow!("Metadata is invalid: {e}"))?;
    Ok(metadata)
}

fn annotate(
    metadata_path: &Path,
    usage: Option<&Path>,
    output: &Path,
    module_path: &Path,
) -> Result<()> {
    let metadata = read_metadata(metadata_path)?;
    let module = std::fs::read(module_path)
        .with_context(|| format!("cannot read {}", module_path.display()))?;
    let policy = Policy::load(&module)?;
    let host = Arc::new(Host::new(Vec::new(), Replay::new(Vec::new(), false)));
    let answer = policy
        .instantiate(host)?
        .call("protocol_version", &[])
        .map_err(|e| anyhow!("cannot compute the policy's protocol version: {e}"))?;
    let protocol_version: String = serde_json::from_slice(&answer)
        .context("protocol_version answered something unreadable")?;
    let usage = usage.map(read_text).transpose()?;
    let metadata = metadata::complete(metadata, &protocol_version, usage)?;
    std::fs::write(output, metadata::embed(&module, &metadata)?)
        .with_context(|| format!("cannot write {}", output.display()))
}

fn scaffold_artifacthub(
    metadata_path: &Path,
    questions_path: Option<&Path>,
    created_at: Option<String>,
    output: Option<&Path>,
) -> Result<()> {
    let metadata = read_metadata(metadata_path)?;
    let questions = questions_path.map(read_text).transpose()?;
    let created_at = match created_at {
        Some(created_at) => created_at,
        None => now_rfc3339()?,
    };
    let package = scaffold::artifacthub_package(&metadata, questions.as_deref(), &created_at)?;
    let yaml = format!("---\n{}", serde_yaml::to_string(&package)?);
    match output {
        Some(path) => {
            std::fs::write(path, yaml).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}

#[cfg(not(feature = "registry"))]
fn push(_: &Path, _: &str, _: PushOutput, _: &RegistryArgs) -> Result<()> {
    Err(without_registry("push"))
}

#[cfg(not(feature = "registry"))]
fn pull(_: &str, _: Option<PathBuf>, _: &RegistryArgs) -> Result<()> {
    Err(without_registry("pull"))
}

#[cfg(feature = "registry")]
fn push(module_path: &Path, uri: &str, output: PushOutput, registry: &RegistryArgs) -> Result<()> {
    let location = registry::Location::parse(uri, registry.plain_http)?;
    let module = std::fs::read(module_path)
        .with_context(|| format!("cannot read {}", module_path.display()))?;
    let immutable_ref = registry::push(module, &location)?;
    match output {
        PushOutput::Text => println!("{}", registry::as_uri(&immutable_ref)),
        PushOutput::Json => println!("{}", serde_json::json!({ "immutable_ref": immutable_ref })),
    }
    Ok(())
}

#[cfg(feature = "registry")]
fn pull(uri: &str, output: Option<PathBuf>, registry: &RegistryArgs) -> Result<()> {
    let location = registry::Location::parse(uri, registry.plain_http)?;
    let pulled = registry::pull(&location)?;
    let output = output.unwrap_or_else(|| {
        let repository = location.reference.repository();
        let name = repository.rsplit('/').next().unwrap_or(repository);
        PathBuf::from(format!("{name}.wasm"))
    });
    std::fs::write(&output, &pulled.module)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "{} ({} bytes) written to {}",
        registry::as_uri(&pulled.immutable_ref),
        pulled.module.len(),
        output.display()
    );
    Ok(())
}

/// Like kwctl's end-of-run warning about unreplayed exchanges, but naming only the requests:
/// kwctl also prints their recorded payloads (Secrets included), which this runner withholds.
fn warn_about_leftovers(host: &Host) {
    let leftovers = host.leftovers();
    if !leftovers.is_empty() {
        eprintln!(
            " WARN policy_runner: Some of the recorded exchanges have not been replayed (payloads withheld) leftovers=[{}]",
            leftovers.join(", ")
        );
    }
}

/// The current UTC time in RFC 3339, without pulling a date crate into the runner.
fn now_rfc3339() -> Result<String> {
    let output = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()?;
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// The command line of both binaries; the process exit code, as kwctl's.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run { run: args, count_instructions } => prepare(&args, false, count_instructions).and_then(|prepared| match prepared {
            Err(message) => Ok(Err(message)),
            Ok(p) => {
                let instance = p.policy.instantiate(p.host.clone())?;
                let response = evaluate::evaluate(&instance, &p.request, &p.settings, p.policy.allows_mutation());
                if let Some(instructions) = p.policy.last_call_instructions() {
                    for (call, spent) in p.policy.last_call_host_calls() {
                        eprintln!("validate: host call {call:?} after {spent} instructions");
                    }
                    eprintln!("validate: {instructions} instructions (wasmtime fuel)");
                }
                warn_about_leftovers(&p.host);
                println!("{}", serde_json::to_string(&response)?);
                Ok(Ok(()))
            }
        }),
        Command::Bench { run, num_samples, warm_up_samples, json } => prepare(&run, true, false).and_then(|prepared| match prepared {
            Err(message) => Ok(Err(message)),
            Ok(p) => {
                let input = bench::BenchInput {
                    policy: &p.policy,
                    host: p.host.clone(),
                    request: &p.request,
                    settings: &p.settings,
                    samples: num_samples,
                    warm_up: warm_up_samples,
                };
                for timing in bench::run(&input)? {
                    if json {
                        println!("{}", serde_json::to_string(&timing)?);
                    } else {
                        println!(
                            "validate ({}): median {:.1} µs, p10 {:.1} µs, p90 {:.1} µs, {} samples",
                            timing.mode, timing.median_us, timing.p10_us, timing.p90_us, timing.samples
                        );
                    }
                }
                Ok(Ok(()))
            }
        }),
        Command::Scaffold {
            what: ScaffoldCommand::Artifacthub { metadata_path, questions_path, created_at, output },
        } => scaffold_artifacthub(&metadata_path, questions_path.as_deref(), created_at, output.as_deref()).map(Ok),
        Command::Annotate { metadata, usage, output, module } => {
            annotate(&metadata, usage.as_deref(), &output, &module).map(Ok)
        }
        Command::Push { module, uri, output, registry } => push(&module, &uri, output, &registry).map(Ok),
        Command::Pull { uri, output, registry } => pull(&uri, output, &registry).map(Ok),
    };
    // kwctl's exit codes and wording: 1 for every error, a rejection is a success.
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(message)) => {
            eprintln!("Error: Provided settings are not valid: {message}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_from_json(json: &str) -> Result<Value> {
        read_settings(&RunArgs {
            request_path: "-".into(),
            settings_json: Some(json.into()),
            settings_path: None,
            allow_context_aware: false,
            replay_host_capabilities_interactions: None,
            module: "m.wasm".into(),
            registry: RegistryArgs { plain_http: false },
        })
    }

    #[test]
    fn settings_are_read_like_kwctl_reads_them() {
        assert_eq!(settings_from_json("null").unwrap(), serde_json::json!({}));
        assert_eq!(
            settings_from_json(r#"{"a":1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            settings_from_json(r#""x""#).unwrap_err().to_string(),
            "Invalid settings in CRD, not an object"
        );
        assert_eq!(
            settings_from_json("nope").unwrap_err().to_string(),
            "Cannot parse settings JSON: expected ident at line 1 column 2"
        );
    }

    #[test]
    fn unreadable_requests_get_kwctls_text() {
        assert_eq!(
            read_request("/nonexistent/request.json")
                .unwrap_err()
                .to_string(),
            "Error opening request file /nonexistent/request.json; No such file or directory (os error 2)"
        );
    }
}
