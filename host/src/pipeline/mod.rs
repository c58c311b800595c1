//! Running a pipeline: the graph of sources, stages and sinks on their own
//! threads, bounded channels between them (backpressure), checkpoint barriers
//! flowing in-band, and a coordinator that commits a checkpoint once every
//! sink has durably written everything before a barrier.

mod align;
mod batch;
mod dead_letter;
mod isolate;
mod message;
mod metrics;
mod runner;
mod stage;
mod watch;

pub use align::{Aligner, Step};
pub use batch::{Batch, BatchBuilder, EventView};
pub use message::{Envelope, Message, Outputs};
pub use metrics::{Metrics, Progress};
pub use runner::{run, run_with, RunOptions, RunSummary};
pub use stage::{process_batch, StageLogic, StageOutcome};
