//! The connector contract: what a source and a sink are, what they may
//! refuse and how, how they retry, and how the pipeline file names them.
//!
//! This layer sits directly on [`crate::event`]. Sources, sinks and tables
//! implement it; the pipeline drives it. Connectors never import each other
//! or the pipeline: what two connectors share lives in [`crate::clients`]
//! or here.

mod contract;
pub mod endpoint;
mod error;
pub mod fingerprint;
mod issue;
pub mod memory;
pub(crate) mod registry;
pub mod retry;

pub use contract::{
    Handoff, HotReload, LagUnit, Malformed, Polled, Progress, Rejected, Sink, Source,
};
pub use error::ErrorClass;
pub use issue::ConfigIssue;
pub use registry::{
    find, names, parse_sink, parse_source, ChangelogSpec, ClientBuffers, CloneSinkConfig,
    CloneSourceConfig, ConnectorKind, HeldPartitions, ParseError, SinkConfig, SinkKind,
    SourceConfig, SourceContext, SourceKind,
};
pub use retry::Backoff;
