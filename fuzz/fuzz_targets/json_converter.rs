//! Kafka Connect's JsonConverter envelope (`schema` + `payload`), as read from
//! topics other programs write: whatever it yields must be one JSON value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::event::check_json;
use sluice::format::codec::{Decoder, Format};

fuzz_target!(|data: &[u8]| {
    for format in [Format::JsonSchema, Format::Json] {
        let mut decoder = Decoder::new(format, None);
        if let Ok(Some(json)) = decoder.decode(data) {
            if let Err(e) = check_json(&json) {
                panic!("the decoder produced invalid JSON: {e}");
            }
        }
    }
});
