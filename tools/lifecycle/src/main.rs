//! Plays the life of a DittoFS server through the compiled policy, under the real kwctl or our
//! runner: each step is an admission request as the API server would send it, each response's
//! patch is applied to make the next stored object, and each step checks verdict, patch and
//! warnings. Lookups are replayed from a session written for the cluster as it is at that step.
//!
//!     lifecycle-scenario TOOL MODULE [plain|renders-env]
//!     lifecycle-scenario --policy-server URL CA_FILE API_DIR [plain|renders-env]
//!     lifecycle-scenario settings
//!
//! `plain`: an operator build that writes no AWS env; `renders-env`: operator v0.4-v0.12, which
//! render the same four variables themselves. Prints one `ok`/`not ok` line per step.
//!
//! With `--policy-server`, each step is posted to a running policy-server (URL, its CA) whose
//! Kubernetes API is tools/fake-kube-api serving from API_DIR: the lookups of each step become
//! the API's state instead of a replay session (see policy_server.rs). Its policies.yml must
//! hold the deploy kit's policies with this scenario's settings, which `settings` prints.

mod policy_server;
mod tool;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use policy_server::PolicyServer;
use tool::{Lookup, Outcome, Tool};
use world::{
    Author, Credentials, NAME, SecretAccess, THE_OPERATOR, World, admission_request, b64,
    dittoserver, endpoint_secret, pod_from, policy_state, secret_object, secret_values,
};

/// A developer of the namespace who may edit DittoServers but may not read their Secrets.
const DEVELOPER: Author = Author {
    user: "dev@example.com",
    groups: &["system:authenticated", "team-storage"],
    may_read_secrets: false,
};
/// A lead of the namespace who may read its Secrets.
const LEAD: Author = Author {
    user: "lead@example.com",
    groups: &["system:authenticated", "team-storage"],
    may_read_secrets: true,
};

/// A change of the DittoServer, by the field it changes.
type DittoServerChange = (&'static str, fn(&mut Value));

/// Whether a DittoServer write decides what runs with its Secret, so that its author's access
/// is asked about: a CREATE, or a change of any spec field but those that only size the server
/// (the scenario changes no other inert field).
fn decides_what_runs(object: &Value, old: &Value) -> bool {
    let deciding = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(fields) = spec.as_object_mut() {
            fields.remove("replicas");
            fields.remove("resources");
        }
        spec
    };
    old.is_null() || deciding(&object["spec"]) != deciding(&old["spec"])
}

const SETTINGS: &str = r#"{"allowedEndpointHosts": ["*.cubbit.eu"]}"#;

fn credentials(secret: &str) -> Credentials {
    Credentials {
        access_key_id: "FAKE-LIFECYCLE-KEY-ID".to_owned(),
        secret_access_key: format!("FAKE-LIFECYCLE-SECRET-{secret}"),
        endpoint: "https://s3.cubbit.eu".to_owned(),
    }
}

/// Collects step results and prints them as they come.
struct Report {
    steps: usize,
    failures: usize,
}

impl Report {
    fn step(&mut self, label: &str, problems: Vec<String>) {
        self.steps += 1;
        if problems.is_empty() {
            println!("ok {} - {label}", self.steps);
        } else {
            self.failures += 1;
            println!("not ok {} - {label}", self.steps);
            for problem in problems {
                println!("#   {problem}");
            }
        }
    }
}

/// What a step expects of the response.
#[derive(Default)]
struct Expect<'a> {
    rejected_with: Option<&'a str>,
    /// The policy's part (env, hash, record) of the object as admitted, patched or not;
    /// `None`: the response carries no patch at all.
    state: Option<(Vec<Value>, Value, Value)>,
    /// One warning each, by the text it must start with and a text it must contain.
    warnings: Vec<(&'a str, &'a str)>,
    /// Whether the admitted object's hash differs from the stored one's (so its pods roll).
    rolls: Option<bool>,
    /// The response must carry no patch (with `state`: the object already has that state).
    unpatched: bool,
}

