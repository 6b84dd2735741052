//! The credentials hash: 64 lowercase hex characters, independent of entry order and of
//! unrelated entries, for any entry names and bytes.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use dittofs_s3_policy::credentials::{ConsumedCredentials, SecretData};
use dittofs_s3_policy::dittoserver::SecretKeys;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Arbitrary, Debug)]
struct Input {
    keys: (String, String, String),
    values: (Vec<u8>, Vec<u8>, Option<Vec<u8>>),
    unrelated: Vec<(String, Vec<u8>)>,
}

fn encode(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fuzz_target!(|input: Input| {
    // DittoServer validation requires three different key names.
    if input.keys.0 == input.keys.1 || input.keys.0 == input.keys.2 || input.keys.1 == input.keys.2
    {
        return;
    }
    let keys = SecretKeys {
        access_key_id: input.keys.0,
        secret_access_key: input.keys.1,
        endpoint: input.keys.2,
    };
    let mut consumed = vec![
        (keys.access_key_id.clone(), input.values.0),
        (keys.secret_access_key.clone(), input.values.1),
    ];
    if let Some(endpoint) = input.values.2 {
        consumed.push((keys.endpoint.clone(), endpoint));
    }
    let hash = |entries: &mut dyn Iterator<Item = (String, Value)>| {
        let secret = Value::Object(Map::from_iter([(
            "data".to_owned(),
            Value::Object(entries.collect()),
        )]));
        let data = SecretData::from_object(&secret).expect("a Secret-shaped object");
        ConsumedCredentials::read(&data, &keys)
            .map(|credentials| credentials.hash())
            .ok()
    };
    let plain = hash(&mut consumed.iter().map(|(k, v)| (k.clone(), encode(v))));
    let noisy = hash(
        &mut input
            .unrelated
            .iter()
            .filter(|(k, _)| {
                ![&keys.access_key_id, &keys.secret_access_key, &keys.endpoint].contains(&k)
            })
            .map(|(k, v)| (k.clone(), encode(v)))
            .chain(consumed.iter().rev().map(|(k, v)| (k.clone(), encode(v)))),
    );
    assert_eq!(plain, noisy, "unrelated entries or order changed the hash");
    if let Some(hash) = plain {
        assert!(
            hash.len() == 64
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
});
