//! Credential routes: definitions in the DittoFS container that send the injected credentials
//! somewhere other than the checked endpoint, or change what the S3 client trusts.
//!
//! The endpoint rules only see `AWS_ENDPOINT_URL` read from a Secret (after a failed lookup the
//! object is admitted as it came, and only such an entry is checked, so any other definition
//! of it is a route). DittoFS's S3 client (aws-sdk-go-v2) also reads `AWS_ENDPOINT_URL_S3`
//! (wins over it), `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (AWS's own endpoint instead), the
//! `endpoint_url` of the config file or of a credentials-file section merged into it (when
//! `AWS_ENDPOINT_URL` is unset; the files are found through `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, `HOME` or a mount at a `.aws` directory, the profile through
//! `AWS_PROFILE` / `AWS_DEFAULT_PROFILE`), `AWS_CA_BUNDLE` (today it fails the client), and
//! Go's trusted roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or a mount over `/etc/ssl` or
//! `/etc/pki`), so a man-in-the-middle endpoint can pass. The pod spec can redirect the
//! endpoint's host name (`hostAliases`, `dnsConfig.nameservers` or `searches`, `dnsPolicy: None`).
//! Kubernetes adds ways around the managed entries:
//! `envFrom` (applied before `env`, so it survives where the optional endpoint reference is
//! skipped, and its source can change after admission), `$(NAME)` expansion that copies a
//! credential elsewhere, and repeated definitions (kubelet uses the last one, the policy's
//! endpoint check after a failed lookup reads the first).
//! A shell in `command` reading `$AWS_SECRET_ACCESS_KEY` is code, not a definition: out of reach.

use std::fmt;

use serde_json::Value;

use super::object::{container_slot, env_path};
use super::{WorkloadRequest, env};
use crate::decision::{Decision, Verdict};
use crate::edits::Edits;
use crate::settings::{OnCredentialRoute, Settings};
use crate::value::At;

/// Variables that move the S3 endpoint or the trusted roots, with what each does.
pub const ROUTE_VARIABLES: [(&str, &str); 10] = [
    ("AWS_ENDPOINT_URL_S3", "overrides AWS_ENDPOINT_URL"),
    (
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "drops the configured endpoint",
    ),
    (
        "AWS_CONFIG_FILE",
        "can set endpoint_url when AWS_ENDPOINT_URL is unset",
    ),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "can set endpoint_url when AWS_ENDPOINT_URL is unset",
    ),
    (
        "AWS_PROFILE",
        "selects a config profile, whose endpoint_url can apply",
    ),
    (
        "AWS_DEFAULT_PROFILE",
        "selects a config profile, whose endpoint_url can apply",
    ),
    ("HOME", "moves ~/.aws/config"),
    (
        "AWS_CA_BUNDLE",
        "sets the client's trusted roots (DittoFS v0.12.0 then fails to start the store)",
    ),
    ("SSL_CERT_FILE", "replaces the trusted roots"),
    ("SSL_CERT_DIR", "replaces the trusted roots"),
];

/// The variables whose values are the credentials themselves.
const CREDENTIALS: [&str; 2] = [env::ACCESS_KEY_ID, env::SECRET_ACCESS_KEY];

/// What an `AWS_ENDPOINT_URL` entry that is not a `secretKeyRef` does: after a failed lookup
/// the object is admitted as it came, and only an endpoint read from a Secret is checked.
const UNCHECKED_ENDPOINT: &str = "is not read from a Secret, so no endpoint rule checked it";

/// Directories holding the trusted roots Go reads (`/etc/ssl/certs/ca-certificates.crt`,
/// `/etc/pki/tls/certs/ca-bundle.crt`, `/etc/ssl/cert.pem`, ...): a mount over one, or over a
/// directory containing one, replaces them.
const TRUST_STORES: [[&str; 2]; 2] = [["etc", "ssl"], ["etc", "pki"]];