fn check(object: &Value, outcome: &Outcome, expect: &Expect<'_>, world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    match (expect.rejected_with, outcome.allowed) {
        (Some(text), false) if outcome.message.contains(text) => {}
        (Some(text), _) => problems.push(format!(
            "expected a rejection with '{text}', got allowed={} '{}'",
            outcome.allowed, outcome.message
        )),
        (None, false) => problems.push(format!("rejected: {}", outcome.message)),
        (None, true) => {}
    }
    match (&expect.state, &outcome.patched) {
        (None, None) => {}
        (None, Some(_)) => problems.push("unexpected patch".to_owned()),
        (Some(_), Some(_)) if expect.unpatched => problems.push("unexpected patch".to_owned()),
        (Some(expected), admitted) => {
            let actual = policy_state(admitted.as_ref().unwrap_or(object));
            if &actual != expected {
                problems.push(format!(
                    "policy state as admitted: {actual:?}, expected {expected:?}"
                ));
            }
        }
    }
    if outcome.warnings.len() != expect.warnings.len() {
        problems.push(format!(
            "warnings {:?}, expected {}",
            outcome.warnings,
            expect.warnings.len()
        ));
    }
    for ((start, contains), warning) in expect.warnings.iter().zip(&outcome.warnings) {
        if !warning.starts_with(start) || !warning.contains(contains) {
            problems.push(format!(
                "warning '{warning}' should start with '{start}' and contain '{contains}'"
            ));
        }
        if warning.len() > 256
            || warning.contains("backtrace")
            || warning.contains("Callback evaluation")
        {
            problems.push(format!(
                "warning is not one short line of the policy's: '{warning}'"
            ));
        }
    }
    let mut values = world.all_values();
    // A Secret written may hold values the world does not (yet, or ever).
    values.extend(
        secret_values(object)
            .into_iter()
            .filter(|v| v.starts_with("FAKE-")),
    );
    for value in values
        .iter()
        .filter(|v| !v.starts_with("https://s3.cubbit"))
    {
        for form in [value.clone(), b64(value)] {
            if outcome.printed.contains(&form) {
                problems.push(format!(
                    "the tool's output carries a Secret value ({value})"
                ));
            }
        }
    }
    if outcome.printed.contains("attacker") {
        problems.push("the tool's output carries the tampered endpoint".to_owned());
    }
    problems
}

/// The policy state a write must leave for the world as it is now.
fn injected(world: &World) -> (Vec<Value>, Value, Value) {
    (
        world.expected_env(),
        json!(world.expected_hash()),
        json!(world.expected_record()),
    )
}

/// Where a step's admission request is evaluated.
enum Transport {
    /// kwctl or the runner, lookups replayed from a session.
    Tool(Tool),
    /// The real policy-server, lookups answered by the fake Kubernetes API.
    PolicyServer(PolicyServer),
}

impl Transport {
    /// Evaluates `request` in a cluster that stores `stored` besides what `lookups` answer.
    fn evaluate(
        &mut self,
        request: &Value,
        lookups: &[Lookup],
        settings: &Value,
        stored: &[Value],
    ) -> Result<Outcome> {
        match self {
            Self::Tool(tool) => tool.evaluate(request, lookups, settings),
            Self::PolicyServer(server) => server.evaluate(request, lookups, stored),
        }
    }

    /// What the policy quotes for an API server error with `message`, closing parenthesis
    /// included: kwctl hands the recorded text over as is; policy-server, kube-rs' rendering of
    /// the Status (whose Debug dump the policy cuts).
    fn api_error_quote(&self, message: &str) -> String {
        match self {
            Self::Tool(_) => format!("{message})"),
            Self::PolicyServer(_) => PolicyServer::api_error_quote(message),
        }
    }
}

struct Scenario {
    tool: Transport,
    world: World,
    report: Report,
    settings: Value,
    /// The stored StatefulSet.
    statefulset: Value,
    /// Who writes the next requests.
    author: Author,
    /// The DittoServers the Secret guard's last list saw.
    last_listed: Option<Vec<Value>>,
}

/// How long a Secret step under policy-server is posted again while its verdict is not the
/// expected one, when the DittoServers changed since the last list: the host answers lists from a
/// watch, and the stand-in API sends a change within 0.1 s.
const WATCH_SETTLES: Duration = Duration::from_secs(3);

