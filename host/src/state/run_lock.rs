//! One writer per pipeline state directory: `sluice run` (and `sql`), a
//! dead-letter replay and a purge each hold an exclusive `flock` on
//! `DATA_DIR/NAME/run.lock` while they write the pipeline's files.
//!
//! An advisory lock rather than a pid file: the kernel drops it when the
//! holder exits, `kill -9` included, so a crashed run never leaves a stale
//! lock behind, and no pid can be recycled into a false "still running".
//! The file holds the holder's pid and what it is doing, for the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The lock file's name in a pipeline's state directory.
pub const FILE: &str = "run.lock";

/// Held for as long as it lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// Another process holds the lock.
#[derive(Debug, thiserror::Error)]
#[error("{path} is locked by {holder}: the pipeline's state is in use; wait for it to finish or stop it first")]
pub struct Busy {
    /// The lock file.
    pub path: PathBuf,
    /// What the holder wrote (`pid 123: sluice run`), or `another process`.
    pub holder: String,
}

impl RunLock {
    /// Takes the lock of `state_dir` for `what` (shown to whoever finds it
    /// taken), or fails with [`Busy`] at once: it never waits.
    pub fn acquire(state_dir: &Path, what: &str) -> Result<RunLock> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let path = state_dir.join(FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = (&file).take(200).read_to_string(&mut text);
                let holder = match text.trim() {
                    "" => "another process".to_string(),
                    t => t.to_string(),
                };
                return Err(Busy { path, holder }.into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "pid {}: {what}", std::process::id())?;
        Ok(RunLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunLock::acquire(dir.path(), "sluice run").expect("first");
        let err = RunLock::acquire(dir.path(), "sluice dlq replay").expect_err("held");
        let busy = err.downcast_ref::<Busy>().expect("Busy");
        assert_eq!(
            busy.holder,
            format!("pid {}: sluice run", std::process::id())
        );
        drop(first);
        RunLock::acquire(dir.path(), "sluice dlq replay").expect("free again");
    }
}
