//! The SDK's JSON scanner (every Rust plugin's view, the host's `check_json`)
//! against serde_json: same accept/refuse, same top-level fields.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::json_view(data));