impl Scenario {
    fn run(
        &mut self,
        label: &str,
        kind: &str,
        operation: &str,
        object: &Value,
        old: &Value,
        expect: Expect<'_>,
    ) -> Option<Value> {
        let lookups = match kind {
            "DittoServer" if operation == "DELETE" => Vec::new(),
            "DittoServer" => {
                let secret_name = |o: &Value| {
                    o.pointer("/spec/s3/credentialsSecretRef/secretName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let (name, before) = (secret_name(object), secret_name(old));
                let mut lookups = Vec::new();
                // The author is asked about the Secret named after the write, then about the
                // one named before it.
                if decides_what_runs(object, old) {
                    lookups.push(self.world.access_lookup(self.author, &name));
                    if !before.is_empty() && before != name {
                        lookups.push(self.world.access_lookup(self.author, &before));
                    }
                }
                lookups.push(self.world.secret_lookup(&name));
                lookups
            }
            "Secret" => vec![self.world.list_lookup()],
            _ => {
                let mut lookups = self.world.workload_lookups();
                let kept = if operation == "UPDATE" { old } else { object };
                if self.world.workload_lookup_fails()
                    && let Some(name) = endpoint_secret(kept)
                {
                    lookups.push(self.world.kept_endpoint_lookup(&name));
                }
                lookups
            }
        };
        let request = admission_request(kind, operation, object, old, self.author);
        let stored = self.world.dittoservers();
        let settles = kind == "Secret"
            && matches!(self.tool, Transport::PolicyServer(_))
            && self
                .last_listed
                .as_ref()
                .is_some_and(|seen| seen != &stored);
        let started = Instant::now();
        let mut posted = 0;
        loop {
            posted += 1;
            let outcome = match self
                .tool
                .evaluate(&request, &lookups, &self.settings, &stored)
            {
                Err(error) => {
                    self.report.step(label, vec![format!("{error:#}")]);
                    return None;
                }
                Ok(outcome) => outcome,
            };
            let mut problems = check(object, &outcome, &expect, &self.world);
            if let Some(rolls) = expect.rolls {
                let hash = |object: &Value| policy_state(object).1;
                let admitted = hash(outcome.patched.as_ref().unwrap_or(object));
                if (admitted != hash(old)) != rolls {
                    problems.push(format!(
                        "hash {admitted} as admitted, {} stored: expected the pods {}to roll",
                        hash(old),
                        if rolls { "" } else { "not " }
                    ));
                }
            }
            if !problems.is_empty() && settles && started.elapsed() < WATCH_SETTLES {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            if posted > 1 {
                println!(
                    "# posted {posted} times ({:.1} s) until policy-server's list showed the DittoServers' change",
                    started.elapsed().as_secs_f64()
                );
            }
            if kind == "Secret" {
                self.last_listed = Some(stored);
            }
            self.report.step(label, problems);
            return Some(outcome.patched.unwrap_or_else(|| object.clone()));
        }
    }

    /// A write of the Secret the DittoServer names, as it is stored now.
    fn write_secret(&mut self, label: &str, operation: &str, new: &Value, expect: Expect<'_>) {
        let name = self.world.secret_name();
        let stored = self.world.secret_object(&name).unwrap_or(Value::Null);
        self.run(label, "Secret", operation, new, &stored, expect);
    }

    /// A write of the stored StatefulSet; the result becomes the stored object.
    fn update_statefulset(&mut self, label: &str, new: Value, expect: Expect<'_>) {
        let old = self.statefulset.clone();
        if let Some(stored) = self.run(label, "StatefulSet", "UPDATE", &new, &old, expect) {
            self.statefulset = stored;
        }
    }

    fn restarted(&self, at: &str) -> Value {
        let mut restarted = self.statefulset.clone();
        restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!(at);
        restarted
    }

    fn set_dittoserver(&mut self, label: &str, new: Value, expect: Expect<'_>) {
        let old = self.world.dittoserver.clone().unwrap_or(Value::Null);
        self.run(label, "DittoServer", "UPDATE", &new, &old, expect);
        self.world.dittoserver = Some(new);
    }
}

fn play(target: Target, operator_renders_env: bool) -> Result<Report> {
    let workdir = std::env::temp_dir().join(format!(
        "lifecycle-{}-{}",
        std::process::id(),
        operator_renders_env
    ));
    let tool = match target {
        Target::Tool { program, module } => {
            Transport::Tool(Tool::new(program, module, workdir.clone())?)
        }
        Target::PolicyServer { url, ca, api_dir } => {
            Transport::PolicyServer(PolicyServer::new(url, ca, api_dir, workdir.clone())?)
        }
    };
    let world = World {
        dittoserver: None,
        dittoserver_error: None,
        secrets: BTreeMap::from([("creds".to_owned(), credentials("creds"))]),
        secret_access: SecretAccess::Granted,
        operator_renders_env,
        generation: 0,
    };
    let mut s = Scenario {
        tool,
        world,
        report: Report {
            steps: 0,
            failures: 0,
        },
        settings: serde_json::from_str(SETTINGS)?,
        statefulset: Value::Null,
        author: THE_OPERATOR,
        last_listed: None,
    };
    let quiet = Expect::default;

    // 1. The DittoServer is created; its Secret exists and is complete.
    let ditto = dittoserver("creds", "eu-west-1", "dittofs-data");
    s.run(
        "DittoServer created",
        "DittoServer",
        "CREATE",
        &ditto,
        &Value::Null,
        quiet(),
    );
    s.world.dittoserver = Some(ditto);
    let created = s.world.operator_statefulset();

    // 2. The operator creates the StatefulSet: env, hash and record are written.
    let state = Some(injected(&s.world));
    if let Some(stored) = s.run(
        "operator creates the StatefulSet: env, hash and record injected",
        "StatefulSet",
        "CREATE",
        &created,
        &Value::Null,
        Expect { state, ..quiet() },
    ) {
        s.statefulset = stored;
    }

    // 3. Pod 0 comes from the injected template: nothing to add.
    let pod = pod_from(&s.statefulset, 0);
    s.run(
        "pod 0 created from the injected template: no patch",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        quiet(),
    );

    // 4. The Secret is rotated; a rollout restart carries the new hash, so pods roll.
    s.world.secrets.insert(
        "creds".to_owned(),
        Credentials {
            secret_access_key: "FAKE-LIFECYCLE-ROTATED".to_owned(),
            ..credentials("creds")
        },
    );
    let restarted = s.restarted("2026-11-30T01:00:00Z");
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "Secret rotated, kubectl rollout restart: new hash",
        restarted,
        Expect { state, ..quiet() },
    );
    let before_region_change = s.statefulset.clone();

    // 5. The region changes. The template still holds the policy's eu-west-1 entry.
    let moved = dittoserver("creds", "fr-par", "dittofs-data");
    s.set_dittoserver("DittoServer region changed to fr-par", moved, quiet());
    let mut relabelled = s.statefulset.clone();
    relabelled["metadata"]["labels"] = json!({"team": "storage"});
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "label edit after the region change: the policy's own AWS_REGION follows, no conflict",
        relabelled,
        Expect { state, ..quiet() },
    );

    // 6. The operator reconciles: annotation map replaced, env re-rendered.
    let reconciled = s.world.operator_statefulset();
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "operator reconcile: annotations replaced, env re-rendered",
        reconciled,
        Expect { state, ..quiet() },
    );

