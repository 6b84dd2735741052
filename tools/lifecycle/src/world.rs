//! The cluster around the policy in the scenario: one DittoServer, its Secrets, what the API
//! server answers, and the objects the operator and the controllers write. Expected values
//! (env, hash, record) are computed here from the documented definitions, not by the policy.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::tool::Lookup;

pub const NS: &str = "dittofs-system";
pub const NAME: &str = "dittofs-s3-sample";
/// Who writes the DittoServer in the scenario (its groups sorted, as the policy sends them).
const OPERATOR: &str = "system:serviceaccount:dittofs-system:dittofs-operator";
const OPERATOR_GROUPS: [&str; 2] = ["system:authenticated", "system:serviceaccounts"];

/// Who writes a request: the operator's service account (which may read the Secrets of its
/// namespace), or a person with or without `get` on them.
#[derive(Clone, Copy)]
pub struct Author {
    pub user: &'static str,
    /// Sorted, as the policy sends them.
    pub groups: &'static [&'static str],
    pub may_read_secrets: bool,
}

pub const THE_OPERATOR: Author = Author {
    user: OPERATOR,
    groups: &OPERATOR_GROUPS,
    may_read_secrets: true,
};
pub const HASH_ANNOTATION: &str = "dittofs.io/s3-credentials-hash";
pub const RECORD_ANNOTATION: &str = "dittofs.io/s3-credentials-source";
const MANAGED: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
];

/// Fake credentials: obviously not real, and checked for in everything the tools print.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub endpoint: String,
}

/// How the API server answers lookups of Secrets.
#[derive(Clone, Copy, PartialEq)]
pub enum SecretAccess {
    Granted,
    /// RBAC refuses, with a text that itself says "not found".
    DeniedByRbac,
}

pub struct World {
    /// The stored DittoServer, or `None` once deleted.
    pub dittoserver: Option<Value>,
    /// The DittoServer lookup fails with this API error instead of answering.
    pub dittoserver_error: Option<String>,
    pub secrets: BTreeMap<String, Credentials>,
    pub secret_access: SecretAccess,
    /// Operator v0.4-v0.12 render the AWS env themselves; other builds do not.
    pub operator_renders_env: bool,
    /// Increases on each operator reconcile (it rewrites its own config-hash).
    pub generation: u32,
}

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

pub fn dittoserver(secret_name: &str, region: &str, bucket: &str) -> Value {
    json!({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
           "metadata": {"name": NAME, "namespace": NS, "uid": "7d1e3c2a-0000-4000-8000-000000000001"},
           "spec": {"image": "marmos91c/dittofs:0.12.0", "replicas": 1,
                    "s3": {"credentialsSecretRef": {"secretName": secret_name},
                           "region": region, "bucket": bucket}}})
}

impl World {
    fn s3(&self) -> Option<&Value> {
        self.dittoserver.as_ref()?.pointer("/spec/s3")
    }

    pub fn secret_name(&self) -> String {
        self.s3()
            .and_then(|s3| s3.pointer("/credentialsSecretRef/secretName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    pub fn region(&self) -> String {
        self.s3()
            .and_then(|s3| s3.get("region"))
            .and_then(Value::as_str)
            .unwrap_or("eu-west-1")
            .to_owned()
    }

    /// Every credential value the cluster has held, for the leak check.
    pub fn all_values(&self) -> Vec<String> {
        self.secrets
            .values()
            .flat_map(|c| {
                [
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.endpoint.clone(),
                ]
            })
            .collect()
    }

    fn not_found(api_version: &str, kind: &str, name: &str) -> String {
        format!(
            "Cannot find {api_version}/{kind} named '{name}' inside of namespace 'Some(\"{NS}\")'"
        )
    }

    pub fn dittoserver_lookup(&self) -> Lookup {
        let answer = match (&self.dittoserver_error, &self.dittoserver) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(object)) => Ok(object.clone()),
            (None, None) => Err(Self::not_found(
                "dittofs.dittofs.com/v1alpha1",
                "DittoServer",
                NAME,
            )),
        };
        Lookup::Get {
            api_version: "dittofs.dittofs.com/v1alpha1",
            kind: "DittoServer",
            namespace: NS.to_owned(),
            name: NAME.to_owned(),
            fields: &["spec.s3"],
            answer,
        }
    }

    fn secret_answer(&self, name: &str) -> Result<Value, String> {
        match (self.secret_access, self.secret_object(name)) {
            (SecretAccess::DeniedByRbac, _) => Err(format!(
                "ApiError: secrets \"{name}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server\" \
                 cannot get resource \"secrets\" in API group \"\" in the namespace \"{NS}\": RBAC: \
                 clusterrole.rbac.authorization.k8s.io \"dittofs-secret-reader\" not found: Forbidden"
            )),
            (SecretAccess::Granted, None) => Err(Self::not_found("v1", "Secret", name)),
            (SecretAccess::Granted, Some(object)) => Ok(object),
        }
    }

