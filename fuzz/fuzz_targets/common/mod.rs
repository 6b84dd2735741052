//! Shared by the fuzz targets: a cluster whose answers come from the fuzz input, and the
//! fake values no decision may carry.

use dittofs_s3_policy::cluster::{Cluster, Freshness, ListRef, LookupError, ObjectRef, Requester};
use dittofs_s3_policy::decision::Decision;
use serde_json::Value;

pub const FAKE_KEY: &str = "FUZZ-FAKE-ACCESS-KEY";
pub const FAKE_SECRET: &str = "FUZZ-FAKE-SECRET-KEY";

/// Answers DittoServer and Secret lookups and the DittoServer list with the given results;
/// every author may read.
pub struct ScriptedCluster {
    pub ditto_server: Result<Value, LookupError>,
    pub secret: Result<Value, LookupError>,
    pub ditto_servers: Result<Value, LookupError>,
}

impl Cluster for ScriptedCluster {
    /// The scripted body, about the object asked for (the policy refuses answers about
    /// another one), so that fuzzing reaches injection whatever names the request holds.
    fn fetch(
        &self,
        object: ObjectRef<'_>,
        _fields: &[String],
        _freshness: Freshness,
    ) -> Result<Value, LookupError> {
        let mut answer = if object.kind == "Secret" {
            self.secret.clone()
        } else {
            self.ditto_server.clone()
        }?;
        if let Some(body) = answer.as_object_mut() {
            body.insert("kind".into(), object.kind.into());
            let metadata = body
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(metadata) = metadata.as_object_mut() {
                metadata.insert("name".into(), object.name.into());
                metadata.insert("namespace".into(), object.namespace.into());
            }
        }
        Ok(answer)
    }

    fn fetch_list(&self, _list: ListRef<'_>, _fields: &[String]) -> Result<Vec<u8>, LookupError> {
        self.ditto_servers
            .clone()
            .map(|answer| answer.to_string().into_bytes())
    }

    fn review_access(
        &self,
        _requester: &Requester<'_>,
        _secret: ObjectRef<'_>,
    ) -> Result<bool, LookupError> {
        Ok(true)
    }
}

pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A DittoServer with credentials and a complete Secret, so fuzzing reaches injection.
pub fn healthy_cluster() -> ScriptedCluster {
    ScriptedCluster {
        ditto_server: Ok(serde_json::json!({"metadata": {"name": "d"},
            "spec": {"s3": {"credentialsSecretRef": {"secretName": "c"}}}})),
        secret: Ok(
            serde_json::json!({"data": {"accessKeyId": b64(FAKE_KEY), "secretAccessKey": b64(FAKE_SECRET),
            "endpoint": b64("https://s3.fuzz.example")}}),
        ),
        ditto_servers: Ok(serde_json::json!({"kind": "DittoServerList", "items": [
            {"metadata": {"name": "d", "namespace": "ns"},
             "spec": {"s3": {"credentialsSecretRef": {"secretName": "c"}}}}]})),
    }
}

impl ScriptedCluster {
    /// Everything this cluster says that is not the Secret's data: the DittoServer answers and
    /// every error text. The policy may quote these (a host error names what failed), so a fake
    /// value the fuzzer put there is not a leak when it comes back.
    fn public_text(&self) -> String {
        let secret_error = self.secret.as_ref().err();
        format!(
            "{:?} {:?} {secret_error:?}",
            self.ditto_server, self.ditto_servers
        )
    }
}

/// No decision may carry a Secret value (raw or base64) that only the Secret lookup could have
/// supplied: a value the request or the cluster's other answers contain may be quoted back.
pub fn assert_no_secret_values(decision: &Decision, input: &[u8], cluster: &ScriptedCluster) {
    let text = format!("{decision:?}");
    let public = format!(
        "{} {}",
        String::from_utf8_lossy(input),
        cluster.public_text()
    );
    for value in [
        FAKE_KEY.to_owned(),
        FAKE_SECRET.to_owned(),
        b64(FAKE_KEY),
        b64(FAKE_SECRET),
    ] {
        assert!(
            !text.contains(&value) || public.contains(&value),
            "decision leaks a Secret value"
        );
    }
}
