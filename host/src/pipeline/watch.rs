//! `--watch`: reloads a stage's plugin when its file changes. Compiling happens
//! here, off the stage thread; the stage swaps at its next batch boundary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::plugin::{ComponentCache, TransformPlugin, WasmEngine};

/// A stage to watch: its plugin file and where to send new builds.
pub(crate) struct Watched {
    pub stage: String,
    pub path: PathBuf,
    pub budget: crate::config::CpuBudget,
    pub tx: SyncSender<Arc<TransformPlugin>>,
}

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls file stamps until `stop`; polling keeps this dependency-free and
/// works the same on every filesystem, including network mounts.
pub(crate) fn spawn(
    watched: Vec<Watched>,
    engine: WasmEngine,
    cache: ComponentCache,
    stop: Arc<AtomicBool>,
) {
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
                tracing::info!(stage = %w.stage, path = %w.path.display(), "plugin file changed; loading it");
                match TransformPlugin::load_for(&engine, &cache, &w.path, w.budget) {
                    Ok(p) => {
                        let _ = w.tx.send(Arc::new(p));
                    }
                    Err(e) => tracing::error!(stage = %w.stage, "not reloading: {e}"),
                }
            }
        }
    });
}
