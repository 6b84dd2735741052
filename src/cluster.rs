//! Cluster lookups: the one trait the policy core depends on, and its waPC implementation.
//!
//! The host reports every failure as an error string; this module turns those strings into
//! a small set of outcomes the policy can act on deliberately.

use std::collections::BTreeSet;
use std::fmt;

use crate::value::At;
use serde_json::Value;

pub const SECRET_API_VERSION: &str = "v1";
pub const SECRET_KIND: &str = "Secret";
pub const DITTOSERVER_API_VERSION: &str = "dittofs.dittofs.com/v1alpha1";
pub const DITTOSERVER_KIND: &str = "DittoServer";

/// A namespaced object to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl<'a> ObjectRef<'a> {
    pub fn secret(namespace: &'a str, name: &'a str) -> Self {
        Self {
            api_version: SECRET_API_VERSION,
            kind: SECRET_KIND,
            namespace,
            name,
        }
    }

    pub fn ditto_server(namespace: &'a str, name: &'a str) -> Self {
        Self {
            api_version: DITTOSERVER_API_VERSION,
            kind: DITTOSERVER_KIND,
            namespace,
            name,
        }
    }
}

impl ObjectRef<'_> {
    /// Names taken from objects (labels, owner references, `secretKeyRef`s) reach the host only
    /// when they are names: `../../namespaces/x/secrets/y` is refused, not passed on.
    fn check_names(&self) -> Result<(), LookupError> {
        // The reference's own display already shows the name: the reason does not repeat it.
        let invalid = |what: &str| {
            LookupError::Failed(format!("not looked up: its {what} is not a valid name"))
        };
        crate::naming::dns1123_label(self.namespace).map_err(|_| invalid("namespace"))?;
        crate::naming::dns1123_subdomain(self.name).map_err(|_| invalid("name"))
    }

    /// An answer is only used when it is the object asked for (a host, proxy or cache that
    /// answers with another object must not decide about this one).
    fn check_answer(&self, answer: &Value) -> Result<(), LookupError> {
        // Hosts always return kind and metadata; only an answer that names another object is
        // refused here (a body without them fails where the body is read).
        let differs = |field: &[&str], asked: &str| {
            answer
                .at(field)
                .is_some_and(|value| value.as_str() != Some(asked))
        };
        if !differs(&["kind"], self.kind)
            && !differs(&["metadata", "name"], self.name)
            && !differs(&["metadata", "namespace"], self.namespace)
        {
            Ok(())
        } else {
            Err(LookupError::Failed(
                "the host answered with another object than the one asked for".to_owned(),
            ))
        }
    }
}

impl fmt::Display for ObjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\" in namespace \"{}\"",
            self.kind, self.name, self.namespace
        )
    }
}

/// The objects of one namespaced kind in one namespace, to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRef<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

impl<'a> ListRef<'a> {
    pub fn ditto_servers(namespace: &'a str) -> Self {
        Self {
            api_version: DITTOSERVER_API_VERSION,
            kind: DITTOSERVER_KIND,
            namespace,
        }
    }
}

impl ListRef<'_> {
    /// The items of a list answer, each checked to be of the kind and namespace asked for.
    fn items(&self, answer: Value) -> Result<Vec<Value>, LookupError> {
        let Value::Object(mut answer) = answer else {
            return Err(LookupError::Failed(
                "the host answered the list with something else than a list".to_owned(),
            ));
        };
        let items = match answer.remove("items") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(LookupError::Failed(
                    "the host answered the list with something else than a list".to_owned(),
                ));
            }
        };
        // Items may leave kind and namespace out (the API server does in typed lists); one
        // that names another kind or namespace is not about this list.
        let differs = |item: &Value, field: &[&str], asked: &str| {
            item.at(field)
                .is_some_and(|value| value.as_str() != Some(asked))
        };
        if items.iter().any(|item| {
            !item.is_object()
                || differs(item, &["kind"], self.kind)
                || differs(item, &["metadata", "namespace"], self.namespace)
        }) {
            return Err(LookupError::Failed(
                "the host answered with objects of another kind or namespace".to_owned(),
            ));
        }
        Ok(items)
    }
}

