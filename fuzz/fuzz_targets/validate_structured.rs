//! Structure-aware: admission requests with DittoServer / Pod / StatefulSet objects built from
//! the fields the policy reads, and arbitrary lookup answers (objects, garbage, errors).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use arbitrary::{Arbitrary, Unstructured};
use dittofs_s3_policy::admission::decide_payload;
use dittofs_s3_policy::cluster::LookupError;
use dittofs_s3_policy::decision::Verdict;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "metadata",
    "name",
    "namespace",
    "labels",
    "app",
    "instance",
    "annotations",
    "ownerReferences",
    "apiVersion",
    "kind",
    "controller",
    "spec",
    "s3",
    "credentialsSecretRef",
    "secretName",
    "accessKeyIdKey",
    "secretAccessKeyKey",
    "endpointKey",
    "region",
    "bucket",
    "template",
    "containers",
    "env",
    "value",
    "valueFrom",
    "secretKeyRef",
    "key",
    "optional",
    "data",
    "deletionTimestamp",
    "generateName",
];
const STRINGS: &[&str] = &[
    "dittofs-server",
    "dittofs",
    "d",
    "c",
    "DittoServer",
    "dittofs.dittofs.com/v1alpha1",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "eu-west-1",
    "accessKeyId",
    "secretAccessKey",
    "endpoint",
    "",
    "Ünïcødé",
    "dittofs.io/s3-credentials-hash",
    "RlVaWg==",
    "%%%",
    "https://s3.cubbit.eu",
    "http://x",
];

/// JSON biased towards the shapes and names the policy reads.
fn json_value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let choice = if depth == 0 {
        u.int_in_range(0..=4)?
    } else {
        u.int_in_range(0..=7)?
    };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => Value::String((*u.choose(STRINGS)?).to_owned()),
        4 => Value::String(u.arbitrary()?),
        5 => Value::Array(
            (0..u.int_in_range(0..=4)?)
                .map(|_| json_value(u, depth - 1))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=5)? {
                let key = if u.ratio(7, 8)? {
                    (*u.choose(KEYS)?).to_owned()
                } else {
                    u.arbitrary()?
                };
                map.insert(key, json_value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

fn answer(u: &mut Unstructured<'_>, good: Value) -> arbitrary::Result<Result<Value, LookupError>> {
    Ok(match u.int_in_range(0..=4)? {
        0 => Ok(good),
        1 => Ok(json_value(u, 6)?),
        2 => Err(LookupError::NotFound),
        3 => Err(LookupError::AccessDenied(u.arbitrary()?)),
        _ => Err(LookupError::Failed(u.arbitrary()?)),
    })
}

struct Input {
    payload: Vec<u8>,
    cluster: common::ScriptedCluster,
}

/// Shown when a crash is reported: the payload (the lookup answers hold only fake values).
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.payload))
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let (group, kind) = *u.choose(&[
            ("dittofs.dittofs.com", "DittoServer"),
            ("", "Pod"),
            ("apps", "StatefulSet"),
            ("", "Secret"),
            ("", "ConfigMap"),
        ])?;
        let operation = *u.choose(&["CREATE", "UPDATE", "DELETE", "CONNECT"])?;
        let settings = if u.ratio(3, 4)? {
            json!({"workloads": *u.choose(&["inject", "verify"])?, "onEnvConflict": *u.choose(&["reject", "overwrite"])?,
                   "secretCheck": *u.choose(&["warn", "reject", "skip"])?})
        } else {
            json_value(u, 3)?
        };
        // Secrets named as the listed DittoServer's, so the guard's rules are reached.
        let object_of = |u: &mut Unstructured<'a>| -> arbitrary::Result<Value> {
            Ok(if kind == "Secret" && u.ratio(1, 2)? {
                json!({"metadata": {"name": "c"}, "type": "Opaque", "data": json_value(u, 3)?})
            } else {
                json_value(u, 8)?
            })
        };
        let (object, old_object) = (object_of(u)?, object_of(u)?);
        let request = json!({
            "uid": "fuzz", "kind": {"group": group, "version": "v1", "kind": kind}, "operation": operation,
            "namespace": "ns", "object": object, "oldObject": old_object,
        });
        let payload = serde_json::to_vec(&json!({"request": request, "settings": settings}))
            .unwrap_or_default();
        let healthy = common::healthy_cluster();
        let cluster = common::ScriptedCluster {
            ditto_server: answer(u, healthy.ditto_server.unwrap_or_default())?,
            secret: answer(u, healthy.secret.unwrap_or_default())?,
            ditto_servers: answer(u, healthy.ditto_servers.unwrap_or_default())?,
        };
        Ok(Input { payload, cluster })
    }
}

fuzz_target!(|input: Input| {
    let decision = decide_payload(&input.payload, &input.cluster);
    common::assert_no_secret_values(&decision, &input.payload, &input.cluster);
    if let Verdict::Reject(message) = &decision.verdict {
        assert!(!message.is_empty());
    }
});
