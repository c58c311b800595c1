//! Pipeline files come from whoever may deploy; loading any text must end in
//! a pipeline or diagnostics, never a panic or a stack overflow.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice::config::{load_str, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "FUZZ_VAR").then(|| "value".to_string());
    if let Err(diagnostics) = load_str(
        Path::new("/nonexistent/fuzz/pipeline.yaml"),
        text,
        &LoadOptions::default(),
        &env,
    ) {
        assert!(
            !diagnostics.to_string().is_empty(),
            "a refused pipeline came with no diagnostic"
        );
    }
});