impl fmt::Display for ListRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {}s of namespace \"{}\"", self.kind, self.namespace)
    }
}

/// Why a lookup gave no object. The texts come from the host and never carry object data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    NotFound,
    /// Refused by the policy's `contextAwareResources` grant or by Kubernetes RBAC.
    AccessDenied(String),
    /// Any other failure: API server errors, timeouts, an unreadable answer.
    Failed(String),
}

/// Longest host text quoted in a message: enough for the cause, never a wall of text.
const QUOTE_LIMIT: usize = 100;

/// What the host says a refusal looks like: policy-evaluator's own grant check, and the
/// Kubernetes API's 401/403 answers (`<resource> "<name>" is forbidden: …`, `Unauthorized`).
/// Object names cannot contain spaces or upper case, so none of these can come from a name.
const DENIAL_MARKERS: [&str; 5] = [
    "Policy has not been granted access to",
    " is forbidden: ",
    "reason: \"Forbidden\"",
    "Unauthorized",
    "code: 403",
];

impl LookupError {
    /// Classifies a host error for a lookup of `object`. Denial is checked first, since RBAC
    /// texts can contain "not found"; absence is only the host's exact not-found sentence
    /// (policy-evaluator: `Cannot find <apiVersion>/<kind> named '<name>' inside of namespace
    /// 'Some("<ns>")'`), which it sends only when the API server answered 404.
    pub fn from_host_message(object: ObjectRef<'_>, message: &str) -> Self {
        let message = unwrap_host_text(message);
        if DENIAL_MARKERS.iter().any(|marker| message.contains(marker)) {
            return Self::AccessDenied(quote(message));
        }
        let not_found = format!(
            "Cannot find {}/{} named '{}' inside of namespace 'Some(\"{}\")'",
            object.api_version, object.kind, object.name, object.namespace
        );
        if message.lines().next() == Some(not_found.as_str()) {
            Self::NotFound
        } else {
            Self::Failed(quote(message))
        }
    }
}

impl LookupError {
    /// Classifies a host error for a list: a list has no "not found", only denials and failures.
    pub fn from_list_host_message(message: &str) -> Self {
        let message = unwrap_host_text(message);
        if DENIAL_MARKERS.iter().any(|marker| message.contains(marker)) {
            Self::AccessDenied(quote(message))
        } else {
            Self::Failed(quote(message))
        }
    }
}

/// The host's own message inside the wrappers the waPC guest and policy-evaluator add.
fn unwrap_host_text(message: &str) -> &str {
    let message = message.strip_prefix("Host error: ").unwrap_or(message);
    message
        .strip_prefix("Callback evaluation failure: ")
        .unwrap_or(message)
}

/// The first line of a host text, capped: kwctl appends `Caused by:` chains and, with
/// `RUST_BACKTRACE` set, kilobytes of stack backtrace that no user should read in a warning.
fn quote(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or_default().trim();
    // kube-rs appends the whole Status struct in Debug form to the API's own message.
    let message = first_line
        .split_once(" (Status {")
        .map_or(first_line, |(message, _)| message);
    crate::decision::truncate(message, QUOTE_LIMIT)
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::AccessDenied(message) => write!(f, "access denied ({message})"),
            Self::Failed(message) => write!(f, "lookup failed ({message})"),
        }
    }
}

/// Who made a request, as the API server authenticated them.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub username: &'a str,
    /// Sorted, so the same user always makes the same host call (replay sessions match on it).
    pub groups: Vec<&'a str>,
}

impl Requester<'_> {
    /// How messages name the requester: by user name, else by groups (a request may carry
    /// groups without a name, and is asked about all the same).
    pub fn describe(&self) -> String {
        if self.username.is_empty() {
            format!("the unnamed user of groups [{}]", self.groups.join(", "))
        } else {
            format!("user \"{}\"", self.username)
        }
    }
}

/// Whether the host may answer a lookup from its cache (Kubewarden keeps answers 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Cached,
    /// Asked of the API server: for an object whose last 5 s decide what runs with a Secret.
    Fresh,
}

