//! docs/messages.md lists every message the policy can give, as templates: every rejection and
//! warning that the policy's own decision function gives on the sample requests of test_data/
//! (each with every replay session and the settings variants of the e2e tests) must match a
//! documented template, and every documented template must be given at least once. A message
//! changed in the code, or a row changed in the docs, fails here.

#[allow(dead_code)]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use common::{read, repo_path};
use dittofs_s3_policy::admission::decide_payload;
use dittofs_s3_policy::cluster::{Cluster, Freshness, ListRef, LookupError, ObjectRef, Requester};
use dittofs_s3_policy::decision::Verdict;
use regex::Regex;
use serde_json::{Value, json};

/// One recorded host call of a replay session (`test_data/session-*.yml`).
struct Exchange {
    tag: String,
    request: Value,
    response: Value,
}

fn session(path: &Path) -> Vec<Exchange> {
    repo_checks::yaml_documents_at(path)
        .into_iter()
        .flat_map(|document| document.as_array().cloned().unwrap_or_default())
        .filter_map(|entry| {
            let text = entry["request"].as_str()?;
            let (tag, body) = text.split_once('\n').unwrap_or((text, ""));
            Some(Exchange {
                tag: tag.trim().to_owned(),
                request: serde_yaml::from_str(body).ok()?,
                response: entry["response"].clone(),
            })
        })
        .collect()
}

/// A cluster that answers from a replay session: each call takes the first unused exchange
/// that asks for the same object (kwctl insists on the recorded order; taking any matching
/// exchange reaches at least what kwctl reaches). An unmatched call is a host error, as in a
/// replay that runs out.
struct Replay {
    exchanges: Vec<Exchange>,
    used: RefCell<Vec<bool>>,
}

impl Replay {
    fn new(exchanges: Vec<Exchange>) -> Self {
        let used = RefCell::new(vec![false; exchanges.len()]);
        Self { exchanges, used }
    }

    fn take(&self, matches: impl Fn(&Exchange) -> bool) -> Option<&Exchange> {
        let mut used = self.used.borrow_mut();
        let index = (0..self.exchanges.len()).find(|&i| !used[i] && matches(&self.exchanges[i]))?;
        used[index] = true;
        Some(&self.exchanges[index])
    }
}

const NO_EXCHANGE: &str = "no recorded exchange left for this request";

/// The payload of `exchange`, or its error classified by `classify` as the policy's host does.
fn answer(
    exchange: Option<&Exchange>,
    classify: impl Fn(&str) -> LookupError,
) -> Result<String, LookupError> {
    let Some(exchange) = exchange else {
        return Err(classify(NO_EXCHANGE));
    };
    match exchange.response["type"].as_str() {
        Some("Success") => Ok(exchange.response["payload"]
            .as_str()
            .unwrap_or_default()
            .to_owned()),
        _ => Err(classify(
            exchange.response["message"].as_str().unwrap_or_default(),
        )),
    }
}

fn parsed(payload: &str) -> Result<Value, LookupError> {
    serde_json::from_str(payload)
        .map_err(|_| LookupError::Failed("the host answered with invalid JSON".to_owned()))
}

impl Cluster for Replay {
    fn fetch(
        &self,
        object: ObjectRef<'_>,
        _fields: &[String],
        _freshness: Freshness,
    ) -> Result<Value, LookupError> {
        let exchange = self.take(|e| {
            e.tag == "!KubernetesGetResource"
                && e.request["api_version"] == object.api_version
                && e.request["kind"] == object.kind
                && e.request["name"] == object.name
                && e.request["namespace"] == object.namespace
        });
        parsed(&answer(exchange, |message| {
            LookupError::from_host_message(object, message)
        })?)
    }

    fn fetch_list(&self, list: ListRef<'_>, _fields: &[String]) -> Result<Vec<u8>, LookupError> {
        let exchange = self.take(|e| {
            e.tag == "!KubernetesListResourceNamespace"
                && e.request["api_version"] == list.api_version
                && e.request["kind"] == list.kind
                && e.request["namespace"] == list.namespace
        });
        answer(exchange, LookupError::from_list_host_message).map(String::into_bytes)
    }

