//! Running a pipeline: the graph of sources, stages and sinks on their own
//! threads, bounded channels between them (backpressure), checkpoint barriers
//! flowing in-band, and a coordinator that commits a checkpoint once every
//! sink has durably written everything before a barrier.

mod align;
mod changelog;
mod check;
mod coordinator;
pub(crate) mod dead_letter;
pub mod fair;
pub mod fingerprint;
mod footprint;
pub mod fuse;
mod graph;
mod handoff;
mod isolate;
mod message;
mod metrics;
mod partitioned;
mod restore;
mod runner;
mod sink_task;
mod source_task;
mod stage;
mod swap;
pub mod tap;
mod watch;

#[cfg(test)]
mod tests;

pub use align::{Aligner, Step};
pub use check::{check_plugins, load_udfs};
pub use footprint::{footprint, Footprint};
pub(crate) use graph::DEAD_LETTER_SINK;
pub use message::{Envelope, Message, Outputs};
pub use metrics::{ComponentCounts, Metrics, Role, SourceProgress};
pub use runner::{run, run_with, RunOptions, RunStatus, RunSummary, StatusCallback};
pub(crate) use runner::{run_hooked, Hooks, WrapSink};
pub use stage::{process_batch, StageLogic, StageOutcome};
pub use swap::{StageSwaps, SwapError};