    /// The Secret `name` as stored, when it exists.
    pub fn secret_object(&self, name: &str) -> Option<Value> {
        self.secrets
            .get(name)
            .map(|credentials| secret_object(name, credentials))
    }

    /// The DittoServers of the namespace as stored.
    pub fn dittoservers(&self) -> Vec<Value> {
        self.dittoserver.iter().cloned().collect()
    }

    /// The Secret guard's list of the namespace's DittoServers.
    pub fn list_lookup(&self) -> Lookup {
        Lookup::List {
            api_version: "dittofs.dittofs.com/v1alpha1",
            kind: "DittoServer",
            namespace: NS.to_owned(),
            fields: &["metadata.name", "spec.s3.credentialsSecretRef"],
            items: self.dittoservers(),
        }
    }

    pub fn secret_lookup(&self, name: &str) -> Lookup {
        Lookup::Get {
            api_version: "v1",
            kind: "Secret",
            namespace: NS.to_owned(),
            name: name.to_owned(),
            fields: &["data.accessKeyId", "data.endpoint", "data.secretAccessKey"],
            answer: self.secret_answer(name),
        }
    }

    /// Whether a workload write now meets a failed lookup, after which the policy keeps what the
    /// workload has and reads the endpoint entry of the Secret it still names.
    pub fn workload_lookup_fails(&self) -> bool {
        self.dittoserver_error.is_some()
            || self.dittoserver.is_none()
            || self.secret_access == SecretAccess::DeniedByRbac
            || !self.secrets.contains_key(&self.secret_name())
    }

    /// The endpoint entry of a Secret a kept workload still names.
    pub fn kept_endpoint_lookup(&self, name: &str) -> Lookup {
        Lookup::Get {
            api_version: "v1",
            kind: "Secret",
            namespace: NS.to_owned(),
            name: name.to_owned(),
            fields: &["data.endpoint"],
            answer: self.secret_answer(name),
        }
    }

    /// Whether `author` may read the Secret `name`, as the API server answers.
    pub fn access_lookup(&self, author: Author, name: &str) -> Lookup {
        let answer = if author.may_read_secrets {
            json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding"})
        } else {
            json!({"allowed": false, "reason": "no RBAC policy matched"})
        };
        Lookup::MayGetSecret {
            user: author.user.to_owned(),
            groups: author.groups.iter().map(|g| (*g).to_owned()).collect(),
            namespace: NS.to_owned(),
            name: name.to_owned(),
            answer: Ok(answer),
        }
    }

    /// What a Pod or StatefulSet review may look up (answers are whole objects, as from a host
    /// older than 1.33 that ignores the masks; test_data's sessions hold masked answers): the owner, then the Secret it names.
    pub fn workload_lookups(&self) -> Vec<Lookup> {
        let mut lookups = vec![self.dittoserver_lookup()];
        if self.dittoserver_error.is_none() && self.dittoserver.is_some() {
            lookups.push(self.secret_lookup(&self.secret_name()));
        }
        lookups
    }

    /// The four variables for the current spec.s3, in the operator's order.
    pub fn expected_env(&self) -> Vec<Value> {
        let name = self.secret_name();
        vec![
            json!({"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": name, "key": "accessKeyId"}}}),
            json!({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": name, "key": "secretAccessKey"}}}),
            json!({"name": "AWS_ENDPOINT_URL", "valueFrom": {"secretKeyRef": {"name": name, "key": "endpoint", "optional": true}}}),
            json!({"name": "AWS_REGION", "value": self.region()}),
        ]
    }

    /// SHA-256 over the consumed entries keyed `s3:<key>`, sorted, framed `len:key:len:value`.
    pub fn expected_hash(&self) -> String {
        let Some(credentials) = self.secrets.get(&self.secret_name()) else {
            return String::new();
        };
        let mut entries = [
            ("s3:accessKeyId", &credentials.access_key_id),
            ("s3:endpoint", &credentials.endpoint),
            ("s3:secretAccessKey", &credentials.secret_access_key),
        ];
        entries.sort();
        let framed: String = entries
            .iter()
            .map(|(key, value)| format!("{}:{key}:{}:{value}", key.len(), value.len()))
            .collect();
        Sha256::digest(framed.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    pub fn expected_record(&self) -> String {
        format!(
            r#"{{"secretName":"{}","accessKeyIdKey":"accessKeyId","secretAccessKeyKey":"secretAccessKey","endpointKey":"endpoint","region":"{}"}}"#,
            self.secret_name(),
            self.region()
        )
    }

    /// The StatefulSet as the operator writes it: a fresh annotation map and its own env.
    pub fn operator_statefulset(&mut self) -> Value {
        self.generation += 1;
        let mut env = vec![json!({"name": "DITTOFS_LOG_LEVEL", "value": "info"})];
        if self.operator_renders_env {
            env.extend(self.expected_env());
        }
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": NAME, "namespace": NS, "generation": self.generation,
                            "ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
                                                 "name": NAME, "uid": "7d1e3c2a-0000-4000-8000-000000000001",
                                                 "controller": true, "blockOwnerDeletion": true}]},
               "spec": {"replicas": 1, "serviceName": NAME,
                        "selector": {"matchLabels": {"app": "dittofs-server", "instance": NAME}},
                        "template": {
                            "metadata": {"labels": {"app": "dittofs-server", "instance": NAME},
                                         "annotations": {"dittofs.io/config-hash": format!("generation-{}", self.generation)}},
                            // As operator v0.12.0 renders it: command, args, its config
                            // mount and preStop hook pass the credential-route rules untouched.
                            "spec": {"containers": [{"name": "dittofs", "image": "marmos91c/dittofs:0.12.0",
                                                     "command": ["/app/dfs"],
                                                     "args": ["start", "--foreground", "--config", "/config/config.yaml"],
                                                     "env": env,
                                                     "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": true}],
                                                     "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                                                     "futureField": {"kept": true}}],
                                     "volumes": [{"name": "config", "configMap": {"name": format!("{NAME}-config")}}]}}}})
    }
}

