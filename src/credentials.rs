//! The S3 credentials a DittoServer's Secret holds: reading the consumed entries and hashing them.
//!
//! Values live only in [`SecretValue`], which never prints its content, so no message, warning
//! or log line can carry one by accident.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use serde_json::Value;

use crate::dittoserver::SecretKeys;
use crate::settings::Settings;

/// Prefix of the S3 Secret's entries in the hash input, as the operator keys them.
const HASH_SOURCE: &str = "s3";

/// Decoded bytes of one Secret entry.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// What a Secret holds under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    /// Present but unusable; the reason never contains the value.
    Invalid(&'static str),
    Present(SecretValue),
}

/// Read-only view of a Secret object's `data`.
pub struct SecretData<'a> {
    data: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> SecretData<'a> {
    /// Fails only when the object is not shaped like a Secret at all.
    pub fn from_object(secret: &'a Value) -> Result<Self, &'static str> {
        if !secret.is_object() {
            return Err("the lookup answer is not an object");
        }
        match secret.get("data") {
            None | Some(Value::Null) => Ok(Self { data: None }),
            Some(Value::Object(data)) => Ok(Self { data: Some(data) }),
            Some(_) => Err("its data is not a map"),
        }
    }

    pub fn entry(&self, key: &str) -> Entry {
        match self.data.and_then(|data| data.get(key)) {
            None | Some(Value::Null) => Entry::Missing,
            Some(Value::String(encoded)) => {
                match base64::engine::general_purpose::STANDARD.decode(encoded) {
                    Ok(bytes) => Entry::Present(SecretValue(bytes)),
                    Err(_) => Entry::Invalid("is not valid base64"),
                }
            }
            Some(_) => Entry::Invalid("is not a base64 string"),
        }
    }
}

/// The entries the `dittofs` container consumes, when the Secret has all required ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedCredentials {
    entries: BTreeMap<String, SecretValue>,
}

/// Why the consumed entries cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryProblem {
    pub key: String,
    pub problem: &'static str,
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry \"{}\" {}", self.key, self.problem)
    }
}

impl ConsumedCredentials {
    /// Reads the access-key and secret-key entries (required, non-empty) and the endpoint
    /// entry (optional). All problems are reported, never a value.
    pub fn read(secret: &SecretData<'_>, keys: &SecretKeys) -> Result<Self, Vec<EntryProblem>> {
        let mut entries = BTreeMap::new();
        let mut problems = Vec::new();
        for key in [&keys.access_key_id, &keys.secret_access_key] {
            match secret.entry(key) {
                Entry::Present(value) if !value.as_bytes().is_empty() => {
                    entries.insert(key.clone(), value);
                }
                Entry::Present(_) => problems.push(EntryProblem {
                    key: key.clone(),
                    problem: "is empty",
                }),
                Entry::Missing => problems.push(EntryProblem {
                    key: key.clone(),
                    problem: "is missing",
                }),
                Entry::Invalid(problem) => problems.push(EntryProblem {
                    key: key.clone(),
                    problem,
                }),
            }
        }
        match secret.entry(&keys.endpoint) {
            Entry::Present(value) => {
                entries.insert(keys.endpoint.clone(), value);
            }
            Entry::Missing => {}
            Entry::Invalid(problem) => problems.push(EntryProblem {
                key: keys.endpoint.clone(),
                problem,
            }),
        }
        if problems.is_empty() {
            Ok(Self { entries })
        } else {
            Err(problems)
        }
    }

    /// Lowercase hex SHA-256 over the consumed entries, keyed `s3:<secret key>`, sorted by
    /// that key, each framed `<len(key)>:<key>:<len(value)>:<value>`.
    pub fn hash(&self) -> String {
        // Entries sorted by secret key are also sorted by "s3:" + secret key.
        hash_entries(
            self.entries
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_bytes())),
        )
    }
}

/// The Secret fields the policy reads: the consumed entries. A key containing `.` cannot be
/// named alone in a field mask (there is no escaping), so then the whole `data` is asked for.
pub fn consumed_fields(keys: &SecretKeys) -> Vec<String> {
    let consumed = [&keys.access_key_id, &keys.secret_access_key, &keys.endpoint];
    if consumed.iter().any(|key| key.contains('.')) {
        return vec!["data".to_owned()];
    }
    consumed.iter().map(|key| ["data.", key].concat()).collect()
}