/// Read access to the cluster, as the policy core needs it. Implementations make the host
/// calls (`fetch`, `review_access`); callers use `get`, `get_fresh` and `may_get`, which
/// refuse names that are not object names before any call and answers about another object
/// after it.
pub trait Cluster {
    /// Fetches one object as raw JSON. `fields` are the dot paths the caller reads: hosts from
    /// Kubewarden 1.33 on return only those of the body (plus apiVersion, kind and metadata),
    /// older ones the whole object, so callers must read nothing else.
    fn fetch(
        &self,
        object: ObjectRef<'_>,
        fields: &[String],
        freshness: Freshness,
    ) -> Result<Value, LookupError>;

    /// Whether `requester` may `get` the Secret `secret` (a SubjectAccessReview).
    fn review_access(
        &self,
        requester: &Requester<'_>,
        secret: ObjectRef<'_>,
    ) -> Result<bool, LookupError>;

    /// Lists the objects of `list`: the host's answer (the list object), as JSON text. `fields`
    /// as for `fetch`; the host answers from a watch it keeps per query, so a query must stay the
    /// same across calls.
    fn fetch_list(&self, list: ListRef<'_>, fields: &[String]) -> Result<Vec<u8>, LookupError>;

    /// `fetch_list`, for a valid namespace only: the items, each of the kind and namespace asked,
    /// or none when the answer does not hold the JSON string `name` anywhere, so that no item can
    /// name it (the common case then costs no parsing). `name` must be an object name: its
    /// characters are never escaped in JSON (hosts do not escape ASCII letters and digits).
    fn list_naming(
        &self,
        list: ListRef<'_>,
        fields: &[String],
        name: &str,
    ) -> Result<Vec<Value>, LookupError> {
        crate::naming::dns1123_label(list.namespace).map_err(|_| {
            LookupError::Failed("not looked up: its namespace is not a valid name".to_owned())
        })?;
        crate::naming::dns1123_subdomain(name).map_err(|_| {
            LookupError::Failed("not looked up: the name sought is not a valid name".to_owned())
        })?;
        let answer = self.fetch_list(list, fields)?;
        // Built without `format!`: this runs on every Secret write the guard looks at.
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push('"');
        quoted.push_str(name);
        quoted.push('"');
        let text = answer_text(&answer)?;
        if !text.contains(&quoted) {
            return Ok(Vec::new());
        }
        list.items(serde_json::from_str(text).map_err(|_| invalid_json())?)
    }

    /// `fetch`, maybe from the host's cache, for a valid name only, answered with that object.
    fn get(&self, object: ObjectRef<'_>, fields: &[String]) -> Result<Value, LookupError> {
        checked_fetch(self, object, fields, Freshness::Cached)
    }

    /// `get`, from the API server itself.
    fn get_fresh(&self, object: ObjectRef<'_>, fields: &[String]) -> Result<Value, LookupError> {
        checked_fetch(self, object, fields, Freshness::Fresh)
    }

    /// `review_access`, for a valid name only.
    fn may_get(
        &self,
        requester: &Requester<'_>,
        secret: ObjectRef<'_>,
    ) -> Result<bool, LookupError> {
        secret.check_names()?;
        self.review_access(requester, secret)
    }
}

fn checked_fetch<C: Cluster + ?Sized>(
    cluster: &C,
    object: ObjectRef<'_>,
    fields: &[String],
    freshness: Freshness,
) -> Result<Value, LookupError> {
    object.check_names()?;
    let answer = cluster.fetch(object, fields, freshness)?;
    object.check_answer(&answer)?;
    Ok(answer)
}

/// Lookups through the Kubewarden host (`kubernetes/get_resource`).
pub struct HostCluster;

/// A host's answer as text: JSON must be UTF-8, checked here once rather than string by string
/// as `serde_json::from_slice` does (which cost each lookup thousands of instructions).
fn answer_text(answer: &[u8]) -> Result<&str, LookupError> {
    std::str::from_utf8(answer).map_err(|_| invalid_json())
}

/// An answer that does not parse. A parser's message carries no input text, but it is left out
/// anyway: the answer may be a Secret.
fn invalid_json() -> LookupError {
    LookupError::Failed("the host answered with invalid JSON".to_owned())
}

/// The field masks of a host call, none meaning whole objects. Inserted one by one: collecting
/// into a set sorts first, which adds kilobytes of code for one to three masks.
fn field_mask_set(fields: &[String]) -> Option<BTreeSet<String>> {
    if fields.is_empty() {
        return None;
    }
    let mut masks = BTreeSet::new();
    for field in fields {
        masks.insert(field.clone());
    }
    Some(masks)
}

impl Cluster for HostCluster {
    fn fetch(
        &self,
        object: ObjectRef<'_>,
        fields: &[String],
        freshness: Freshness,
    ) -> Result<Value, LookupError> {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::GetResourceRequest;

        let request = GetResourceRequest {
            api_version: object.api_version.to_owned(),
            kind: object.kind.to_owned(),
            name: object.name.to_owned(),
            namespace: Some(object.namespace.to_owned()),
            disable_cache: freshness == Freshness::Fresh,
            // A set: the host call (and so a replay session) lists the masks sorted.
            field_masks: field_mask_set(fields),
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|_| LookupError::Failed("cannot encode the lookup request".to_owned()))?;
        let answer = kubewarden_policy_sdk::wapc_guest::host_call(
            "kubewarden",
            "kubernetes",
            "get_resource",
            &payload,
        )
        .map_err(|error| LookupError::from_host_message(object, &error.to_string()))?;
        serde_json::from_str(answer_text(&answer)?).map_err(|_| invalid_json())
    }

