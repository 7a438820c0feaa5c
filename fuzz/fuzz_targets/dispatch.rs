//! Decode and run commands in-process: `cargo +nightly fuzz run dispatch`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::dispatch(data);
});
