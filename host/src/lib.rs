//! # Sluice
//!
//! A streaming ETL engine: one Rust host owns sources, sinks and state;
//! everything that decides what happens to an event runs as a sandboxed
//! WebAssembly component against the `sluice:plugin` contract (`wit/`).
//!
//! The pieces, each in its own module: [`config`] (pipeline files and their
//! validation), [`plugin`] (engine, cache, contract checks, instances under
//! limits), [`pipeline`] (graph, runner, barriers and checkpoints), [`sources`]
//! and [`sinks`] (one folder per connector), [`state`] (the checkpoint store).
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod format;
pub mod pipeline;
pub mod plugin;
pub mod sinks;
pub mod sources;
pub mod state;