    // 7. A pod evicted and recreated from the template of before the region change.
    let evicted = pod_from(&before_region_change, 0);
    let state = Some(injected(&s.world));
    s.run(
        "pod recreated from the old template: its env follows the DittoServer",
        "Pod",
        "CREATE",
        &evicted,
        &Value::Null,
        Expect { state, ..quiet() },
    );

    // 8. A GitOps re-apply of what is stored changes nothing.
    let reapplied = s.statefulset.clone();
    s.update_statefulset(
        "re-apply of the stored StatefulSet: fixed point, no patch",
        reapplied,
        quiet(),
    );

    // 8b. People who may edit the DittoServer, with and without get on its Secret.
    let stored = s.world.dittoserver.clone().unwrap_or_default();
    let refusal =
        "user \"dev@example.com\" may not get Secret \"creds\" in namespace \"dittofs-system\"";
    s.author = DEVELOPER;
    let changes: [DittoServerChange; 3] = [
        ("spec.image", |o| {
            o["spec"]["image"] = json!("registry.example/dittofs:patched")
        }),
        (
            "spec.database",
            |o| {
                o["spec"]["database"] = json!({"type": "postgres", "postgresSecretRef": {"name": "creds", "key": "url"}})
            },
        ),
        ("spec.identity", |o| {
            o["spec"]["identity"] = json!({"admin": {"username": "root"}})
        }),
    ];
    for (field, change) in changes {
        let mut changed = stored.clone();
        change(&mut changed);
        let expected = format!(
            "{refusal}, so it may not have DittoFS pods read it (secretAccessCheck) (this write changes {field})"
        );
        s.run(
            &format!("a developer who may not read the Secret changes {field}: rejected"),
            "DittoServer",
            "UPDATE",
            &changed,
            &stored,
            Expect {
                rejected_with: Some(&expected),
                ..quiet()
            },
        );
    }
    let mut relabelled = stored.clone();
    relabelled["metadata"]["labels"] = json!({"team": "storage"});
    relabelled["spec"]["replicas"] = json!(1);
    s.set_dittoserver(
        "the same developer edits labels: nothing is asked, accepted",
        relabelled,
        quiet(),
    );
    s.author = LEAD;
    let mut patched = s.world.dittoserver.clone().unwrap_or_default();
    patched["spec"]["image"] = json!("marmos91c/dittofs:0.12.1");
    s.set_dittoserver(
        "a lead who may read the Secret changes spec.image: asked, accepted",
        patched,
        quiet(),
    );
    s.author = THE_OPERATOR;
    let mut status = s.world.dittoserver.clone().unwrap_or_default();
    status["status"] = json!({"phase": "Running"});
    s.set_dittoserver(
        "the operator writes the status: nothing is asked, accepted",
        status,
        quiet(),
    );