    fn review_access(
        &self,
        requester: &Requester<'_>,
        secret: ObjectRef<'_>,
    ) -> Result<bool, LookupError> {
        let exchange = self.take(|e| {
            let review = &e.request["request"];
            e.tag == "!KubernetesCanI"
                && review["user"] == requester.username
                && review["resource_attributes"]["name"] == secret.name
                && review["resource_attributes"]["namespace"] == secret.namespace
        });
        let payload = answer(exchange, |message| {
            LookupError::from_host_message(secret, message)
        })?;
        let status: Value = serde_json::from_str(&payload).map_err(|_| {
            LookupError::Failed("the host answered the access review with invalid JSON".to_owned())
        })?;
        Ok(status["allowed"] == json!(true) && status["denied"] != json!(true))
    }
}

fn files(dir: &str, prefix: &str, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    files.sort();
    files
}

/// The settings the e2e tests and the differential test use, valid and invalid.
const SETTINGS: &[&str] = &[
    "{}",
    r#"{"secretCheck":"reject"}"#,
    r#"{"secretCheck":"skip","secretAccessCheck":"skip"}"#,
    r#"{"secretAccessCheck":"warn","allowInsecureEndpoint":true}"#,
    r#"{"allowedEndpointHosts":["*.cubbit.eu"],"allowedRegions":["eu-west-1"]}"#,
    r#"{"allowedEndpointHosts":["example.com"],"allowedRegions":["fr-par"]}"#,
    r#"{"workloads":"verify"}"#,
    r#"{"workloads":"verify","onCredentialRoute":"warn"}"#,
    r#"{"workloads":"verify","secretCheck":"reject","allowedEndpointHosts":["s3.cubbit.eu"]}"#,
    r#"{"onEnvConflict":"overwrite"}"#,
    r#"{"onCredentialRoute":"warn"}"#,
    r#"{"containerName":"server","hashAnnotation":"example.com/h"}"#,
    r#"{"secretGuard":"warn"}"#,
    r#"{"secretCheck":"maybe"}"#,
];