/// The directory of the AWS config and credentials files (`~/.aws`).
const AWS_DIRECTORY: &str = ".aws";

/// The consequence of any route (trusting other roots lets another endpoint pass), for the
/// messages.
const CONSEQUENCE: &str = "can send its S3 credentials elsewhere";

/// One credential route: where it is in the container and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where, e.g. `env[3] AWS_ENDPOINT_URL_S3`, `envFrom[0] (configMapRef "x")`, `args[2]`,
    /// `volumeMounts[2] /etc/ssl/certs`, or in the pod spec `hostAliases`.
    pub place: String,
    /// What it does, e.g. `overrides AWS_ENDPOINT_URL`.
    pub effect: String,
}

/// Longest place quoted: places carry the author's text (names, paths), never echoed whole.
const PLACE_LIMIT: usize = 96;

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = crate::decision::truncate(&self.place, PLACE_LIMIT);
        write!(f, "{place} {}", self.effect)
    }
}

/// The names `text` references as `$(NAME)`, read the way Kubernetes expands them: `$$` is an
/// escaped `$` (so `$$(X)` is the text `$(X)`), and a `$(` without a closing `)` is text.
pub fn references(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut names = Vec::new();
    let mut cursor = 0;
    while cursor + 1 < bytes.len() {
        if bytes.get(cursor) != Some(&b'$') {
            cursor += 1;
            continue;
        }
        if bytes.get(cursor + 1) == Some(&b'(') {
            let rest = text.get(cursor + 2..).unwrap_or_default();
            if let Some(end) = rest.find(')') {
                names.push(rest.get(..end).unwrap_or_default());
                cursor += end + 3;
                continue;
            }
        }
        // `$$`, `$x` or an unclosed `$(`: both characters are text.
        cursor += 2;
    }
    names
}

/// The credential variables `text` copies, comma-separated, if any.
fn copied_credentials(text: &str) -> Option<String> {
    let names = references(text);
    let copied: Vec<&str> = CREDENTIALS
        .into_iter()
        .filter(|credential| names.contains(credential))
        .collect();
    (!copied.is_empty()).then(|| format!("copies {}", copied.join(", ")))
}

fn strings_of<'v>(container: &'v Value, field: &str) -> impl Iterator<Item = (usize, &'v str)> {
    container
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, item)| item.as_str().map(|text| (index, text)))
}

/// Every credential route of a container (raw JSON) whose env is `env` (its own, or what the
/// policy gives it), in the order of its fields.
pub fn credential_routes(container: &Value, env: &[Value]) -> Vec<Route> {
    let mut routes = Vec::new();
    // The named entries, each name read once.
    let entries: Vec<NamedEntry<'_>> = env
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| Some((index, env::entry_name(entry)?, entry)))
        .collect();
    for &(index, name, entry) in &entries {
        if let Some((_, effect)) = ROUTE_VARIABLES.iter().find(|(route, _)| *route == name) {
            routes.push(Route {
                place: format!("env[{index}] {name}"),
                effect: (*effect).to_owned(),
            });
        }
        if name == env::ENDPOINT_URL
            && !entry
                .at(["valueFrom", "secretKeyRef"])
                .is_some_and(Value::is_object)
        {
            routes.push(Route {
                place: format!("env[{index}] {name}"),
                effect: UNCHECKED_ENDPOINT.to_owned(),
            });
        }
        if let Some(effect) = entry
            .get("value")
            .and_then(Value::as_str)
            .and_then(copied_credentials)
        {
            routes.push(Route {
                place: format!("env[{index}] {name}"),
                effect,
            });
        }
    }
    routes.extend(repeated_definitions(&entries));
    for (index, source) in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        routes.push(Route {
            place: format!("envFrom[{index}]{}", env_from_source(source)),
            effect: "can set any variable, even later".to_owned(),
        });
    }
    for field in ["command", "args"] {
        for (index, text) in strings_of(container, field) {
            if let Some(effect) = copied_credentials(text) {
                routes.push(Route {
                    place: format!("{field}[{index}]"),
                    effect,
                });
            }
        }
    }
    for (index, mount) in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some((path, effect)) = mount
            .get("mountPath")
            .and_then(Value::as_str)
            .and_then(|path| mount_effect(path).map(|effect| (path, effect)))
        {
            routes.push(Route {
                place: format!("volumeMounts[{index}] {path}"),
                effect: effect.to_owned(),
            });
        }
        if let Some(effect) = mount
            .get("subPathExpr")
            .and_then(Value::as_str)
            .and_then(copied_credentials)
        {
            routes.push(Route {
                place: format!("volumeMounts[{index}].subPathExpr"),
                effect,
            });
        }
    }
    routes
}

