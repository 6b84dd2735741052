//! The scenario through the real policy-server: each step's lookups become the state of the
//! stand-in Kubernetes API (tools/fake-kube-api), the request is posted as an AdmissionReview v1
//! over HTTPS to `/validate/<policy id>`, and the API's request log is checked for what the host
//! asked: only GETs of the objects the step looks up (discovery once), SubjectAccessReviews for
//! the author's access, nothing fetched again while policy-server's 5 s cache holds it, and for
//! the Secret guard's list of the namespace's DittoServers one LIST (at the first step that
//! lists) and a WATCH, never a LIST again: policy-server's reflector answers from its store,
//! which the stand-in's watch keeps up to date. (A step's lookups are those it may make, as in a
//! replay session: a step that makes none, such as a label edit that leaves spec.s3 alone, is not
//! required to GET anything.)
//!
//! The API's state holds, besides each step's lookups, the objects stored at that step (the
//! DittoServer), so that what the watch reports changes only when they do.
//!
//! policy-server caches successful lookups for 5 s, keyed by object, so a step that needs a
//! changed answer for an object fetched less than 5 s ago first waits for that entry to expire
//! (errors are not cached; see policy-evaluator's `get_resource_cached`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::tool::{Lookup, Outcome};

/// How long after a successful fetch policy-server may still answer from its cache (5 s, and a
/// margin for the time between the API's answer and the cache's insertion).
const CACHED_UNTIL: f64 = 5.2;
/// Fetched less than this long ago with the same answer: policy-server must not ask again.
const SURELY_CACHED: f64 = 4.0;
const DISCOVERY: [&str; 2] = ["/api/v1", "/apis/dittofs.dittofs.com/v1alpha1"];
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

pub struct PolicyServer {
    /// `https://127.0.0.1:PORT`
    url: String,
    ca: PathBuf,
    /// The fake API's directory: `api-state.json` (written here), `api-requests.jsonl` (read).
    api_dir: PathBuf,
    workdir: PathBuf,
    runs: usize,
    /// Lines of the request log already checked.
    log_lines: usize,
    /// Per object path: the answer last fetched successfully (`None`: unknown, fetched before
    /// this run) and when.
    fetched: BTreeMap<String, (Option<Value>, f64)>,
    discovered: BTreeSet<String>,
    /// Collections listed, and watched, by policy-server's reflectors.
    listed: BTreeSet<String>,
    watched: BTreeSet<String>,
    /// Seconds spent waiting for cache entries to expire.
    pub waited: f64,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn collection_path(api_version: &str, kind: &str, namespace: &str) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    match api_version {
        "v1" => format!("/api/v1/namespaces/{namespace}/{plural}"),
        group_version => format!("/apis/{group_version}/namespaces/{namespace}/{plural}"),
    }
}

fn object_path(api_version: &str, kind: &str, namespace: &str, name: &str) -> String {
    format!("{}/{name}", collection_path(api_version, kind, namespace))
}