/// Every message (`R: ` a rejection, `W: ` a warning) the policy gives on the corpus, with one
/// input that gives it.
fn produced() -> BTreeMap<String, String> {
    let mut requests = files("test_data", "", ".json");
    requests.retain(|path| !path.to_string_lossy().contains("expected-patch-"));
    requests.extend(files("test_data/hostile", "", ".json"));
    let mut sessions = files("test_data", "session-", ".yml");
    sessions.extend(files("test_data/hostile", "session-", ".yml"));
    let sessions: Vec<(String, Vec<Exchange>)> = sessions
        .iter()
        .map(|path| (path.display().to_string(), session(path)))
        .collect();
    let mut inputs: Vec<(String, Value)> = requests
        .iter()
        .filter_map(|request| {
            let text = std::fs::read_to_string(request).expect("request");
            // Not JSON at all: the host never sends such a payload.
            let json = serde_json::from_str::<Value>(&text).ok()?;
            Some((request.display().to_string(), json))
        })
        .collect();
    inputs.extend(derived_requests());
    let mut messages = BTreeMap::new();
    for (request, request_json) in &inputs {
        for settings in SETTINGS {
            let payload = format!(r#"{{"request":{request_json},"settings":{settings}}}"#);
            for (name, exchanges) in &sessions {
                let cluster = Replay::new(exchanges.iter().map(clone_exchange).collect());
                let decision = decide_payload(payload.as_bytes(), &cluster);
                let input = || format!("{request} + {name} + {settings}");
                if let Verdict::Reject(message) = &decision.verdict {
                    messages
                        .entry(format!("R: {message}"))
                        .or_insert_with(input);
                }
                for warning in &decision.warnings {
                    messages
                        .entry(format!("W: {warning}"))
                        .or_insert_with(input);
                }
            }
        }
    }
    messages
}

fn clone_exchange(exchange: &Exchange) -> Exchange {
    Exchange {
        tag: exchange.tag.clone(),
        request: exchange.request.clone(),
        response: exchange.response.clone(),
    }
}

/// Requests derived from the samples, for what no sample shows: a DittoServer that names a
/// DittoFS image which ignores the AWS_* variables, a StatefulSet UPDATE that changes the image.
fn derived_requests() -> Vec<(String, Value)> {
    let mut request: Value =
        serde_json::from_str(&read("test_data/dittoserver-sample-create.json")).expect("sample");
    request["object"]["spec"]["image"] = json!("marmos91c/dittofs:v0.13.0");
    let mut statefulset: Value =
        serde_json::from_str(&read("test_data/statefulset-update-injected.json")).expect("sample");
    statefulset["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("marmos91c/dittofs:v0.12.1");
    vec![
        (
            "dittoserver-sample-create.json with image v0.13.0".to_owned(),
            request,
        ),
        (
            "statefulset-update-injected.json with a new image".to_owned(),
            statefulset,
        ),
    ]
}

/// The message templates of docs/messages.md: the first code span of every row of its tables,
/// with the table's heading.
fn templates() -> Vec<(String, String)> {
    let doc = read("docs/messages.md");
    let mut heading = String::new();
    let mut templates = Vec::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix('#') {
            heading = title.trim_start_matches('#').trim().to_owned();
        } else if line.starts_with("| `") {
            let cell = line.split(" | ").next().unwrap_or_default();
            let template = cell.trim_start_matches("| `");
            let template = &template[..template.find('`').expect("closing backtick")];
            templates.push((heading.clone(), template.to_owned()));
        }
    }
    templates
}

const HOST_TEXT: &str = r"[^()]*(?:\([^()]*\)[^()]*)*";

/// A template as a regular expression (see the placeholders in docs/messages.md).
fn pattern(template: &str, routes: &str, problems: &str) -> String {
    let template = template.strip_suffix('…').unwrap_or(template);
    let mut pattern = regex::escape(template);
    let lookup = format!(r"(?:access denied \({HOST_TEXT}\)|lookup failed \({HOST_TEXT}\))");
    for (placeholder, replacement) in [
        ("\"…\"", r#""[^"]*""#.to_owned()),
        (
            "<dittoserver>",
            r#"(?:DittoServer "[^"]*"|unnamed DittoServer)"#.to_owned(),
        ),
        ("<kind>", "(?:Pod|StatefulSet)".to_owned()),
        (
            "<secret>",
            r#"Secret "[^"]*" in namespace "[^"]*""#.to_owned(),
        ),
        (
            "<user>",
            r#"(?:user "[^"]*"|the unnamed user of groups \[[^\]]*\])"#.to_owned(),
        ),
        ("<names>", r#""[^"]*"(?:, "[^"]*")*"#.to_owned()),
        (
            "<fields>",
            r"[A-Za-z0-9_.\[\]-]+(?:, [A-Za-z0-9_.\[\]-]+)*".to_owned(),
        ),
        ("<field>", r"[A-Za-z0-9_./\[\]-]+".to_owned()),
        (
            "<type>",
            "(?:null|a boolean|a number|a string|an array|an object)".to_owned(),
        ),
        ("<list>", r"[^\]]*".to_owned()),
        ("<version>", "[0-9A-Za-z.+-]+".to_owned()),
        (
            "<VARS>",
            "[A-Z_][A-Z0-9_]*(?:, [A-Z_][A-Z0-9_]*)*".to_owned(),
        ),
        ("<VAR>", "[A-Z_][A-Z0-9_]*".to_owned()),
        ("<n>", "[0-9]+".to_owned()),
        ("<name>", "[a-z0-9.-]+".to_owned()),
        ("<path>", "[^ ;]+".to_owned()),
        ("<ref>", "(?:secretRef|configMapRef)".to_owned()),
        ("<host text>", HOST_TEXT.to_owned()),
        ("<lookup>", lookup),
        ("<route>", format!("(?:{routes})(?:; (?:{routes}))*")),
        ("<problem>", format!("(?:{problems})")),
        ("<text>", ".*".to_owned()),
        ("…", "[^;]*".to_owned()),
    ] {
        pattern = pattern.replace(&regex::escape(placeholder), &replacement);
        pattern = pattern.replace(placeholder, &replacement);
    }
    pattern
}

/// Each template's pattern, beside the template, and the patterns of the beginnings of every
/// template.
fn patterns() -> (Vec<(String, String)>, Vec<String>) {
    let templates = templates();
    let section = |name: &str| {
        templates
            .iter()
            .filter(|(heading, _)| heading == name)
            .map(|(_, template)| pattern(template, "$^", "$^"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let (routes, problems) = (section("Credential routes"), section("Field rules"));
    assert!(
        !routes.is_empty() && !problems.is_empty(),
        "docs/messages.md lost a section"
    );
    let whole = templates
        .iter()
        .map(|(_, template)| (template.clone(), pattern(template, &routes, &problems)))
        .collect();
    let beginnings = templates
        .iter()
        .flat_map(|(_, template)| beginnings(template, &routes, &problems))
        .collect();
    (whole, beginnings)
}

/// The beginnings of a template, cut at a space outside its placeholders (at least 12
/// characters), as patterns followed by anything: how a message cut at Kubernetes' limit ends.
fn beginnings(template: &str, routes: &str, problems: &str) -> Vec<String> {
    let (mut depth, mut quoted) = (0, false);
    let mut cuts = Vec::new();
    for (at, c) in template.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            '"' => quoted = !quoted,
            ' ' if depth == 0 && !quoted && at >= 12 => cuts.push(at),
            _ => {}
        }
    }
    cuts.into_iter()
        .map(|at| format!("{}.*", pattern(&template[..at], routes, problems)))
        .collect()
}

/// Whether `message` is made of documented templates, joined as docs/messages.md says; a
/// message cut at Kubernetes' limit (ending in `…`) may end in the beginning of one.
fn explained(message: &str, whole: &Regex, truncated: &Regex) -> bool {
    match message.strip_suffix('…') {
        Some(cut) => truncated.is_match(cut),
        None => whole.is_match(message),
    }
}

#[test]
fn every_message_is_documented_and_every_documented_message_is_given() {
    let (patterns, beginnings) = patterns();
    let any = patterns
        .iter()
        .map(|(_, pattern)| format!("(?:{pattern})"))
        .collect::<Vec<_>>()
        .join("|");
    let tiles = format!(r"(?:{any})(?:(?:; |\. Also, | )?(?:{any}))*");
    let whole = Regex::new(&format!("^{tiles}$")).expect("templates make a regular expression");
    let beginning = beginnings.join("|");
    let truncated = regex::RegexBuilder::new(&format!(
        r"^(?:{tiles}(?:(?:; |\. Also, | )?(?:{beginning}))?|{beginning})$"
    ))
    .size_limit(1 << 28)
    .dfa_size_limit(1 << 28)
    .build()
    .expect("templates make a regular expression");
    let produced = produced();
    assert!(produced.len() > 100, "the corpus gave too few messages");
    let undocumented: Vec<String> = produced
        .iter()
        .filter(|(message, _)| !explained(&message[3..], &whole, &truncated))
        .map(|(message, input)| format!("{message}\n    from {input}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "{} messages are not made of the templates of docs/messages.md:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
    let never: Vec<&String> = patterns
        .iter()
        .filter(|(_, pattern)| {
            let found = Regex::new(pattern).expect("template");
            !produced.keys().any(|message| found.is_match(message))
        })
        .map(|(template, _)| template)
        .collect();
    assert!(
        never.is_empty(),
        "templates of docs/messages.md that no request of the corpus produces (a stale row, \
         or a message whose text changed): {never:#?}"
    );
}
