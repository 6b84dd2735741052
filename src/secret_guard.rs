//! The Secret guard: a Secret write that would break a DittoServer naming it is refused where it
//! happens, instead of when a pod restarts (kubelet reads the Secret again at every start).
//!
//! The DittoServers of the Secret's namespace are listed once (the host answers from a watch it
//! keeps); each one that names the Secret in `spec.s3.credentialsSecretRef`, and is not being
//! deleted, has the Secret checked with the DittoServer review's rules for the keys it consumes.

use serde_json::Value;

use crate::cluster::{Cluster, ListRef};
use crate::credentials::{SecretData, credential_problems};
use crate::decision::Decision;
use crate::dittoserver::{self, CredentialsRef};
use crate::naming;
use crate::settings::{SecretGuard, Settings};
use crate::value::At;

/// What the list asks of each DittoServer: its name and the reference; nothing else is read.
pub const LISTED_FIELDS: [&str; 2] = ["metadata.name", "spec.s3.credentialsSecretRef"];

/// Secret types that hold something else than S3 credentials (the API server checks their keys):
/// never looked at, here and in the kit's matchConditions (which mirror this list), so that the
/// many writes of tokens, certificates and Helm releases cost a cluster nothing.
pub const NOT_CREDENTIALS: [&str; 6] = [
    "kubernetes.io/service-account-token",
    "kubernetes.io/tls",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
    "bootstrap.kubernetes.io/token",
    "helm.sh/release.v1",
];

/// A write of a Secret, as the guard needs it.
pub enum SecretWrite<'a> {
    Create(&'a Value),
    Update {
        object: &'a Value,
        stored: &'a Value,
    },
    /// The stored Secret (null from API servers before 1.15), and the request's name.
    Delete(&'a Value, &'a str),
}

impl SecretWrite<'_> {
    /// The Secret as it is when the write is done (as it was, for a DELETE).
    fn secret(&self) -> &Value {
        match self {
            Self::Create(object) | Self::Update { object, .. } | Self::Delete(object, _) => object,
        }
    }
}

/// A DittoServer that consumes the Secret, with the keys it reads.
struct Consumer {
    name: String,
    keys: CredentialsRef,
}

/// Decides on a Secret CREATE, UPDATE or DELETE in `namespace`.
pub fn guard(
    write: &SecretWrite<'_>,
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Decision {
    // Labels, annotations and owners change often (controllers, kubectl apply): only the
    // entries decide what DittoFS runs with, so a write that keeps them needs no lookup.
    if let SecretWrite::Update { object, stored } = write
        && object.get("data") == stored.get("data")
    {
        return Decision::accept();
    }
    if write
        .secret()
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| NOT_CREDENTIALS.contains(&kind))
    {
        return Decision::accept();
    }
    let request_name = match write {
        SecretWrite::Delete(_, name) => Some(*name),
        _ => None,
    };
    let name = match write
        .secret()
        .at(["metadata", "name"])
        .and_then(Value::as_str)
        .or(request_name)
    {
        Some(name) if !name.is_empty() => name,
        // A generateName'd Secret is new: no DittoServer can name it yet.
        _ => return Decision::accept(),
    };
    let fields = LISTED_FIELDS.map(str::to_owned);
    // A name that is not an object name is named by no DittoServer (their references are
    // checked to be names).
    if naming::dns1123_subdomain(name).is_err() {
        return Decision::accept();
    }
    let servers = match cluster.list_naming(ListRef::ditto_servers(namespace), &fields, name) {
        Ok(servers) => servers,
        // Never block Secret writes on a lookup: the pod-time checks still stand.
        Err(error) => {
            return Decision::accept().with_warnings(vec![format!(
                "Secret \"{name}\" was not checked against the DittoServers that may use it: listing them: {error}"
            )]);
        }
    };
    let consumers = consumers(&servers, name);
    if consumers.is_empty() {
        return Decision::accept();
    }
    let what = format!("Secret \"{name}\"");
    let breaks = match write {
        SecretWrite::Delete(stored, _) => return deletion(&what, &consumers, stored, settings),
        SecretWrite::Create(object) => breaks(&consumers, object, None, settings),
        SecretWrite::Update { object, stored } => {
            breaks(&consumers, object, Some(stored), settings)
        }
    };
    let warnings = still_broken(&what, &breaks.already);
    if breaks.new.is_empty() {
        return Decision::accept().with_warnings(warnings);
    }
    let message = format!("it would break {}", list(breaks.new.into_iter()));
    verdict(settings, &what, message).with_warnings(warnings)
}