/// The path of a stored object, by its own apiVersion, kind, namespace and name.
fn stored_path(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    object_path(
        text("/apiVersion"),
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// What one step asks of the API: its state, the GETs it may make with their answers (`None`:
/// an error, which policy-server does not cache), the SubjectAccessReviews it may post, and the
/// collections it may list.
struct StepState {
    state: Value,
    gets: BTreeMap<String, Option<Value>>,
    expected_reviews: Vec<Value>,
    lists: BTreeSet<String>,
}

/// The fake API's state for one step whose stored objects are `stored`.
fn state_for(lookups: &[Lookup], stored: &[Value]) -> StepState {
    let mut objects: serde_json::Map<String, Value> = stored
        .iter()
        .map(|object| (stored_path(object), object.clone()))
        .collect();
    let mut lists = BTreeSet::new();
    let mut forbidden = serde_json::Map::new();
    let mut faults = serde_json::Map::new();
    let mut reviews = Vec::new();
    let mut gets = BTreeMap::new();
    let mut expected_reviews = Vec::new();
    for lookup in lookups {
        match lookup {
            Lookup::Get {
                api_version,
                kind,
                namespace,
                name,
                answer,
                ..
            } => {
                let path = object_path(api_version, kind, namespace, name);
                match answer {
                    Ok(object) => {
                        objects.insert(path.clone(), object.clone());
                        gets.insert(path, Some(object.clone()));
                    }
                    Err(text) => {
                        if text.contains(" is forbidden: ") {
                            // The API server's sentence is the fake's; keep the RBAC detail.
                            let detail = text
                                .split_once(": RBAC: ")
                                .map(|(_, rbac)| {
                                    format!("RBAC: {}", rbac.trim_end_matches(": Forbidden"))
                                })
                                .unwrap_or_default();
                            forbidden.insert(path.clone(), json!(detail));
                        } else if !text.starts_with("Cannot find ") {
                            faults.insert(
                                path.clone(),
                                json!({"status": 500, "reason": "InternalError", "message": text}),
                            );
                        }
                        gets.insert(path, None);
                    }
                }
            }
            Lookup::List {
                api_version,
                kind,
                namespace,
                items,
                ..
            } => {
                lists.insert(collection_path(api_version, kind, namespace));
                for item in items {
                    objects.insert(stored_path(item), item.clone());
                }
            }
            Lookup::MayGetSecret {
                user,
                groups,
                namespace,
                name,
                answer,
            } => {
                match answer {
                    Ok(status) => reviews.push(
                        json!({"user": user, "namespace": namespace, "name": name, "status": status}),
                    ),
                    Err(text) => {
                        faults.insert(
                            ACCESS_REVIEWS.to_owned(),
                            json!({"status": 500, "reason": "InternalError", "message": text}),
                        );
                    }
                }
                expected_reviews.push(json!({
                    "groups": groups, "user": user,
                    "resourceAttributes": {"group": "", "name": name, "namespace": namespace,
                                           "resource": "secrets", "verb": "get", "version": "v1"}}));
            }
        }
    }
    let state = json!({"objects": objects, "forbidden": forbidden, "faults": faults,
                       "accessReviews": reviews,
                       "accessReviewDefault": {"allowed": false, "reason": "fake: no rule for this review"}});
    StepState {
        state,
        gets,
        expected_reviews,
        lists,
    }
}

/// The policy reads the owning DittoServer with `disable_cache`: policy-server asks the API
/// every time, whatever it holds.
fn bypasses_cache(path: &str) -> bool {
    path.contains("/dittoservers/")
}

impl PolicyServer {
    pub fn new(url: String, ca: PathBuf, api_dir: PathBuf, workdir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let mut server = Self {
            url,
            ca,
            api_dir,
            workdir,
            runs: 0,
            log_lines: 0,
            fetched: BTreeMap::new(),
            discovered: BTreeSet::new(),
            listed: BTreeSet::new(),
            watched: BTreeSet::new(),
            waited: 0.0,
        };
        // What policy-server fetched before this run (an earlier scenario on the same server)
        // may still be in its cache, with answers unknown here.
        for entry in server.new_requests()? {
            let path = entry["path"].as_str().unwrap_or_default().to_owned();
            if entry["method"] == "GET" && entry["status"] == 200 {
                if let Some(watch) = is_watch(&entry) {
                    let seen = if watch {
                        &mut server.watched
                    } else {
                        &mut server.listed
                    };
                    seen.insert(path);
                } else if DISCOVERY.contains(&path.as_str()) {
                    server.discovered.insert(path);
                } else {
                    let at = entry["t"].as_f64().unwrap_or_default();
                    server.fetched.insert(path, (None, at));
                }
            }
        }
        Ok(server)
    }

    /// The request log's lines not read yet.
    fn new_requests(&mut self) -> Result<Vec<Value>> {
        let path = self.api_dir.join("api-requests.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error).context(format!("cannot read {}", path.display())),
        };
        let lines: Vec<&str> = text.lines().collect();
        let fresh = lines
            .get(self.log_lines..)
            .unwrap_or_default()
            .iter()
            .map(|line| serde_json::from_str(line).with_context(|| format!("bad log line {line}")))
            .collect::<Result<Vec<Value>>>()?;
        self.log_lines = lines.len();
        Ok(fresh)
    }

    /// The text the policy quotes for an API error with `message`: kube-rs' rendering of the
    /// Status the API server sent, as policy-server hands it to the guest, less the Debug dump
    /// of that Status, which the policy cuts.
    pub fn api_error_quote(message: &str) -> String {
        format!("ApiError: {message}: InternalError)")
    }

    pub fn evaluate(
        &mut self,
        request: &Value,
        lookups: &[Lookup],
        stored: &[Value],
    ) -> Result<Outcome> {
        self.runs += 1;
        let step = state_for(lookups, stored);
        let gets = &step.gets;

        // Wait until no cached answer can stand in for a changed one.
        let mut until: f64 = 0.0;
        let mut why = Vec::new();
        for (path, answer) in gets.iter().filter(|(path, _)| !bypasses_cache(path)) {
            if let Some((cached, at)) = self.fetched.get(path) {
                let same = cached.is_some() && cached == answer;
                if !same && now() - at < CACHED_UNTIL {
                    until = until.max(at + CACHED_UNTIL);
                    why.push(path.rsplit('/').next().unwrap_or_default().to_owned());
                }
            }
        }
        let wait = until - now();
        if wait > 0.0 {
            println!(
                "# waiting {wait:.1} s for policy-server's cached {} to expire",
                why.join(", ")
            );
            std::thread::sleep(Duration::from_secs_f64(wait));
            self.waited += wait;
        }
        let started = now();
        // Fetched this recently with the same answer: policy-server answers from its cache.
        let cached: BTreeSet<&String> = gets
            .iter()
            .filter(|(path, _)| !bypasses_cache(path))
            .filter(|(path, answer)| {
                self.fetched.get(*path).is_some_and(|(cached, at)| {
                    cached.is_some() && cached == *answer && started - at < SURELY_CACHED
                })
            })
            .map(|(path, _)| path)
            .collect();

        let state_path = self.api_dir.join("api-state.json");
        let tmp = self.api_dir.join("api-state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&step.state)?)?;
        std::fs::rename(&tmp, &state_path)?;
        self.new_requests()?; // anything logged before this step is not its doing

        let kind = request["kind"]["kind"].as_str().unwrap_or_default();
        let policy = match kind {
            "DittoServer" => "clusterwide-dittofs-s3-validate",
            "Secret" => "clusterwide-dittofs-s3-secret-guard",
            _ => "clusterwide-dittofs-s3-inject",
        };
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                            "request": request});
        let review_path = self.workdir.join(format!("review-{:02}.json", self.runs));
        let response_path = self.workdir.join(format!("response-{:02}.json", self.runs));
        std::fs::write(&review_path, serde_json::to_vec(&review)?)?;
        let output = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "-H",
                "Content-Type: application/json",
            ])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--data-binary")
            .arg(format!("@{}", review_path.display()))
            .arg("-o")
            .arg(&response_path)
            .args(["-w", "%{http_code}"])
            .arg(format!("{}/validate/{policy}", self.url))
            .output()
            .context("cannot run curl")?;
        let code = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || code != "200" {
            bail!(
                "POST /validate/{policy}: HTTP {code} {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let body = std::fs::read_to_string(&response_path)?;
        let review: Value =
            serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;

        let mut problems = self.check_requests(&step, &cached)?;
        problems.extend(check_review(request, &review));
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }

        Outcome::from_response(request, &review["response"], body)
    }

    /// What the host asked the API for during the step.
    fn check_requests(
        &mut self,
        step: &StepState,
        cached: &BTreeSet<&String>,
    ) -> Result<Vec<String>> {
        let gets = &step.gets;
        let mut problems = Vec::new();
        let mut got = BTreeSet::new();
        for entry in self.new_requests()? {
            let method = entry["method"].as_str().unwrap_or_default();
            let path = entry["path"].as_str().unwrap_or_default().to_owned();
            let at = entry["t"].as_f64().unwrap_or_default();
            match method {
                "GET" if DISCOVERY.contains(&path.as_str()) => {
                    if !self.discovered.insert(path.clone()) {
                        problems.push(format!("discovery read again: GET {path}"));
                    }
                }
                "GET" if gets.contains_key(&path) && entry["query"] == "" => {
                    // A failed read is not cached: the policy may read that object again (the
                    // endpoint of the Secret a kept workload names).
                    let failed = gets.get(&path).is_some_and(Option::is_none);
                    if !got.insert(path.clone()) && !failed {
                        problems.push(format!("GET {path} twice in one review"));
                    }
                    if cached.contains(&path) {
                        problems.push(format!("GET {path} although policy-server had it cached"));
                    }
                    if entry["status"] == 200 {
                        let answer = gets.get(&path).cloned().flatten();
                        self.fetched.insert(path, (answer, at));
                    }
                }
                "GET" if step.lists.contains(&path) || self.listed.contains(&path) => {
                    match is_watch(&entry) {
                        Some(true) if !self.listed.contains(&path) => {
                            problems.push(format!("WATCH of {path} before any LIST"));
                        }
                        // kube-rs watches again when a watch ends (timeoutSeconds): allowed.
                        Some(true) => {
                            self.watched.insert(path.clone());
                        }
                        Some(false) if !step.lists.contains(&path) => {
                            problems.push(format!("LIST of {path} in a step that lists nothing"));
                        }
                        Some(false) if !self.listed.insert(path.clone()) => problems.push(format!(
                            "{path} listed again: the reflector should answer from its watch"
                        )),
                        Some(_) => {}
                        None => problems.push(format!(
                            "unexpected query of {path}: {}",
                            entry["query"].as_str().unwrap_or_default()
                        )),
                    }
                }
                "POST" if path == ACCESS_REVIEWS => {
                    let spec = &entry["body"]["spec"];
                    if !step.expected_reviews.contains(spec) {
                        problems.push(format!("unexpected SubjectAccessReview {spec}"));
                    }
                }
                _ => problems.push(format!(
                    "unexpected request to the API: {method} {path}?{}",
                    entry["query"].as_str().unwrap_or_default()
                )),
            }
        }
        for path in &step.lists {
            if !self.listed.contains(path) {
                problems.push(format!("policy-server never listed {path}"));
            }
        }
        Ok(problems)
    }
}

