//! Integration tests: the real `sluice` binary on real files, real Wasm
//! components and real signals. Components come from
//! `scripts/build-plugins.sh --test-guests` (the test script runs it first).

mod cli;
mod elasticsearch;
mod exactly_once;
mod hot_reload;
mod kafka;
mod languages;
mod postgres_cdc;
mod s3;
mod sandbox;
mod support;
mod validate;
