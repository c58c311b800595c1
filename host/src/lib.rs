//! # Sluice
//!
//! A streaming ETL engine: one Rust host owns sources, sinks and state;
//! everything that decides what happens to an event runs as a sandboxed
//! WebAssembly component against the `sluice:plugin` contract (`wit/`).
//!
//! The layers, bottom to top; each imports only from the ones below it:
//!
//! 1. [`event`]: the event and the framed batch, as the plugin contract lays
//!    them out; JSON checks.
//! 2. [`connector`]: the Source/Sink contract, refusals, the one retry
//!    policy, error classes, the connector registry types, and in-memory
//!    connectors for tests. Beside it, [`clients`]: what a source and a
//!    sink of the same system share (PostgreSQL, SQL, MongoDB, Kafka).
//! 3. [`sources`] and [`sinks`] (one folder per connector, one registry list
//!    each), [`state`] (checkpoints, keyed state, tables), [`format`]
//!    (JSON, Avro, Schema Registry), [`plugin`] (engine, cache, contract
//!    checks, instances under limits).
//! 4. [`config`]: pipeline files and their validation; [`sql`]: ksqlDB-style
//!    statements compiled to the same pipeline files.
//! 5. [`pipeline`]: graph, tasks, coordinator and runner.
//! 6. [`server`]: `sluice serve`, many tenants' pipelines behind an HTTP
//!    API; [`cli`]: the `sluice` command.
#![deny(missing_docs)]

pub mod cli;
pub mod clients;
pub mod config;
pub mod connector;
pub mod dlq;
pub mod event;
pub mod failpoint;
pub mod format;
pub mod malloc_tuning;
pub mod pipeline;
pub mod plugin;
pub mod server;
pub mod sinks;
pub mod sources;
pub mod sql;
pub mod state;