    fn fetch_list(&self, list: ListRef<'_>, fields: &[String]) -> Result<Vec<u8>, LookupError> {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::ListResourcesByNamespaceRequest;

        let request = ListResourcesByNamespaceRequest {
            api_version: list.api_version.to_owned(),
            kind: list.kind.to_owned(),
            namespace: list.namespace.to_owned(),
            label_selector: None,
            field_selector: None,
            field_masks: field_mask_set(fields),
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|_| LookupError::Failed("cannot encode the list request".to_owned()))?;
        kubewarden_policy_sdk::wapc_guest::host_call(
            "kubewarden",
            "kubernetes",
            "list_resources_by_namespace",
            &payload,
        )
        .map_err(|error| LookupError::from_list_host_message(&error.to_string()))
    }

    fn review_access(
        &self,
        requester: &Requester<'_>,
        secret: ObjectRef<'_>,
    ) -> Result<bool, LookupError> {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::{
            CanIRequest, ResourceAttributes, SubjectAccessReview,
        };

        let request = CanIRequest {
            subject_access_review: SubjectAccessReview {
                groups: Some(requester.groups.iter().map(|g| (*g).to_owned()).collect()),
                resource_attributes: ResourceAttributes {
                    group: Some(String::new()),
                    name: Some(secret.name.to_owned()),
                    namespace: Some(secret.namespace.to_owned()),
                    resource: "secrets".to_owned(),
                    subresource: None,
                    verb: "get".to_owned(),
                    version: Some(secret.api_version.to_owned()),
                },
                user: requester.username.to_owned(),
            },
            disable_cache: false,
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|_| LookupError::Failed("cannot encode the access review".to_owned()))?;
        let answer = kubewarden_policy_sdk::wapc_guest::host_call(
            "kubewarden",
            "kubernetes",
            "can_i",
            &payload,
        )
        .map_err(|error| LookupError::from_host_message(secret, &error.to_string()))?;
        serde_json::from_slice::<AccessReviewStatus>(&answer)
            .map(|status| status.allowed && !status.denied)
            .map_err(|_| {
                LookupError::Failed(
                    "the host answered the access review with invalid JSON".to_owned(),
                )
            })
    }
}

/// The part of a SubjectAccessReview's status the policy reads.
#[derive(serde::Deserialize)]
struct AccessReviewStatus {
    allowed: bool,
    #[serde(default)]
    denied: bool,
}

#[cfg(test)]
pub mod fake {
    //! An in-memory cluster for tests, which also records what was looked up.
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct FakeCluster {
        answers: HashMap<(String, String, String), Result<Value, LookupError>>,
        /// Apply field masks as hosts from Kubewarden 1.33 on do.
        pruning: bool,
        /// Access answers by user name, and by user name and Secret name; users not listed
        /// may read every Secret.
        access: HashMap<(String, Option<String>), Result<bool, LookupError>>,
        /// List answers by kind and namespace that replace the one built from `answers`.
        lists: HashMap<(String, String), Result<Vec<u8>, LookupError>>,
        pub lookups: RefCell<Vec<String>>,
    }

