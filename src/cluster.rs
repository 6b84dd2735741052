//! Cluster lookups: the one trait the policy core depends on, and its waPC implementation.
//!
//! The host reports every failure as an error string; this module turns those strings into
//! a small set of outcomes the policy can act on deliberately.

use std::fmt;

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

impl fmt::Display for ObjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\" in namespace \"{}\"",
            self.kind, self.name, self.namespace
        )
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

impl LookupError {
    /// Classifies a host error message (the host tells these cases apart only by text).
    pub fn from_host_message(message: &str) -> Self {
        let lower = message.to_ascii_lowercase();
        if lower.contains("cannot find") || lower.contains("not found") {
            Self::NotFound
        } else if lower.contains("has not been granted access")
            || lower.contains("forbidden")
            || lower.contains("unauthorized")
        {
            Self::AccessDenied(message.to_owned())
        } else {
            Self::Failed(message.to_owned())
        }
    }
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

/// Read access to the cluster, as the policy core needs it.
pub trait Cluster {
    /// Fetches one object as raw JSON.
    fn get(&self, object: ObjectRef<'_>) -> Result<Value, LookupError>;
}

/// Lookups through the Kubewarden host (`kubernetes/get_resource`).
pub struct HostCluster;

impl Cluster for HostCluster {
    fn get(&self, object: ObjectRef<'_>) -> Result<Value, LookupError> {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::GetResourceRequest;

        let request = GetResourceRequest {
            api_version: object.api_version.to_owned(),
            kind: object.kind.to_owned(),
            name: object.name.to_owned(),
            namespace: Some(object.namespace.to_owned()),
            disable_cache: false,
            field_masks: None,
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|_| LookupError::Failed("cannot encode the lookup request".to_owned()))?;
        let answer = kubewarden_policy_sdk::wapc_guest::host_call(
            "kubewarden",
            "kubernetes",
            "get_resource",
            &payload,
        )
        .map_err(|error| {
            let text = error.to_string();
            // wapc-guest renders host errors as "Host error: <the host's message>".
            LookupError::from_host_message(text.strip_prefix("Host error: ").unwrap_or(&text))
        })?;
        // A syntax error message carries no input text, but keep it out anyway.
        serde_json::from_slice(&answer)
            .map_err(|_| LookupError::Failed("the host answered with invalid JSON".to_owned()))
    }
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
    }

    impl Cluster for FakeCluster {
        fn get(&self, object: ObjectRef<'_>) -> Result<Value, LookupError> {
            self.lookups.borrow_mut().push(object.to_string());
            self.answers
                .get(&(
                    object.kind.to_owned(),
                    object.namespace.to_owned(),
                    object.name.to_owned(),
                ))
                .cloned()
                .unwrap_or(Err(LookupError::NotFound))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_messages_are_classified() {
        let cases = [
            (
                "Cannot find v1/Secret named 'x' inside of namespace 'Some(\"ns\")'",
                LookupError::NotFound,
            ),
            (
                "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported.",
                LookupError::AccessDenied(String::new()),
            ),
            (
                "secrets \"x\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server\" cannot get resource",
                LookupError::AccessDenied(String::new()),
            ),
            (
                "the server has received too many requests",
                LookupError::Failed(String::new()),
            ),
        ];
        for (message, expected) in cases {
            let got = LookupError::from_host_message(message);
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&expected),
                "{message}"
            );
        }
    }
}
