//! Helpers shared by the unit tests: fake credentials and a leak check.

use base64::Engine;
use serde_json::Value;

use crate::decision::Decision;
use crate::settings::Settings;

pub const FAKE_KEY: &str = "FAKE-ACCESS-KEY-ID";
pub const FAKE_SECRET: &str = "FAKE-SECRET-ACCESS-KEY";

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

pub fn settings(json: Value) -> Settings {
    serde_json::from_value(json).expect("settings")
}

/// Fails when a decision (verdict, message, warnings, mutated object) carries a fake value.
pub fn assert_no_values(decision: &Decision) {
    let text = format!("{decision:?}");
    for value in [
        FAKE_KEY,
        FAKE_SECRET,
        &b64(FAKE_KEY),
        &b64(FAKE_SECRET),
        "cubbit",
    ] {
        assert!(!text.contains(value), "decision leaks {value}: {text}");
    }
}