    impl FakeCluster {
        pub fn with(mut self, object: ObjectRef<'_>, answer: Result<Value, LookupError>) -> Self {
            self.answers.insert(
                (
                    object.kind.to_owned(),
                    object.namespace.to_owned(),
                    object.name.to_owned(),
                ),
                answer,
            );
            self
        }

        /// Answers the list of `list` with `answer` instead of the objects given with `with`.
        pub fn with_list(mut self, list: ListRef<'_>, answer: Result<Value, LookupError>) -> Self {
            self.lists.insert(
                (list.kind.to_owned(), list.namespace.to_owned()),
                answer.map(|answer| answer.to_string().into_bytes()),
            );
            self
        }

        /// Answers as a host that applies field masks (Kubewarden >= 1.33).
        pub fn pruning(mut self) -> Self {
            self.pruning = true;
            self
        }

        pub fn with_access(mut self, username: &str, answer: Result<bool, LookupError>) -> Self {
            self.access.insert((username.to_owned(), None), answer);
            self
        }

        /// The access answer for one Secret, before the user's general one.
        pub fn with_secret_access(
            mut self,
            username: &str,
            secret: &str,
            answer: Result<bool, LookupError>,
        ) -> Self {
            self.access
                .insert((username.to_owned(), Some(secret.to_owned())), answer);
            self
        }
    }

    /// What a masking host returns: apiVersion, kind and metadata whole; of the body only the
    /// listed dot paths (everything below a listed field; arrays are traversed).
    pub fn prune(object: Value, fields: &[String]) -> Value {
        fn keep(value: &mut Value, paths: &[Vec<&str>]) {
            if paths.iter().any(Vec::is_empty) {
                return;
            }
            match value {
                Value::Object(map) => map.retain(|key, child| {
                    let below: Vec<Vec<&str>> = paths
                        .iter()
                        .filter(|path| path.first() == Some(&key.as_str()))
                        .map(|path| path.iter().skip(1).copied().collect())
                        .collect();
                    keep(child, &below);
                    !below.is_empty()
                }),
                Value::Array(items) => items.iter_mut().for_each(|item| keep(item, paths)),
                _ => {}
            }
        }
        let Value::Object(mut map) = object else {
            return object;
        };
        let paths: Vec<Vec<&str>> = fields.iter().map(|f| f.split('.').collect()).collect();
        let kept: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
            .iter()
            .filter_map(|key| map.remove(*key).map(|value| ((*key).to_owned(), value)))
            .collect();
        let mut body = Value::Object(map);
        keep(&mut body, &paths);
        if let Value::Object(body) = &mut body {
            body.extend(kept);
        }
        body
    }

    impl Cluster for FakeCluster {
        fn review_access(
            &self,
            requester: &Requester<'_>,
            secret: ObjectRef<'_>,
        ) -> Result<bool, LookupError> {
            self.lookups.borrow_mut().push(format!(
                "may {} ({}) get {secret}",
                requester.username,
                requester.groups.join(",")
            ));
            let user = requester.username.to_owned();
            self.access
                .get(&(user.clone(), Some(secret.name.to_owned())))
                .or_else(|| self.access.get(&(user, None)))
                .cloned()
                .unwrap_or(Ok(true))
        }