    // 8c. Routes around the endpoint rules in the dittofs container are refused wherever they
    // are written; the stored template stays as it was.
    let mut routed = s.statefulset.clone();
    if let Some(env) = routed
        .pointer_mut("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut)
    {
        env.push(json!({"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.override.example"}));
    }
    s.run(
        "a person adds AWS_ENDPOINT_URL_S3 to the template: rejected, the stored one stays",
        "StatefulSet",
        "UPDATE",
        &routed,
        &s.statefulset.clone(),
        Expect {
            rejected_with: Some(
                "AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL (onCredentialRoute: reject)",
            ),
            ..quiet()
        },
    );
    let mut pod = pod_from(&s.statefulset, 0);
    pod["spec"]["containers"][0]["envFrom"] = json!([{"secretRef": {"name": "extra-env"}}]);
    s.run(
        "a pod created from the template plus an envFrom: rejected",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            rejected_with: Some("envFrom[0] (secretRef \"extra-env\") can set any variable"),
            ..quiet()
        },
    );

    // 9. secretName changes before the new Secret exists: nothing may roll.
    let renamed = dittoserver("creds-v2", "fr-par", "dittofs-data");
    s.set_dittoserver("secretName changed to creds-v2, which does not exist yet", renamed, Expect {
        warnings: vec![("Secret \"creds-v2\" in namespace \"dittofs-system\" (spec.s3.credentialsSecretRef.secretName) was not found", "will not start")],
        ..quiet()
    });
    let kept = policy_state(&s.statefulset);
    let reconciled = s.world.operator_statefulset();
    s.update_statefulset("operator reconcile while creds-v2 is missing: the previous env and hash are kept", reconciled, Expect {
        state: Some(kept.clone()),
        warnings: vec![("kept the S3 env and hash of the previous revision of StatefulSet \"dittofs-s3-sample\": ", "Secret \"creds-v2\" in namespace \"dittofs-system\" was not found")],
        ..quiet()
    });
    let pod = pod_from(&s.statefulset, 0);
    s.run(
        "pod recreated while creds-v2 is missing: left as it came",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            warnings: vec![(
                "S3 credentials of Pod \"dittofs-s3-sample-0\" left as they came: ",
                "was not found",
            )],
            ..quiet()
        },
    );
    // Meanwhile the old Secret, which the kept template still names, gets a tampered endpoint.
    s.world.secrets.insert(
        "creds".to_owned(),
        Credentials {
            endpoint: "https://s3.attacker.example".to_owned(),
            secret_access_key: "FAKE-LIFECYCLE-ROTATED".to_owned(),
            ..credentials("creds")
        },
    );
    s.run(
        "the kept template's own Secret tampered meanwhile: the recreated pod is rejected",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            rejected_with: Some(
                "Secret \"creds\" in namespace \"dittofs-system\": entry \"endpoint\" has a host that is not in allowedEndpointHosts",
            ),
            ..quiet()
        },
    );
    s.world.secrets.insert(
        "creds".to_owned(),
        Credentials {
            secret_access_key: "FAKE-LIFECYCLE-ROTATED".to_owned(),
            ..credentials("creds")
        },
    );

    // 10. The Secret appears: the next write moves to it.
    s.world
        .secrets
        .insert("creds-v2".to_owned(), credentials("creds-v2"));
    let reconciled = s.world.operator_statefulset();
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "creds-v2 created, operator reconcile: env and hash move to creds-v2",
        reconciled,
        Expect { state, ..quiet() },
    );

    // 11. Lookups fail halfway through a rollout: denied by RBAC, then an API timeout.
    s.world.secret_access = SecretAccess::DeniedByRbac;
    let kept = policy_state(&s.statefulset);
    let restarted = s.restarted("2026-11-30T02:00:00Z");
    s.update_statefulset(
        "RBAC denies the Secret: reported as denied (not as missing), nothing rolls",
        restarted,
        Expect {
            state: Some(kept.clone()),
            warnings: vec![(
                "kept the S3 env and hash of the previous revision",
                "access denied (ApiError: secrets \"creds-v2\" is forbidden",
            )],
            ..quiet()
        },
    );
    let mut labelled = s.world.dittoserver.clone().unwrap_or_default();
    labelled["metadata"]["labels"] = json!({"team": "storage"});
    s.run(
        "DittoServer label edit while the Secret is denied: spec.s3 unchanged, accepted silently",
        "DittoServer",
        "UPDATE",
        &labelled,
        &s.world.dittoserver.clone().unwrap_or_default(),
        quiet(),
    );
    s.world.secret_access = SecretAccess::Granted;
    s.world.dittoserver_error = Some("etcdserver: request timed out".to_owned());
    let restarted = s.restarted("2026-11-30T03:00:00Z");
    let quoted = format!(
        "lookup failed ({}",
        s.tool.api_error_quote("etcdserver: request timed out")
    );
    s.update_statefulset(
        "API timeout on the DittoServer: one line quoted, nothing rolls",
        restarted,
        Expect {
            state: Some(kept),
            warnings: vec![("kept the S3 env and hash of the previous revision", &quoted)],
            ..quiet()
        },
    );
    s.world.dittoserver_error = None;

    // 12. The Secret is deleted: pods keep what they had.
    s.world.secrets.remove("creds-v2");
    let pod = pod_from(&s.statefulset, 0);
    s.run(
        "Secret deleted, pod recreated: left as it came",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            warnings: vec![(
                "S3 credentials of Pod \"dittofs-s3-sample-0\" left as they came: ",
                "Secret \"creds-v2\" in namespace \"dittofs-system\" was not found",
            )],
            ..quiet()
        },
    );

    // 13. The Secret comes back with a tampered endpoint: refused wherever it is read.
    s.world.secrets.insert(
        "creds-v2".to_owned(),
        Credentials {
            endpoint: "https://s3.attacker.example".to_owned(),
            ..credentials("creds-v2")
        },
    );
    let restarted = s.restarted("2026-11-30T04:00:00Z");
    let rule = "Secret \"creds-v2\" in namespace \"dittofs-system\": entry \"endpoint\" has a host that is not in allowedEndpointHosts";
    s.update_statefulset(
        "endpoint tampered: the StatefulSet update is rejected",
        restarted,
        Expect {
            rejected_with: Some(rule),
            ..quiet()
        },
    );
    let pod = pod_from(&s.statefulset, 0);
    s.run(
        "endpoint tampered: the pod is rejected",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            rejected_with: Some(rule),
            ..quiet()
        },
    );
    s.world
        .secrets
        .insert("creds-v2".to_owned(), credentials("creds-v2"));

    // 13b. The Secret guard, while the DittoServer names creds-v2. A good rotation is accepted
    // silently; the operator's next reconcile carries the new hash, which rolls the pods.
    let rotated = Credentials {
        secret_access_key: "FAKE-LIFECYCLE-ROTATED-V2".to_owned(),
        ..credentials("creds-v2")
    };
    s.write_secret(
        "Secret rotated well (new secretAccessKey): accepted silently",
        "UPDATE",
        &secret_object("creds-v2", &rotated),
        quiet(),
    );
    s.world
        .secrets
        .insert("creds-v2".to_owned(), rotated.clone());
    let reconciled = s.world.operator_statefulset();
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "operator reconcile after the rotation: the new hash rolls the pods",
        reconciled,
        Expect {
            state,
            rolls: Some(true),
            ..quiet()
        },
    );
    let pod = pod_from(&s.statefulset, 0);
    let state = Some(injected(&s.world));
    s.run(
        "pod rolled from the new template: it carries the new hash, no patch",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            state,
            unpatched: true,
            ..quiet()
        },
    );

    // 13c. Bad rotations are refused naming the DittoServer: the stored Secret stays as it was,
    // and the next StatefulSet write keeps its hash.
    let broken = [
        (
            "accessKeyId emptied",
            Credentials {
                access_key_id: String::new(),
                ..rotated.clone()
            },
            "entry \"accessKeyId\" is empty",
        ),
        (
            "an http endpoint",
            Credentials {
                endpoint: "http://s3.cubbit.eu".to_owned(),
                ..rotated.clone()
            },
            "entry \"endpoint\" must use https",
        ),
    ];
    for (what, credentials, rule) in &broken {
        let expected = format!(
            "Secret \"creds-v2\" is rejected: it would break DittoServer \"{NAME}\" ({rule}"
        );
        s.write_secret(
            &format!("Secret rotated badly ({what}): rejected, naming the DittoServer"),
            "UPDATE",
            &secret_object("creds-v2", credentials),
            Expect {
                rejected_with: Some(&expected),
                ..quiet()
            },
        );
    }
    let reconciled = s.world.operator_statefulset();
    let state = Some(injected(&s.world));
    s.update_statefulset(
        "operator reconcile after the refused rotations: the hash is kept, nothing rolls",
        reconciled,
        Expect {
            state,
            rolls: Some(false),
            ..quiet()
        },
    );

    // 13d. Deleting the Secret the DittoServer names is refused.
    let deletion = format!(
        "deleting Secret \"creds-v2\" is rejected: Secret \"creds-v2\" is named by DittoServer \"{NAME}\" (spec.s3.credentialsSecretRef)"
    );
    s.write_secret(
        "Secret deleted while the DittoServer names it: rejected",
        "DELETE",
        &Value::Null,
        Expect {
            rejected_with: Some(&deletion),
            ..quiet()
        },
    );

    // 14. The DittoServer is deleted, then its StatefulSet is torn down.
    let last = s.world.dittoserver.clone().unwrap_or_default();
    s.run(
        "DittoServer deleted",
        "DittoServer",
        "DELETE",
        &Value::Null,
        &last,
        quiet(),
    );
    s.world.dittoserver = None;
    let mut deleting = s.statefulset.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-30T05:00:00Z");
    deleting["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    s.update_statefulset(
        "StatefulSet being deleted: untouched, no lookup",
        deleting,
        quiet(),
    );
    let pod = pod_from(&s.statefulset, 1);
    s.run(
        "a pod created after the DittoServer is gone: left as it came",
        "Pod",
        "CREATE",
        &pod,
        &Value::Null,
        Expect {
            warnings: vec![(
                "S3 credentials of Pod \"dittofs-s3-sample-1\" left as they came: ",
                "DittoServer \"dittofs-s3-sample\" in namespace \"dittofs-system\" was not found",
            )],
            ..quiet()
        },
    );

    // 15. With the DittoServer gone, its Secret may go.
    s.write_secret(
        "Secret deleted after its DittoServer: accepted",
        "DELETE",
        &Value::Null,
        quiet(),
    );
    s.world.secrets.remove("creds-v2");

    // 16. Re-created: the DittoServer first, then its Secret, which must be usable.
    let again = dittoserver("creds-v2", "fr-par", "dittofs-data");
    s.run("DittoServer re-created before its Secret: warned", "DittoServer", "CREATE", &again, &Value::Null, Expect {
        warnings: vec![("Secret \"creds-v2\" in namespace \"dittofs-system\" (spec.s3.credentialsSecretRef.secretName) was not found", "will not start")],
        ..quiet()
    });
    s.world.dittoserver = Some(again.clone());
    let http = Credentials {
        endpoint: "http://s3.cubbit.eu".to_owned(),
        ..credentials("creds-v2")
    };
    let expected = format!(
        "Secret \"creds-v2\" is rejected: it would break DittoServer \"{NAME}\" (entry \"endpoint\" must use https"
    );
    s.write_secret(
        "Secret re-created with an http endpoint while the DittoServer names it: rejected",
        "CREATE",
        &secret_object("creds-v2", &http),
        Expect {
            rejected_with: Some(&expected),
            ..quiet()
        },
    );
    s.write_secret(
        "Secret re-created usable: accepted silently",
        "CREATE",
        &secret_object("creds-v2", &credentials("creds-v2")),
        quiet(),
    );
    s.world
        .secrets
        .insert("creds-v2".to_owned(), credentials("creds-v2"));

    // 17. Deleted again, held by the operator's finalizer: while it is being deleted, its
    // Secret may go (under policy-server, once the watch has told the host).
    s.run(
        "DittoServer deleted again (the operator's finalizer holds it)",
        "DittoServer",
        "DELETE",
        &Value::Null,
        &again,
        quiet(),
    );
    let mut deleting = again;
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-30T06:00:00Z");
    deleting["metadata"]["finalizers"] = json!(["dittofs.dittofs.com/finalizer"]);
    s.world.dittoserver = Some(deleting);
    s.write_secret(
        "Secret deleted while its DittoServer is being deleted: accepted",
        "DELETE",
        &Value::Null,
        quiet(),
    );
    s.world.secrets.remove("creds-v2");
    s.world.dittoserver = None;

    if let Transport::PolicyServer(server) = &s.tool {
        server.finish()?;
        println!(
            "# waited {:.1} s for policy-server's 5 s lookup cache to expire",
            server.waited
        );
    }
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(s.report)
}

