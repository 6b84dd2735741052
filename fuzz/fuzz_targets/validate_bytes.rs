//! The validate entry point on arbitrary bytes: always a verdict, never a panic or a leak.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use dittofs_s3_policy::admission::decide_payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cluster = common::healthy_cluster();
    let decision = decide_payload(data, &cluster);
    common::assert_no_secret_values(&decision, data, &cluster);
});