        fn fetch_list(&self, list: ListRef<'_>, fields: &[String]) -> Result<Vec<u8>, LookupError> {
            self.lookups.borrow_mut().push(format!("list {list}"));
            let key = (list.kind.to_owned(), list.namespace.to_owned());
            if let Some(answer) = self.lists.get(&key) {
                return answer.clone();
            }
            let mut items: Vec<(&String, Value)> = self
                .answers
                .iter()
                .filter(|((kind, namespace, _), _)| *kind == key.0 && *namespace == key.1)
                .filter_map(|((_, _, name), answer)| Some((name, answer.clone().ok()?)))
                .collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            let items = items
                .into_iter()
                .map(|(_, item)| {
                    if self.pruning && !fields.is_empty() {
                        prune(item, fields)
                    } else {
                        item
                    }
                })
                .collect();
            let answer = serde_json::json!({"apiVersion": list.api_version, "kind": format!("{}List", list.kind),
                "metadata": {"resourceVersion": "1"}, "items": Value::Array(items)});
            Ok(answer.to_string().into_bytes())
        }

        fn fetch(
            &self,
            object: ObjectRef<'_>,
            fields: &[String],
            freshness: Freshness,
        ) -> Result<Value, LookupError> {
            let fresh = if freshness == Freshness::Fresh {
                " (fresh)"
            } else {
                ""
            };
            self.lookups.borrow_mut().push(format!("{object}{fresh}"));
            let answer = self
                .answers
                .get(&(
                    object.kind.to_owned(),
                    object.namespace.to_owned(),
                    object.name.to_owned(),
                ))
                .cloned()
                .unwrap_or(Err(LookupError::NotFound))?;
            Ok(if self.pruning && !fields.is_empty() {
                prune(answer, fields)
            } else {
                answer
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: ObjectRef<'static> = ObjectRef {
        api_version: "v1",
        kind: "Secret",
        namespace: "ns",
        name: "x",
    };

    fn classify(message: &str) -> LookupError {
        LookupError::from_host_message(SECRET, message)
    }

    /// A host that answers every list with the same text.
    struct ListText(&'static [u8]);

    impl Cluster for ListText {
        fn fetch(
            &self,
            _: ObjectRef<'_>,
            _: &[String],
            _: Freshness,
        ) -> Result<Value, LookupError> {
            Err(LookupError::NotFound)
        }

        fn review_access(&self, _: &Requester<'_>, _: ObjectRef<'_>) -> Result<bool, LookupError> {
            Ok(true)
        }

        fn fetch_list(&self, _: ListRef<'_>, _: &[String]) -> Result<Vec<u8>, LookupError> {
            Ok(self.0.to_vec())
        }
    }

    #[test]
    fn a_list_answer_that_is_not_json_text_is_refused_and_one_not_naming_the_secret_is_empty() {
        let list = ListRef::ditto_servers("ns");
        let invalid = Err(LookupError::Failed(
            "the host answered with invalid JSON".to_owned(),
        ));
        for text in [&b"{\"items\": [\"s\", \xff]}"[..], b"{\"items\": [\"s\""] {
            assert_eq!(ListText(text).list_naming(list, &[], "s"), invalid);
        }
        let unnamed = ListText(b"{\"items\": [{\"metadata\": {\"name\": \"d\"}}]}");
        assert_eq!(unnamed.list_naming(list, &[], "s"), Ok(Vec::new()));
    }

    #[test]
    fn only_the_hosts_not_found_sentence_for_this_object_means_absent() {
        let exact = "Cannot find v1/Secret named 'x' inside of namespace 'Some(\"ns\")'";
        assert_eq!(classify(exact), LookupError::NotFound);
        // As the guest receives it under kwctl, with a backtrace.
        let wrapped = format!(
            "Host error: Callback evaluation failure: {exact}\n\nStack backtrace:\n   0: anyhow::error"
        );
        assert_eq!(classify(&wrapped), LookupError::NotFound);
        // Another object's absence, a discovery failure, or "not found" inside other text.
        for other in [
            "Cannot find v1/Secret named 'y' inside of namespace 'Some(\"ns\")'",
            "Cannot find resource v1/Secret",
            "the server could not find the requested resource (not found)",
        ] {
            assert!(matches!(classify(other), LookupError::Failed(_)), "{other}");
        }
    }

    #[test]
    fn denials_are_recognised_before_absence() {
        for message in [
            "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported.",
            "Policy has not been granted access to the 'kubernetes/get_resource' host capability",
            "ApiError: secrets \"x\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server\" \
             cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\": RBAC: \
             clusterrole.rbac.authorization.k8s.io \"y\" not found: Forbidden",
            "Callback evaluation failure: ApiError: Unauthorized: Unauthorized (ErrorResponse { code: 401 })",
        ] {
            assert!(
                matches!(classify(message), LookupError::AccessDenied(_)),
                "{message}"
            );
        }
    }

    #[test]
    fn quoted_host_text_is_unwrapped_to_one_capped_line() {
        let backtrace = "\n\nStack backtrace:\n".to_owned() + &"   0: frame\n".repeat(500);
        let error = classify(&format!(
            "Host error: Callback evaluation failure: etcdserver: request timed out{backtrace}"
        ));
        assert_eq!(
            error,
            LookupError::Failed("etcdserver: request timed out".to_owned())
        );
        // What policy-server hands over for an API error: kube-rs' message plus its Status.
        let status = classify(
            "Host error: Callback evaluation failure: ApiError: etcdserver: leader changed: InternalError (Status { status: Some(Failure), code: 500 })",
        );
        assert_eq!(
            status,
            LookupError::Failed("ApiError: etcdserver: leader changed: InternalError".to_owned())
        );
        let LookupError::Failed(long) = classify(&"x".repeat(10_000)) else {
            panic!("classified as something else")
        };
        assert!(long.len() <= QUOTE_LIMIT + '…'.len_utf8(), "{}", long.len());
    }

    #[test]
    fn the_fake_host_prunes_the_body_and_keeps_metadata_as_policy_evaluator_does() {
        use serde_json::json;
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "x", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "data": {"accessKeyId": "QQ==", "other": "Qg=="},
            "list": [{"a": 1, "b": 2}, {"a": 3}]});
        let pruned = fake::prune(
            secret.clone(),
            &["data.accessKeyId".into(), "list.a".into()],
        );
        assert_eq!(
            pruned,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": secret["metadata"].clone(),
                   "data": {"accessKeyId": "QQ=="}, "list": [{"a": 1}, {"a": 3}]})
        );
        let whole_data = fake::prune(secret.clone(), &["data".into()]);
        assert_eq!(whole_data["data"], secret["data"]);
        assert_eq!(whole_data.get("type"), None);
    }

