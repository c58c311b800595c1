//! Durable state: the checkpoint store, processors' keyed state and timers,
//! and the tables a pipeline materializes.

mod checkpoint;
pub mod keyed;
pub mod tables;

pub use checkpoint::{Checkpoint, CheckpointStore};
pub use keyed::KeyedState;
pub use tables::{Table, TableConfig, TableSink};
