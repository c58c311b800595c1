//! Durable state: the checkpoint store.

mod checkpoint;

pub use checkpoint::{Checkpoint, CheckpointStore};
