//! Settings validation: any bytes give valid settings or a message, never a panic.
#![no_main]

use dittofs_s3_policy::settings::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(settings) = Settings::parse(data) {
        // Accepted settings survive a round trip unchanged.
        let again = serde_json::to_vec(&settings).map(|raw| Settings::parse(&raw));
        assert!(matches!(again, Ok(Ok(ref same)) if *same == settings));
    }
});