/// Hashes entries that arrive sorted by key, each keyed `<HASH_SOURCE>:<key>` and framed so no
/// two splits of the same bytes collide.
fn hash_entries<'v>(entries: impl Iterator<Item = (&'v str, &'v [u8])>) -> String {
    let mut hasher = hmac_sha256::Hash::new();
    // `<length of keyed>:<keyed>:<length of value>:<value>`, fed piece by piece (itoa, not
    // format!: every injection hashes).
    let mut digits = itoa::Buffer::new();
    for (key, value) in entries {
        hasher.update(digits.format(HASH_SOURCE.len() + 1 + key.len()));
        hasher.update(b":");
        hasher.update(HASH_SOURCE);
        hasher.update(b":");
        hasher.update(key);
        hasher.update(b":");
        hasher.update(digits.format(value.len()));
        hasher.update(b":");
        hasher.update(value);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(2 * digest.len());
    for nibble in digest.iter().flat_map(|byte| [byte >> 4, byte & 0xf]) {
        hex.extend(char::from_digit(u32::from(nibble), 16));
    }
    hex
}

/// Why an endpoint entry is unusable. The texts never contain any part of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointProblem {
    NotText,
    WhitespaceOrControl,
    NotAbsoluteUrl,
    HasUserInfo,
    InsecureScheme,
    HostNotAllowed,
}

impl EndpointProblem {
    /// Breaking `allowedEndpointHosts` is a hard rule, whatever `secretCheck` says.
    pub fn breaks_allow_list(self) -> bool {
        self == Self::HostNotAllowed
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::NotText => "is not UTF-8 text",
            Self::WhitespaceOrControl => {
                "must not contain whitespace or control characters (often a trailing newline)"
            }
            Self::NotAbsoluteUrl => "must be an absolute URL with a host (scheme://host[:port])",
            Self::HasUserInfo => "must not embed a user name or password",
            Self::InsecureScheme => "must use https (http only with allowInsecureEndpoint)",
            Self::HostNotAllowed => "has a host that is not in allowedEndpointHosts",
        }
    }
}

/// Checks an endpoint entry: an absolute `https` URL (or `http` when allowed) whose host
/// matches `allowed_hosts` when that list is set.
pub fn check_endpoint(
    value: &SecretValue,
    allow_insecure: bool,
    allowed_hosts: Option<&[String]>,
) -> Result<(), EndpointProblem> {
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| EndpointProblem::NotText)?;
    // The AWS SDK refuses such an endpoint at run time; `echo … | base64` adds a newline.
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EndpointProblem::WhitespaceOrControl);
    }
    // http::Uri parses RFC 3986 URIs without IDNA tables (which would double the module's size);
    // a non-ASCII host is simply not a valid endpoint here.
    let uri: http::Uri = text.parse().map_err(|_| EndpointProblem::NotAbsoluteUrl)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(EndpointProblem::NotAbsoluteUrl);
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(EndpointProblem::NotAbsoluteUrl);
    }
    if authority.as_str().contains('@') {
        return Err(EndpointProblem::HasUserInfo);
    }
    match scheme {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(EndpointProblem::InsecureScheme),
        _ => return Err(EndpointProblem::NotAbsoluteUrl),
    }
    if let Some(allowed) = allowed_hosts
        && !allowed
            .iter()
            .any(|pattern| crate::naming::host_matches(pattern, &host))
    {
        return Err(EndpointProblem::HostNotAllowed);
    }
    Ok(())
}

/// An endpoint entry that breaks the endpoint rules, named by its key, never by its value.
pub struct EndpointFinding {
    pub problem: EndpointProblem,
    /// `entry "<key>" <rule>`.
    pub message: String,
}

/// One way a Secret breaks the rules for the entries a DittoServer consumes, never quoting a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProblem {
    /// `entry "<key>" <rule>`.
    pub message: String,
    /// Breaks `allowedEndpointHosts`: a hard rule wherever the Secret is checked.
    pub hard: bool,
    /// The Secret entry it is about.
    pub key: String,
}

