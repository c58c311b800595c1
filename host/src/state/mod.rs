//! Durable state: the checkpoint store, processors' keyed state and timers,
//! and the tables a pipeline materializes.

mod checkpoint;
pub mod keyed;
mod rows;
pub mod run_lock;
mod table_row;
pub mod tables;

use std::path::Path;

pub use checkpoint::{Checkpoint, CheckpointStore};
pub use keyed::KeyedState;
pub use run_lock::RunLock;
pub use tables::{Table, TableConfig, TableSink};

/// What to tell a user whose checkpoint cannot be restored consistently.
///
/// Restore never falls back to an older checkpoint: sources acknowledge each
/// committed checkpoint upstream (Kafka group offsets, PostgreSQL replication
/// slots), so an older one's positions may no longer be readable, and
/// starting a stage or table empty would give wrong results with exit 0.
pub fn recovery_hint(state_dir: &Path) -> String {
    format!(
        "the pipeline cannot resume consistently from its checkpoint; restore the file from a backup, \
         or delete the state directory {} to start over (every source restarts from its beginning \
         and file sinks are rewritten)",
        state_dir.display()
    )
}
