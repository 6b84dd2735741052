//! The bytes of the `validate` answer: the SDK's `ValidationResponse` as serde_json writes it.
//! A mutation answers with the whole object, which serde_json's serializer wrote at about 30
//! WebAssembly instructions a byte, most of it scanning strings for characters to escape one
//! byte at a time (an injection's largest cost of its own: docs/performance.md). The object is
//! written here instead, byte for byte as serde_json would: a string is checked eight bytes at a
//! time and copied whole, and one that needs escaping is still written by serde_json.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::Value;

use crate::decision::{Decision, Verdict};

/// Appends the answer to `out`.
pub fn write(decision: Decision, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let Verdict::Mutate(object) = &decision.verdict else {
        return serde_json::to_writer(out, &response(decision));
    };
    // The fields of `ValidationResponse`, in its order.
    out.extend_from_slice(br#"{"accepted":true,"message":null,"code":null,"mutated_object":"#);
    write_value(out, object)?;
    out.extend_from_slice(br#","audit_annotations":null,"warnings":"#);
    if decision.warnings.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        serde_json::to_writer(&mut *out, &decision.warnings)?;
    }
    out.push(b'}');
    Ok(())
}

fn response(decision: Decision) -> ValidationResponse {
    let warnings = (!decision.warnings.is_empty()).then_some(decision.warnings);
    let (accepted, message, mutated_object) = match decision.verdict {
        Verdict::Accept => (true, None, None),
        Verdict::Reject(message) => (false, Some(message), None),
        Verdict::Mutate(object) => (true, None, Some(object)),
    };
    ValidationResponse {
        accepted,
        message,
        code: None,
        mutated_object,
        audit_annotations: None,
        warnings,
    }
}

/// `value` as `serde_json::to_writer` writes it (compact, object keys in the map's order).
/// Recursion is bounded by the nesting serde_json accepts when it parses.
fn write_value(out: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => serde_json::to_writer(&mut *out, number)?,
        Value::String(text) => write_str(out, text)?,
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key)?;
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    if needs_escape(text.as_bytes()) {
        return serde_json::to_writer(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether `bytes` hold a byte JSON escapes: a quote, a backslash or a control character.
fn needs_escape(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte below `limit` (for bytes below 0x80; a byte from 0x80 up has
    // its own high bit set, which `!word` clears).
    let below = |word: u64, limit: u8| word.wrapping_sub(LOW * u64::from(limit)) & !word & HIGH;
    let equal = |word: u64, byte: u8| below(word ^ (LOW * u64::from(byte)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if below(word, 0x20) | equal(word, b'"') | equal(word, b'\\') != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

#[cfg(test)]
mod tests;
