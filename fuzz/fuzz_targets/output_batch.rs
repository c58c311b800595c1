//! A guest's output is the most hostile input the host reads: every span,
//! index and count in it is chosen by the plugin. Whatever `output_check`
//! accepts, the host must be able to turn into a batch and read back without
//! a panic, and no host-owned header may survive.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::output_batch(data));