/// The components of a mount path as the runtime resolves it: empty and `.` components
/// dropped, `..` going up (never above the root).
fn path_components(path: &str) -> Vec<&str> {
    let mut components = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                components.pop();
            }
            _ => components.push(component),
        }
    }
    components
}

/// What a volume mounted at `path` does to the S3 client, if anything: a mount at, under or
/// above a trust store replaces the trusted roots; one at or under a `.aws` directory
/// supplies the AWS config (and credentials file).
fn mount_effect(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return None;
    }
    let components = path_components(path);
    let over_trust_store = TRUST_STORES.iter().any(|store| {
        components
            .iter()
            .zip(store)
            .all(|(component, stored)| component == stored)
    });
    if over_trust_store {
        Some("replaces the trusted roots")
    } else if components.contains(&AWS_DIRECTORY) {
        Some("supplies an AWS config")
    } else {
        None
    }
}

/// The routes of a pod spec (raw JSON): fields that change where the endpoint's host name
/// leads, so credentials checked against it can reach another address.
pub fn pod_routes(pod_spec: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    let listed = |field: Option<&Value>| {
        field
            .and_then(Value::as_array)
            .is_some_and(|items| !items.is_empty())
    };
    if listed(pod_spec.get("hostAliases")) {
        routes.push(Route {
            place: "hostAliases".to_owned(),
            effect: "can point the endpoint's host name at another address".to_owned(),
        });
    }
    let mut resolvers = Vec::new();
    if pod_spec.get("dnsPolicy").and_then(Value::as_str) == Some("None") {
        resolvers.push("dnsPolicy None");
    }
    if listed(pod_spec.at(["dnsConfig", "nameservers"])) {
        resolvers.push("dnsConfig.nameservers");
    }
    // A search domain is tried before the endpoint's own name (with enough ndots).
    if listed(pod_spec.at(["dnsConfig", "searches"])) {
        resolvers.push("dnsConfig.searches");
    }
    if !resolvers.is_empty() {
        routes.push(Route {
            place: resolvers.join(", "),
            effect: "chooses who resolves the endpoint's host name".to_owned(),
        });
    }
    routes
}

/// ` (configMapRef "x")` or ` (secretRef "y")`: which source an `envFrom` entry reads.
fn env_from_source(source: &Value) -> String {
    ["configMapRef", "secretRef"]
        .into_iter()
        .find_map(|kind| {
            let reference = source.get(kind)?;
            Some(match reference.get("name").and_then(Value::as_str) {
                Some(name) => format!(" ({kind} \"{name}\")"),
                None => format!(" ({kind})"),
            })
        })
        .unwrap_or_default()
}

/// An env entry with a name: its index, its name and the entry.
type NamedEntry<'v> = (usize, &'v str, &'v Value);

