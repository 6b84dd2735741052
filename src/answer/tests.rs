use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Strings with what JSON escapes, what it does not (`/`, non-ASCII), and plain runs long
/// enough to fill eight-byte words.
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9\"\\\\/\u{0}-\u{1f}\u{7f}é€😀 ]{0,20}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn written(decision: Decision) -> Vec<u8> {
    let mut out = Vec::new();
    write(decision, &mut out).expect("written");
    out
}

proptest! {
    /// The hand-written path and serde_json write the same bytes, for any object.
    #[test]
    fn a_mutation_is_written_as_serde_json_writes_it(
        object in json_value(),
        warnings in proptest::collection::vec(text(), 0..3),
    ) {
        let decision = Decision::mutate(object).with_warnings(warnings);
        let expected = serde_json::to_vec(&response(decision.clone())).expect("json");
        prop_assert_eq!(String::from_utf8(written(decision)), String::from_utf8(expected));
    }
}

/// What a host reads from the answer: the SDK's type, as kwctl and policy-server parse it.
fn read(decision: Decision) -> ValidationResponse {
    serde_json::from_slice(&written(decision)).expect("hosts read it")
}

#[test]
fn each_verdict_reads_as_the_sdk_answer() {
    let accepted = read(Decision::accept());
    assert!(accepted.accepted);
    assert_eq!((accepted.message, accepted.warnings), (None, None));
    assert!(accepted.mutated_object.is_none());

    let warned = read(Decision::accept().with_warnings(vec!["w".into()]));
    assert!(warned.accepted);
    assert_eq!(warned.warnings, Some(vec!["w".to_owned()]));

    let rejected = read(Decision::reject("no \"way\""));
    assert!(!rejected.accepted);
    assert_eq!(rejected.message.as_deref(), Some("no \"way\""));
    assert!(rejected.mutated_object.is_none());

    let mutated = read(Decision::mutate(json!({"a": [1, "b"]})).with_warnings(vec!["w".into()]));
    assert!(mutated.accepted);
    assert_eq!(mutated.mutated_object, Some(json!({"a": [1, "b"]})));
    assert_eq!(mutated.message, None);
    assert_eq!(mutated.warnings, Some(vec!["w".to_owned()]));
}

#[test]
fn every_escaped_byte_is_found_wherever_it_is() {
    let escaped = (0u8..0x20).chain([b'"', b'\\']);
    for byte in escaped {
        for position in 0..17 {
            let mut text = vec![b'a'; 17];
            if let Some(slot) = text.get_mut(position) {
                *slot = byte;
            }
            assert!(needs_escape(&text), "{byte:#x} at {position}");
        }
    }
    let plain = "plain text/with é, € and 😀, \u{7f}".as_bytes();
    assert!(!needs_escape(plain));
    assert!(!needs_escape(b""));
}