/// Every problem of the entries `keys` names in `secret`: the required ones present and
/// non-empty, valid base64, and the endpoint (when there is one) within the endpoint rules.
/// The DittoServer review and the Secret guard apply exactly these.
pub fn credential_problems(
    secret: &SecretData<'_>,
    keys: &SecretKeys,
    settings: &Settings,
) -> Vec<CredentialProblem> {
    let mut problems: Vec<CredentialProblem> = ConsumedCredentials::read(secret, keys)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|problem| CredentialProblem {
            message: problem.to_string(),
            hard: false,
            key: problem.key.clone(),
        })
        .collect();
    problems.extend(
        endpoint_finding(secret, &keys.endpoint, settings).map(|finding| CredentialProblem {
            message: finding.message,
            hard: finding.problem.breaks_allow_list(),
            key: keys.endpoint.clone(),
        }),
    );
    problems
}

/// Checks the endpoint entry, when the Secret has one, against the settings' endpoint rules.
pub fn endpoint_finding(
    secret: &SecretData<'_>,
    key: &str,
    settings: &Settings,
) -> Option<EndpointFinding> {
    let Entry::Present(endpoint) = secret.entry(key) else {
        return None;
    };
    let problem = check_endpoint(
        &endpoint,
        settings.allow_insecure_endpoint,
        settings.allowed_endpoint_hosts.as_deref(),
    )
    .err()?;
    Some(EndpointFinding {
        problem,
        message: format!("entry \"{key}\" {}", problem.describe()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn keys() -> SecretKeys {
        SecretKeys::default()
    }

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3"}, "data": data})
    }

    #[test]
    fn framing_matches_the_operator_definition() {
        // Independent computation of the documented framing for one known input.
        let expected_input =
            "14:s3:accessKeyId:12:FAKE-KEY-ID118:s3:secretAccessKey:15:FAKE-SECRET-KEY";
        let expected: String = Sha256::digest(expected_input.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let object = secret(json!({
            "secretAccessKey": b64("FAKE-SECRET-KEY"),
            "accessKeyId": b64("FAKE-KEY-ID1"),
        }));
        let data = SecretData::from_object(&object).expect("secret");
        let hash = ConsumedCredentials::read(&data, &keys())
            .expect("complete")
            .hash();
        assert_eq!(hash, expected);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn unrelated_keys_and_metadata_do_not_change_the_hash() {
        let base = secret(json!({"accessKeyId": b64("FAKE-A"), "secretAccessKey": b64("FAKE-S")}));
        let mut noisy = secret(json!({
            "unrelated": b64("anything"),
            "secretAccessKey": b64("FAKE-S"),
            "accessKeyId": b64("FAKE-A"),
        }));
        noisy["metadata"]["resourceVersion"] = json!("42");
        noisy["metadata"]["labels"] = json!({"a": "b"});
        let hash = |object: &Value| {
            ConsumedCredentials::read(&SecretData::from_object(object).expect("secret"), &keys())
                .expect("complete")
                .hash()
        };
        assert_eq!(hash(&base), hash(&noisy));
    }

    #[test]
    fn rotated_values_and_endpoint_change_the_hash() {
        let hash = |data: Value| {
            let object = secret(data);
            ConsumedCredentials::read(&SecretData::from_object(&object).expect("secret"), &keys())
                .expect("complete")
                .hash()
        };
        let original =
            hash(json!({"accessKeyId": b64("FAKE-A"), "secretAccessKey": b64("FAKE-S")}));
        let rotated =
            hash(json!({"accessKeyId": b64("FAKE-A"), "secretAccessKey": b64("FAKE-S2")}));
        let with_endpoint = hash(json!({
            "accessKeyId": b64("FAKE-A"), "secretAccessKey": b64("FAKE-S"),
            "endpoint": b64("https://s3.cubbit.eu"),
        }));
        assert_ne!(original, rotated);
        assert_ne!(original, with_endpoint);
    }

    #[test]
    fn framing_separates_different_splits_of_the_same_bytes() {
        let split_a = hash_entries([("a", &b"bc"[..])].into_iter());
        let split_b = hash_entries([("ab", &b"c"[..])].into_iter());
        assert_ne!(split_a, split_b);
    }

    #[test]
    fn problems_name_keys_never_values() {
        let object = secret(json!({
            "accessKeyId": "not*base64!",
            "secretAccessKey": "",
            "endpoint": 7,
        }));
        let data = SecretData::from_object(&object).expect("secret");
        let problems = ConsumedCredentials::read(&data, &keys()).expect_err("incomplete");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "entry \"accessKeyId\" is not valid base64",
                "entry \"secretAccessKey\" is empty",
                "entry \"endpoint\" is not a base64 string",
            ]
        );
    }

    #[test]
    fn missing_data_means_missing_entries() {
        let object = json!({"kind": "Secret"});
        let data = SecretData::from_object(&object).expect("secret");
        let problems = ConsumedCredentials::read(&data, &keys()).expect_err("incomplete");
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().all(|p| p.problem == "is missing"));
    }

    #[test]
    fn non_secret_shapes_are_refused() {
        assert!(SecretData::from_object(&json!("text")).is_err());
        assert!(SecretData::from_object(&json!({"data": []})).is_err());
    }

    #[test]
    fn debug_output_redacts_values() {
        let value = SecretValue(b"FAKE-SECRET".to_vec());
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted>)");
        let entry = Entry::Present(value);
        assert!(!format!("{entry:?}").contains("FAKE"));
    }
    #[test]
    fn endpoint_rules() {
        let allowed = vec!["*.cubbit.eu".to_owned(), "minio.local".to_owned()];
        let check = |text: &str, insecure: bool, hosts: Option<&[String]>| {
            check_endpoint(&SecretValue(text.as_bytes().to_vec()), insecure, hosts)
        };
        assert_eq!(check("https://s3.cubbit.eu", false, None), Ok(()));
        assert_eq!(
            check("https://s3.acme.cubbit.eu/", false, Some(&allowed)),
            Ok(())
        );
        assert_eq!(
            check("http://minio.local:9000", true, Some(&allowed)),
            Ok(())
        );
        assert_eq!(
            check("https://[::1]:9000", false, Some(&["::1".to_owned()])),
            Ok(())
        );
        assert_eq!(
            check("http://s3.cubbit.eu", false, None),
            Err(EndpointProblem::InsecureScheme)
        );
        assert_eq!(
            check("s3.cubbit.eu", false, None),
            Err(EndpointProblem::NotAbsoluteUrl)
        );
        assert_eq!(
            check("ftp://s3.cubbit.eu", false, None),
            Err(EndpointProblem::NotAbsoluteUrl)
        );
        assert_eq!(
            check("https://", false, None),
            Err(EndpointProblem::NotAbsoluteUrl)
        );
        assert_eq!(
            check("https://key:FAKE@s3.cubbit.eu", false, None),
            Err(EndpointProblem::HasUserInfo)
        );
        assert_eq!(
            check("https://s3.amazonaws.com", false, Some(&allowed)),
            Err(EndpointProblem::HostNotAllowed)
        );
        assert_eq!(
            check("https://cubbit.eu", false, Some(&allowed)),
            Err(EndpointProblem::HostNotAllowed)
        );
        assert_eq!(
            check_endpoint(&SecretValue(vec![0xff, 0xfe]), false, None),
            Err(EndpointProblem::NotText)
        );
        for padded in [
            "https://s3.cubbit.eu\n",
            " https://s3.cubbit.eu",
            "https://s3.cubbit.eu\t",
            "https://s3.cubbit.eu\u{7f}",
            "https://s3.cubbit.eu\u{a0}",
        ] {
            assert_eq!(
                check(padded, false, None),
                Err(EndpointProblem::WhitespaceOrControl),
                "{padded:?}"
            );
        }
        assert!(EndpointProblem::HostNotAllowed.breaks_allow_list());
        assert!(!EndpointProblem::InsecureScheme.breaks_allow_list());
    }

    #[test]
    fn the_fields_read_are_the_consumed_entries_or_all_data_for_dotted_keys() {
        assert_eq!(
            consumed_fields(&keys()),
            ["data.accessKeyId", "data.secretAccessKey", "data.endpoint"]
        );
        let dotted = SecretKeys {
            endpoint: "s3.endpoint".into(),
            ..keys()
        };
        assert_eq!(consumed_fields(&dotted), ["data"]);
    }
}