/// Managed variables defined more than once in ways that can differ: kubelet uses the last,
/// the endpoint check after a failed lookup reads the first. Copies of one definition (what
/// `env::merge` leaves of duplicates) agree, unless an expansion makes them depend on position.
fn repeated_definitions(entries: &[NamedEntry<'_>]) -> Vec<Route> {
    let mut routes = Vec::new();
    for name in env::MANAGED {
        let defined = || entries.iter().filter(move |(_, named, _)| *named == name);
        let mut definitions = defined();
        let (Some(&(_, _, first)), Some(_)) = (definitions.next(), definitions.next()) else {
            continue;
        };
        let expands = |entry: &Value| {
            entry
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(|value| !references(value).is_empty())
        };
        let agree =
            defined().all(|(_, _, entry)| env::same_definition(entry, first) && !expands(entry));
        if agree {
            continue;
        }
        let places: Vec<String> = defined()
            .map(|(index, _, _)| format!("env[{index}]"))
            .collect();
        routes.push(Route {
            place: format!("{} {name}", places.join(", ")),
            effect: "differ, and the last one applies".to_owned(),
        });
    }
    routes
}

/// Whether an `env` list gives its container the credentials.
fn holds_credentials(env: &[Value]) -> bool {
    env.iter()
        .any(|entry| env::entry_name(entry).is_some_and(|name| CREDENTIALS.contains(&name)))
}

/// Which review a decision came from: an injection's rejection stands as it is (nothing is
/// admitted), a verification's rejection also lists the routes so one fix covers both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Review {
    Inject,
    Verify,
}