/// A Secret holding `credentials` under the keys DittoServers consume by default, and one more.
pub fn secret_object(name: &str, credentials: &Credentials) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "Opaque",
        "data": {"accessKeyId": b64(&credentials.access_key_id),
                 "secretAccessKey": b64(&credentials.secret_access_key),
                 "endpoint": b64(&credentials.endpoint),
                 "unrelated": b64("not consumed")}})
}

/// The entries of a Secret object, decoded (those that are text).
pub fn secret_values(secret: &Value) -> Vec<String> {
    secret["data"]
        .as_object()
        .map(|data| {
            data.values()
                .filter_map(Value::as_str)
                .filter_map(|encoded| {
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .ok()
                })
                .filter_map(|bytes| String::from_utf8(bytes).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A pod the StatefulSet controller creates from a template.
pub fn pod_from(statefulset: &Value, ordinal: u32) -> Value {
    let template = &statefulset["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!(format!("{NAME}-{ordinal}"));
    metadata["namespace"] = json!(NS);
    metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": NAME,
                                          "uid": "0b5c1e2d-0000-4000-8000-000000000002", "controller": true}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"].clone()})
}

/// The part of a pod spec or template the policy writes: its env entries, hash and record.
pub fn policy_state(object: &Value) -> (Vec<Value>, Value, Value) {
    let (spec, metadata) = match object.pointer("/spec/template") {
        Some(template) => (&template["spec"], &template["metadata"]),
        None => (&object["spec"], &object["metadata"]),
    };
    let env = spec["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "dittofs"))
        .and_then(|container| container["env"].as_array())
        .map(|env| {
            env.iter()
                .filter(|entry| {
                    entry["name"]
                        .as_str()
                        .is_some_and(|name| MANAGED.contains(&name))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let annotation = |key: &str| metadata["annotations"][key].clone();
    (
        env,
        annotation(HASH_ANNOTATION),
        annotation(RECORD_ANNOTATION),
    )
}

/// A bare AdmissionRequest as the API server sends it for `author`.
pub fn admission_request(
    kind: &str,
    operation: &str,
    object: &Value,
    old: &Value,
    author: Author,
) -> Value {
    let (group, version, resource) = match kind {
        "Pod" => ("", "v1", "pods"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "Secret" => ("", "v1", "secrets"),
        _ => ("dittofs.dittofs.com", "v1alpha1", "dittoservers"),
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let options = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let name = object["metadata"]["name"]
        .as_str()
        .or_else(|| old["metadata"]["name"].as_str())
        .unwrap_or_default();
    let mut request = BTreeMap::new();
    request.insert(
        "uid",
        json!(format!("lifecycle-{kind}-{operation}").to_lowercase()),
    );
    request.insert("kind", gvk.clone());
    request.insert("resource", gvr.clone());
    request.insert("requestKind", gvk);
    request.insert("requestResource", gvr);
    request.insert("name", json!(name));
    request.insert("namespace", json!(NS));
    request.insert("operation", json!(operation));
    request.insert(
        "userInfo",
        json!({"username": author.user, "groups": author.groups}),
    );
    request.insert("object", object.clone());
    request.insert("oldObject", old.clone());
    request.insert("dryRun", json!(false));
    request.insert(
        "options",
        json!({"kind": options, "apiVersion": "meta.k8s.io/v1"}),
    );
    json!(request)
}

/// The Secret a workload's `AWS_ENDPOINT_URL` entry names (Pod or StatefulSet template).
pub fn endpoint_secret(object: &Value) -> Option<String> {
    let spec = object
        .pointer("/spec/template/spec")
        .unwrap_or(&object["spec"]);
    spec["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "dittofs")?["env"]
        .as_array()?
        .iter()
        .find(|entry| entry["name"] == "AWS_ENDPOINT_URL")?
        .pointer("/valueFrom/secretKeyRef/name")?
        .as_str()
        .map(str::to_owned)
}