    #[test]
    fn names_taken_from_objects_are_checked_before_any_host_call() {
        use fake::FakeCluster;
        let cluster = FakeCluster::default();
        let requester = Requester {
            username: "alice",
            groups: Vec::new(),
        };
        for (namespace, name) in [
            ("ns", "../../../namespaces/victim/secrets/x"),
            ("ns", ""),
            ("ns", "Upper"),
            ("../victim", "x"),
            ("", "x"),
        ] {
            let object = ObjectRef::secret(namespace, name);
            let Err(LookupError::Failed(reason)) = cluster.get(object, &[]) else {
                panic!("{namespace}/{name} was looked up")
            };
            assert!(reason.starts_with("not looked up: its "), "{reason}");
            assert!(cluster.may_get(&requester, object).is_err());
        }
        assert!(cluster.lookups.borrow().is_empty());
    }

    #[test]
    fn an_answer_about_another_object_is_refused() {
        use fake::FakeCluster;
        use serde_json::json;
        let answer = |name: &str, namespace: &str| json!({"kind": "Secret", "metadata": {"name": name, "namespace": namespace}});
        for (label, body) in [
            ("other name", answer("y", "ns")),
            ("other namespace", answer("x", "victim")),
            (
                "name not a string",
                json!({"metadata": {"name": 1, "namespace": "ns"}}),
            ),
        ] {
            let cluster = FakeCluster::default().with(SECRET, Ok(body));
            assert_eq!(
                cluster.get(SECRET, &[]),
                Err(LookupError::Failed(
                    "the host answered with another object than the one asked for".to_owned()
                )),
                "{label}"
            );
        }
        let cluster = FakeCluster::default().with(SECRET, Ok(answer("x", "ns")));
        assert_eq!(cluster.get(SECRET, &[]), Ok(answer("x", "ns")));
    }
}