/// Weighs the routes of the `dittofs` container and of its pod spec as they will be admitted
/// (with the decision's edits, else as requested) against `onCredentialRoute`; every accepting
/// path of a review goes through here, so none admits a route unnoticed.
pub(super) fn weigh(
    request: &WorkloadRequest<'_>,
    settings: &Settings,
    decision: Decision<Edits>,
    review: Review,
) -> Decision<Edits> {
    let unedited = Edits::default();
    let edits = match &decision.verdict {
        Verdict::Mutate(edits) => edits,
        Verdict::Accept => &unedited,
        Verdict::Reject(_) if review == Review::Verify => &unedited,
        Verdict::Reject(_) => return decision,
    };
    let object = request.object;
    let slot = container_slot(object, request.kind, &settings.container_name)
        .ok()
        .flatten();
    let admitted_env =
        slot.and_then(|(index, _)| edits.view(object, &env_path(request.kind, index)));
    let env = admitted_env
        .as_deref()
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let routes = match slot {
        Some((_, container)) if holds_credentials(env) => {
            let mut routes = credential_routes(container, env);
            // Edits change only the container's env and the pod's annotations.
            routes.extend(
                object
                    .at(request.kind.pod_spec_path())
                    .map(pod_routes)
                    .unwrap_or_default(),
            );
            routes
        }
        _ => Vec::new(),
    };
    if routes.is_empty() {
        return decision;
    }
    let listed: Vec<String> = routes.iter().map(ToString::to_string).collect();
    let listed = listed.join("; ");
    let container = format!("container \"{}\"", settings.container_name);
    let what = request.describe();
    if settings.on_credential_route == OnCredentialRoute::Warn {
        return decision.with_warnings(vec![format!(
            "{what}: {container} {CONSEQUENCE} (onCredentialRoute: warn): {listed}"
        )]);
    }
    let refusal = format!(
        "{container} {CONSEQUENCE}: {listed} (onCredentialRoute: reject); remove {}, or set \
         onCredentialRoute: warn",
        if routes.len() == 1 { "it" } else { "them" }
    );
    match decision.verdict {
        Verdict::Reject(message) => Decision {
            verdict: Verdict::Reject(format!("{message}. Also, {refusal}")),
            warnings: decision.warnings,
        },
        // The mutation and its warnings describe an admission that does not happen.
        Verdict::Accept | Verdict::Mutate(_) => Decision::reject(format!("{what}: {refusal}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadKind;
    use serde_json::json;

    fn described(container: &Value) -> Vec<String> {
        let env = container.get("env").and_then(Value::as_array);
        credential_routes(container, env.map(Vec::as_slice).unwrap_or_default())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn references_follow_kubernetes_expansion() {
        assert_eq!(references("$(A)"), ["A"]);
        assert_eq!(references("x$(A)y$(B_2)"), ["A", "B_2"]);
        assert!(
            references("$$(A)").is_empty(),
            "an escaped reference is text"
        );
        assert_eq!(references("$$$(A)"), ["A"], "an escaped $ then a reference");
        assert!(references("$(A").is_empty(), "unclosed");
        assert_eq!(
            references("$($(A)"),
            ["$(A"],
            "the first ) closes the first ("
        );
        assert!(
            references("$A ${A} $").is_empty(),
            "shell syntax is not expanded"
        );
        assert_eq!(references("é$(A)é"), ["A"]);
        assert!(references("").is_empty());
        assert_eq!(references("$x$(A)"), ["A"]);
    }

    #[test]
    fn each_route_variable_is_named_with_its_effect() {
        let container = json!({"name": "dittofs", "env": [
            {"name": "LOG", "value": "x"},
            {"name": "AWS_ENDPOINT_URL_S3", "value": "https://elsewhere"},
            {"name": "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "value": "true"},
            {"name": "AWS_CONFIG_FILE", "value": "/tmp/config"},
            {"name": "AWS_PROFILE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "p"}}},
            {"name": "AWS_CA_BUNDLE", "value": "/ca.pem"},
            {"name": "SSL_CERT_FILE", "value": "/ca.pem"},
            {"name": "SSL_CERT_DIR", "value": "/certs"},
            {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/tmp/credentials"},
            {"name": "AWS_DEFAULT_PROFILE", "value": "other"},
            {"name": "HOME", "value": "/tmp"},
        ]});
        assert_eq!(
            described(&container),
            [
                "env[1] AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL",
                "env[2] AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops the configured endpoint",
                "env[3] AWS_CONFIG_FILE can set endpoint_url when AWS_ENDPOINT_URL is unset",
                "env[4] AWS_PROFILE selects a config profile, whose endpoint_url can apply",
                "env[5] AWS_CA_BUNDLE sets the client's trusted roots (DittoFS v0.12.0 then fails to start the store)",
                "env[6] SSL_CERT_FILE replaces the trusted roots",
                "env[7] SSL_CERT_DIR replaces the trusted roots",
                "env[8] AWS_SHARED_CREDENTIALS_FILE can set endpoint_url when AWS_ENDPOINT_URL is unset",
                "env[9] AWS_DEFAULT_PROFILE selects a config profile, whose endpoint_url can apply",
                "env[10] HOME moves ~/.aws/config",
            ]
        );
    }

    fn endpoint_reference(name: &str) -> Value {
        json!({"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {
            "name": name, "key": "endpoint", "optional": true}}})
    }

    #[test]
    fn an_endpoint_not_read_from_a_secret_is_a_route() {
        let container = json!({"name": "dittofs", "env": [
            {"name": "AWS_ENDPOINT_URL", "value": "https://elsewhere.example"},
            {"name": "AWS_ENDPOINT_URL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "e"}}},
            {"name": "AWS_ENDPOINT_URL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "AWS_ENDPOINT_URL"},
            endpoint_reference("creds"),
        ]});
        let unchecked =
            "AWS_ENDPOINT_URL is not read from a Secret, so no endpoint rule checked it";
        assert_eq!(
            described(&container),
            [
                format!("env[0] {unchecked}"),
                format!("env[1] {unchecked}"),
                format!("env[2] {unchecked}"),
                format!("env[3] {unchecked}"),
                "env[0], env[1], env[2], env[3], env[4] AWS_ENDPOINT_URL differ, and the last one \
                 applies"
                    .to_owned(),
            ]
        );
        let plain = json!({"name": "dittofs", "env": [
            {"name": "AWS_ENDPOINT_URL", "value": "https://elsewhere.example"}]});
        assert_eq!(described(&plain), [format!("env[0] {unchecked}")]);
        let referenced = json!({"name": "dittofs", "env": [endpoint_reference("creds")]});
        assert!(described(&referenced).is_empty());
    }

    #[test]
    fn mounts_over_the_trusted_roots_or_an_aws_config_are_routes() {
        let mounts: Vec<Value> = [
            "/etc/ssl/certs",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/",
            "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            "/etc/ssl",
            "/etc/pki//",
            "/etc",
            "/etc/foo/../ssl/cert.pem",
            "/root/.aws",
            "/home/app/.aws/config",
            "/root/.aws/",
            "/etc/sslx",
            "/etc/pkix/tls",
            "/data/metadata",
            "/config",
            "/app/.awsx",
            "/data/aws/config",
            "",
        ]
        .iter()
        .map(|path| json!({"name": "v", "mountPath": path}))
        .collect();
        let container = json!({"name": "dittofs", "volumeMounts": mounts});
        assert_eq!(
            described(&container),
            [
                "volumeMounts[0] /etc/ssl/certs replaces the trusted roots",
                "volumeMounts[1] /etc/ssl/certs/ca-certificates.crt replaces the trusted roots",
                "volumeMounts[2] /etc/pki/tls/certs/ replaces the trusted roots",
                "volumeMounts[3] /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem replaces the \
                 trusted roots",
                "volumeMounts[4] /etc/ssl replaces the trusted roots",
                "volumeMounts[5] /etc/pki// replaces the trusted roots",
                "volumeMounts[6] /etc replaces the trusted roots",
                "volumeMounts[7] /etc/foo/../ssl/cert.pem replaces the trusted roots",
                "volumeMounts[8] /root/.aws supplies an AWS config",
                "volumeMounts[9] /home/app/.aws/config supplies an AWS config",
                "volumeMounts[10] /root/.aws/ supplies an AWS config",
            ]
        );
        for path in ["/etc/sslx", "/data/metadata", "/etc/ssl-extra/certs"] {
            let container =
                json!({"name": "dittofs", "volumeMounts": [{"name": "v", "mountPath": path}]});
            assert!(described(&container).is_empty(), "{path}");
        }
    }

    #[test]
    fn pod_level_name_resolution_is_a_route() {
        let described = |spec: Value| -> Vec<String> {
            pod_routes(&spec).iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            described(
                json!({"hostAliases": [{"ip": "10.0.0.9", "hostnames": ["s3.example"]}],
                             "dnsPolicy": "None",
                             "dnsConfig": {"nameservers": ["10.0.0.53"]}})
            ),
            [
                "hostAliases can point the endpoint's host name at another address",
                "dnsPolicy None, dnsConfig.nameservers chooses who resolves the endpoint's host name",
            ]
        );
        assert_eq!(
            described(json!({"dnsConfig": {"nameservers": ["10.0.0.53"]}})),
            ["dnsConfig.nameservers chooses who resolves the endpoint's host name"]
        );
        assert_eq!(
            described(json!({"dnsPolicy": "None", "dnsConfig": {"searches": ["x"]}})),
            ["dnsPolicy None, dnsConfig.searches chooses who resolves the endpoint's host name"]
        );
        assert_eq!(
            described(json!({"dnsConfig": {"searches": ["attacker.example"],
                                            "options": [{"name": "ndots", "value": "5"}]}})),
            ["dnsConfig.searches chooses who resolves the endpoint's host name"]
        );
        for spec in [
            json!({"dnsPolicy": "ClusterFirst", "hostAliases": [], "dnsConfig": {"nameservers": []}}),
            json!({"dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}}),
            json!({"hostAliases": "x", "dnsPolicy": 1, "dnsConfig": []}),
            json!(null),
        ] {
            assert!(described(spec.clone()).is_empty(), "{spec}");
        }
    }

    /// The `dittofs` container as the DittoFS operator renders it.
    fn operator_container() -> Value {
        json!({"name": "dittofs", "image": "marmos91c/dittofs:v0.12.0", "command": ["/app/dfs"],
               "args": ["start", "--foreground", "--config", "/config/config.yaml"],
               "env": [
                   {"name": "DITTOFS_LOGGING_LEVEL", "value": "INFO"},
                   {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "uri"}}},
                   {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accessKeyId"}}},
                   {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "secretAccessKey"}}},
                   endpoint_reference("creds"),
                   {"name": "AWS_REGION", "value": "eu-west-1"},
               ],
               "volumeMounts": [{"name": "metadata", "mountPath": "/data/metadata"},
                                {"name": "cache", "mountPath": "/data/cache"},
                                {"name": "config", "mountPath": "/config"}],
               "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}}})
    }

    fn pod_with(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "dittofs-0", "namespace": "ns"}, "spec": spec})
    }

    fn weighed(kind: WorkloadKind, object: &Value, settings: &Settings) -> Decision<Edits> {
        let request = WorkloadRequest {
            kind,
            operation: "CREATE",
            namespace: "ns",
            object,
            old_object: &Value::Null,
        };
        weigh(&request, settings, Decision::accept(), Review::Verify)
    }

    #[test]
    fn the_operators_rendering_has_no_route() {
        assert!(described(&operator_container()).is_empty());
        let spec = json!({"containers": [operator_container()], "dnsPolicy": "ClusterFirst",
                          "volumes": [{"name": "config", "configMap": {"name": "config"}}]});
        assert!(pod_routes(&spec).is_empty());
        let statefulset = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "dittofs", "namespace": "ns"},
            "spec": {"template": {"spec": spec}}});
        assert_eq!(
            weighed(
                WorkloadKind::StatefulSet,
                &statefulset,
                &Settings::default()
            ),
            Decision::accept()
        );
    }

    #[test]
    fn weigh_refuses_host_aliases_beside_the_credentials_by_default() {
        let aliases = json!([{"ip": "10.0.0.9", "hostnames": ["s3.example"]}]);
        let object =
            pod_with(json!({"hostAliases": aliases, "containers": [operator_container()]}));
        assert_eq!(
            weighed(WorkloadKind::Pod, &object, &Settings::default()).verdict,
            Verdict::Reject(
                "Pod \"dittofs-0\": container \"dittofs\" can send its S3 credentials elsewhere: \
                 hostAliases can point the endpoint's host name at another address \
                 (onCredentialRoute: reject); remove it, or set onCredentialRoute: warn"
                    .to_owned()
            )
        );
        // The template's pod spec of a StatefulSet counts the same way.
        let statefulset = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "dittofs", "namespace": "ns"},
            "spec": {"template": {"spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.0.0.53"]},
                                           "containers": [operator_container()]}}}});
        let warn = Settings {
            on_credential_route: OnCredentialRoute::Warn,
            ..Settings::default()
        };
        let decision = weighed(WorkloadKind::StatefulSet, &statefulset, &warn);
        assert_eq!(decision.verdict, Verdict::Accept);
        assert_eq!(
            decision.warnings,
            [
                "StatefulSet \"dittofs\": container \"dittofs\" can send its S3 credentials \
              elsewhere (onCredentialRoute: warn): dnsPolicy None, dnsConfig.nameservers chooses \
              who resolves the endpoint's host name"
            ]
        );
        // Without the credentials in the container, the pod spec does not matter.
        let plain = pod_with(json!({"hostAliases": aliases,
            "containers": [{"name": "dittofs", "env": [{"name": "X", "value": "y"}]}]}));
        assert_eq!(
            weighed(WorkloadKind::Pod, &plain, &Settings::default()),
            Decision::accept()
        );
    }

    #[test]
    fn env_from_is_named_by_its_source() {
        let container = json!({"name": "dittofs", "envFrom": [
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "extra"}, "prefix": "AWS_"},
            {"configMapRef": {}},
            {},
        ]});
        assert_eq!(
            described(&container),
            [
                "envFrom[0] (configMapRef \"settings\") can set any variable, even later",
                "envFrom[1] (secretRef \"extra\") can set any variable, even later",
                "envFrom[2] (configMapRef) can set any variable, even later",
                "envFrom[3] can set any variable, even later",
            ]
        );
    }

    #[test]
    fn credential_references_are_routes_wherever_they_expand() {
        let container = json!({"name": "dittofs",
            "command": ["/app/dfs", "--key=$(AWS_ACCESS_KEY_ID)"],
            "args": ["start", "$(AWS_SECRET_ACCESS_KEY)$(AWS_ACCESS_KEY_ID)", "$$(AWS_SECRET_ACCESS_KEY)"],
            "env": [{"name": "COPY", "value": "s=$(AWS_SECRET_ACCESS_KEY)"},
                    {"name": "ESCAPED", "value": "$$(AWS_SECRET_ACCESS_KEY)"},
                    {"name": "REGION_COPY", "value": "$(AWS_REGION)"}],
            "volumeMounts": [{"name": "a", "mountPath": "/a"},
                             {"name": "b", "mountPath": "/b", "subPathExpr": "$(AWS_SECRET_ACCESS_KEY)"},
                             {"name": "c", "mountPath": "/c", "subPathExpr": "$(POD_NAME)"}]});
        assert_eq!(
            described(&container),
            [
                "env[0] COPY copies AWS_SECRET_ACCESS_KEY",
                "command[1] copies AWS_ACCESS_KEY_ID",
                "args[1] copies AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
                "volumeMounts[1].subPathExpr copies AWS_SECRET_ACCESS_KEY",
            ]
        );
    }

    #[test]
    fn differing_repeated_definitions_are_routes_and_copies_are_not() {
        let reference = |name: &str| {
            json!({"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {
                "name": name, "key": "endpoint", "optional": true}}})
        };
        let container = json!({"name": "dittofs", "env": [
            reference("good"), {"name": "X", "value": "y"}, reference("bad"),
            {"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "AWS_REGION", "value": "eu-west-1"},
        ]});
        assert_eq!(
            described(&container),
            ["env[0], env[2] AWS_ENDPOINT_URL differ, and the last one applies"]
        );
        let copies = json!({"name": "dittofs", "env": [reference("good"), reference("good")]});
        assert!(described(&copies).is_empty());
        // Identical text expands differently by position.
        let expanding = json!({"name": "dittofs", "env": [
            {"name": "AWS_REGION", "value": "$(R)"}, {"name": "R", "value": "x"},
            {"name": "AWS_REGION", "value": "$(R)"},
        ]});
        assert_eq!(
            described(&expanding),
            ["env[0], env[2] AWS_REGION differ, and the last one applies"]
        );
    }

    #[test]
    fn malformed_fields_are_skipped_without_panicking() {
        for container in [
            json!({"name": "dittofs", "env": "x", "envFrom": {}, "args": "x", "volumeMounts": [1]}),
            json!({"name": "dittofs", "env": [1, null, {"value": "$(AWS_SECRET_ACCESS_KEY)"}], "command": [1, null]}),
            json!(null),
        ] {
            assert!(described(&container).is_empty(), "{container}");
        }
    }

    #[test]
    fn a_megabyte_name_is_not_echoed_whole() {
        let name = "X".repeat(1 << 20);
        let container = json!({"name": "dittofs", "env": [
            {"name": name, "value": "$(AWS_SECRET_ACCESS_KEY)"}]});
        let routes = credential_routes(&container, container["env"].as_array().expect("env"));
        let [route] = routes.as_slice() else {
            panic!("{routes:?}")
        };
        assert!(route.to_string().len() < 200, "{}", route.to_string().len());
    }
}