enum Target {
    Tool {
        program: PathBuf,
        module: PathBuf,
    },
    PolicyServer {
        url: String,
        ca: PathBuf,
        api_dir: PathBuf,
    },
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server = |url: &String, ca: &String, api_dir: &String| Target::PolicyServer {
        url: url.clone(),
        ca: PathBuf::from(ca),
        api_dir: PathBuf::from(api_dir),
    };
    let tool = |program: &String, module: &String| Target::Tool {
        program: PathBuf::from(program),
        module: PathBuf::from(module),
    };
    let (target, flavour) = match args.as_slice() {
        [settings] if settings == "settings" => {
            println!("{SETTINGS}");
            return Ok(());
        }
        [flag, url, ca, api_dir] if flag == "--policy-server" => {
            (server(url, ca, api_dir), "plain")
        }
        [flag, url, ca, api_dir, flavour] if flag == "--policy-server" => {
            (server(url, ca, api_dir), flavour.as_str())
        }
        [program, module] => (tool(program, module), "plain"),
        [program, module, flavour] => (tool(program, module), flavour.as_str()),
        _ => bail!(
            "usage: lifecycle-scenario TOOL MODULE [plain|renders-env]\n       \
             lifecycle-scenario --policy-server URL CA_FILE API_DIR [plain|renders-env]\n       \
             lifecycle-scenario settings"
        ),
    };
    let renders_env = match flavour {
        "plain" => false,
        "renders-env" => true,
        other => bail!("unknown operator flavour '{other}' (plain or renders-env)"),
    };
    let report = play(target, renders_env)?;
    println!(
        "{} passed, {} failed",
        report.steps - report.failures,
        report.failures
    );
    if report.failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