/// For a request of a collection: whether it is a WATCH (`Some(true)`) or a LIST
/// (`Some(false)`, kube-rs' paged form); `None` for any other query.
fn is_watch(entry: &Value) -> Option<bool> {
    let query = entry["query"].as_str().unwrap_or_default();
    let params: BTreeSet<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if params.contains("watch=true") {
        Some(true)
    } else if params.iter().any(|p| p.starts_with("limit=")) {
        Some(false)
    } else {
        None
    }
}

/// The AdmissionReview envelope and the response fields a policy's verdict does not cover.
fn check_review(request: &Value, review: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        problems.push(format!("not an AdmissionReview v1: {review}"));
    }
    let response = &review["response"];
    if response["uid"] != request["uid"] {
        problems.push(format!(
            "response uid {} for request uid {}",
            response["uid"], request["uid"]
        ));
    }
    match (
        response["patch"].is_string(),
        response["patchType"].as_str(),
    ) {
        (true, Some("JSONPatch")) | (false, None) => {}
        (_, patch_type) => problems.push(format!(
            "patchType {patch_type:?} with patch {}",
            response["patch"]
        )),
    }
    if response["status"]["code"] == 500 {
        problems.push(format!("an internal error: {}", response["status"]));
    }
    if response["allowed"] == false && !response["status"]["message"].is_string() {
        problems.push("a rejection without a message".to_owned());
    }
    if !response["auditAnnotations"].is_null() {
        problems.push(format!(
            "audit annotations {}",
            response["auditAnnotations"]
        ));
    }
    problems
}

impl PolicyServer {
    /// Fails when the scenario left no trace in the API's log at all (a wrong API directory).
    pub fn finish(&self) -> Result<()> {
        if self.discovered.is_empty() && self.fetched.is_empty() {
            return Err(anyhow!(
                "the fake API in {} never saw policy-server",
                self.api_dir.display()
            ));
        }
        Ok(())
    }
}
