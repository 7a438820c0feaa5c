//! The request decoder over arbitrary bytes: `cargo +nightly fuzz run decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::decode(data));
