//! Pipeline files come from whoever may deploy; loading any text must end in
//! a pipeline or diagnostics, never a panic or a stack overflow.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::pipeline_yaml(data));