/// A DELETE is refused for the DittoServers the stored Secret serves; those it already broke
/// lose nothing (an immutable Secret that is broken can only be deleted and made again).
fn deletion(what: &str, consumers: &[Consumer], stored: &Value, settings: &Settings) -> Decision {
    // Without the stored Secret (API servers before 1.15) it serves them all, as far as is known.
    let (served, broken): (Vec<&Consumer>, Vec<&Consumer>) =
        consumers.iter().partition(|consumer| {
            !stored.is_object() || problems_of(stored, &consumer.keys, settings).is_empty()
        });
    let already: Vec<String> = broken
        .iter()
        .map(|consumer| described(consumer, &problems_of(stored, &consumer.keys, settings)))
        .collect();
    let warnings = still_broken(what, &already);
    if served.is_empty() {
        return Decision::accept().with_warnings(warnings);
    }
    let message = format!(
        "{what} is named by {} (spec.s3.credentialsSecretRef): without it their DittoFS pods cannot start",
        list(
            served
                .iter()
                .map(|consumer| format!("DittoServer \"{}\"", consumer.name))
        )
    );
    verdict(settings, &format!("deleting {what}"), message).with_warnings(warnings)
}

fn still_broken(what: &str, broken: &[String]) -> Vec<String> {
    broken
        .iter()
        .map(|broken| format!("{what} still breaks {broken}"))
        .collect()
}

/// `DittoServer "name" (problem, problem)`.
fn described(consumer: &Consumer, problems: &[Problem]) -> String {
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    format!(
        "DittoServer \"{}\" ({})",
        consumer.name,
        messages.join(", ")
    )
}

/// Refused, or accepted with a warning, as `secretGuard` says.
fn verdict(settings: &Settings, what: &str, message: String) -> Decision {
    match settings.secret_guard {
        SecretGuard::Reject => Decision::reject(format!("{what} is rejected: {message}")),
        SecretGuard::Warn => {
            Decision::accept().with_warnings(vec![format!("{what} is accepted, but {message}")])
        }
    }
}

/// The DittoServers of `servers` that name `secret` and are not being deleted, by name.
fn consumers(servers: &[Value], secret: &str) -> Vec<Consumer> {
    let named = servers
        .iter()
        .filter(|server| {
            server
                .at(["metadata", "deletionTimestamp"])
                .is_none_or(Value::is_null)
        })
        .filter_map(|server| {
            let keys = dittoserver::credentials_ref(server)?;
            let name = server.at(["metadata", "name"])?.as_str()?;
            (keys.secret_name == secret).then(|| Consumer {
                name: name.to_owned(),
                keys,
            })
        });
    // Sorted as they are collected: std's sort would add kilobytes of code for a few servers.
    let mut consumers: Vec<Consumer> = Vec::new();
    for consumer in named {
        let at = consumers.partition_point(|sorted| sorted.name <= consumer.name);
        consumers.insert(at, consumer);
    }
    consumers
}

/// Each DittoServer the Secret breaks, as `DittoServer "name" (problems)`: `new` for those
/// this write breaks, `already` for those the stored Secret broke the same way.
struct Breaks {
    new: Vec<String>,
    already: Vec<String>,
}

fn breaks(
    consumers: &[Consumer],
    object: &Value,
    stored: Option<&Value>,
    settings: &Settings,
) -> Breaks {
    let mut found = Breaks {
        new: Vec::new(),
        already: Vec::new(),
    };
    for consumer in consumers {
        let problems = problems_of(object, &consumer.keys, settings);
        if problems.is_empty() {
            continue;
        }
        let broken = described(consumer, &problems);
        // A Secret that was already broken this way can be repaired in steps: the steps are
        // not refused for what they did not cause. Only the very same entry is the same problem:
        // an endpoint moved from one disallowed host to another is a new one.
        let already = stored.is_some_and(|stored| {
            let was = problems_of(stored, &consumer.keys, settings);
            problems.iter().all(|problem| {
                was.contains(problem) && problem.entry(object) == problem.entry(stored)
            })
        });
        if already {
            found.already.push(broken);
        } else {
            found.new.push(broken);
        }
    }
    found
}

/// One way a Secret breaks a DittoServer, never quoting a value.
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    /// The Secret entry it is about; `None`: the Secret's `data` as a whole.
    key: Option<String>,
    message: String,
}

impl Problem {
    /// What the Secret holds where this problem is.
    fn entry<'v>(&self, secret: &'v Value) -> Option<&'v Value> {
        let data = secret.get("data");
        match &self.key {
            Some(key) => data.and_then(|data| data.get(key)),
            None => data,
        }
    }
}

/// The DittoServer review's rules for the entries `keys` names.
fn problems_of(secret: &Value, keys: &CredentialsRef, settings: &Settings) -> Vec<Problem> {
    match SecretData::from_object(secret) {
        Ok(data) => credential_problems(&data, &keys.keys, settings)
            .into_iter()
            .map(|problem| Problem {
                key: Some(problem.key),
                message: problem.message,
            })
            .collect(),
        Err(problem) => vec![Problem {
            key: None,
            message: problem.to_owned(),
        }],
    }
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
