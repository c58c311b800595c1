//! `--watch`: reloads a stage's plugin or a custom sink's connector when its
//! file changes. Compiling happens here, off the pipeline's threads; a stage
//! swaps at its next batch boundary, a sink at its next checkpoint boundary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::connector::HotReload;
use crate::plugin::{ComponentCache, StagePlugin, WasmEngine};

/// A file to watch and what to do with a new build of it.
pub(crate) struct Watched {
    /// What runs it, for log lines: "stage `tag`", "sink `out`".
    pub what: String,
    pub path: PathBuf,
    /// Loads the file as it is now and hands the build over; `Err`: refused.
    pub load: Box<dyn Fn() -> anyhow::Result<()> + Send>,
}

impl Watched {
    /// A stage: new builds go to it through `tx`.
    pub fn stage(
        name: &str,
        path: PathBuf,
        budget: crate::config::CpuBudget,
        tx: SyncSender<StagePlugin>,
        (engine, cache): (WasmEngine, ComponentCache),
    ) -> Self {
        let file = path.clone();
        Self {
            what: format!("stage `{name}`"),
            path,
            load: Box::new(move || {
                let plugin = StagePlugin::load(&engine, &cache, &file, budget)?;
                let _ = tx.send(plugin);
                Ok(())
            }),
        }
    }

    /// A sink that said how to reload it.
    pub fn sink(name: &str, reload: HotReload) -> Self {
        Self {
            what: format!("sink `{name}`"),
            path: reload.path,
            load: reload.load,
        }
    }
}

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls file stamps until `stop`; polling keeps this dependency-free and
/// works the same on every filesystem, including network mounts.
pub(crate) fn spawn(watched: Vec<Watched>, stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new().name("sluice-watch".into()).spawn(move || {
        let mut seen: HashMap<usize, Option<(SystemTime, u64)>> =
            watched.iter().enumerate().map(|(i, w)| (i, stamp(&w.path))).collect();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            for (i, w) in watched.iter().enumerate() {
                let now = stamp(&w.path);
                if now.is_none() || seen.get(&i) == Some(&now) {
                    continue;
                }
                // Let a writer finish: reload only once the stamp holds still.
                std::thread::sleep(Duration::from_millis(100));
                if stamp(&w.path) != now {
                    continue;
                }
                seen.insert(i, now);
                tracing::info!(path = %w.path.display(), "{}: plugin file changed; loading it", w.what);
                if let Err(e) = (w.load)() {
                    tracing::error!("{}: not reloading, the new build is refused and the old one keeps running: {e:#}", w.what);
                }
            }
        }
    });
}
