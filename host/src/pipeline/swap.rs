//! Swapping a running stage's plugin on request (`sluice serve`'s update of a
//! pipeline whose only change is a stage's plugin build). `--watch` swaps on
//! a file change through the same stage channel; here the caller names the
//! stage and the new file. The stage swaps at its next batch boundary, so
//! every batch runs wholly on one build and nothing is lost or repeated.
//! A processor's keyed state, timers and tables belong to the host, so the
//! new build takes them over where the old one left them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard};

use thiserror::Error;

use crate::config::CpuBudget;
use crate::plugin::{ComponentCache, StagePlugin, WasmEngine};

/// Why a swap was not sent; the run goes on with the plugins it has.
#[derive(Debug, Error)]
pub enum SwapError {
    /// The pipeline has no live run.
    #[error("the pipeline is not running")]
    NotRunning,
    /// The run has no such stage (it has not started its stages yet, or
    /// the stage is not in it).
    #[error("stage `{0}` is not running")]
    NoStage(String),
    /// The new build does not load.
    #[error("stage `{stage}`: the new build does not load: {message}")]
    Load {
        /// The stage.
        stage: String,
        /// The loader's error.
        message: String,
    },
    /// The new build is another kind (a transform for a processor's stage,
    /// or the other way round).
    #[error("stage `{stage}`: the new build is a {new}, the stage runs a {runs}")]
    OtherKind {
        /// The stage.
        stage: String,
        /// What the new build is.
        new: &'static str,
        /// What the stage runs.
        runs: &'static str,
    },
    /// A previous swap of this stage has not happened yet.
    #[error("stage `{0}` has not taken its previous swap yet")]
    Busy(String),
    /// The run fused the stage with others (`crate::pipeline::fuse`): the
    /// stage that runs them has parameters the new build was not written
    /// for, so only a new run can change its plugin.
    #[error("stage `{stage}` runs fused with others as `{into}` (built-in stages fused; `fuse_stages: false` runs them apart): its plugin changes with a new run, not a swap")]
    Fused {
        /// The stage.
        stage: String,
        /// The stage that runs it.
        into: String,
    },
}

struct Slot {
    budget: CpuBudget,
    processor: bool,
    tx: SyncSender<StagePlugin>,
}

/// A running pipeline's stages, as far as swapping their plugins goes.
#[derive(Default)]
pub struct StageSwaps {
    slots: Mutex<HashMap<String, Slot>>,
    /// Stage → the fused stage that runs it (itself included).
    fused: Mutex<HashMap<String, String>>,
}

impl StageSwaps {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the runner for each stage it starts.
    pub(crate) fn add(
        &self,
        stage: &str,
        budget: CpuBudget,
        processor: bool,
        tx: SyncSender<StagePlugin>,
    ) {
        self.slots().insert(
            stage.to_string(),
            Slot {
                budget,
                processor,
                tx,
            },
        );
    }

    /// Called by the runner for each fusion it made: neither `into` nor
    /// the stages it absorbed can be swapped.
    pub(crate) fn add_fused(&self, into: &str, absorbed: &[String]) {
        let mut fused = self.fused.lock().unwrap_or_else(|e| e.into_inner());
        for stage in absorbed.iter().map(String::as_str).chain([into]) {
            fused.insert(stage.to_string(), into.to_string());
        }
    }

    /// Loads each `(stage, file)` and, when every one loads as the kind its
    /// stage runs, hands them to their stages. Nothing is sent unless all load.
    pub fn swap(
        &self,
        engine: &WasmEngine,
        cache: &ComponentCache,
        changes: &[(String, &Path)],
    ) -> Result<(), SwapError> {
        {
            let fused = self.fused.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((stage, into)) = changes
                .iter()
                .find_map(|(stage, _)| fused.get(stage).map(|into| (stage, into)))
            {
                return Err(SwapError::Fused {
                    stage: stage.clone(),
                    into: into.clone(),
                });
            }
        }
        let mut loaded = Vec::new();
        for (stage, path) in changes {
            let (budget, processor) = {
                let slots = self.slots();
                let slot = slots
                    .get(stage)
                    .ok_or_else(|| SwapError::NoStage(stage.clone()))?;
                (slot.budget, slot.processor)
            };
            // Compiling happens here, off the stage thread and outside the lock.
            let plugin =
                StagePlugin::load(engine, cache, path, budget).map_err(|e| SwapError::Load {
                    stage: stage.clone(),
                    message: e.to_string(),
                })?;
            if plugin.is_processor() != processor {
                let kind = |p: bool| if p { "processor" } else { "transform" };
                return Err(SwapError::OtherKind {
                    stage: stage.clone(),
                    new: kind(plugin.is_processor()),
                    runs: kind(processor),
                });
            }
            loaded.push((stage.clone(), plugin));
        }
        let slots = self.slots();
        for (stage, plugin) in loaded {
            let slot = slots
                .get(&stage)
                .ok_or_else(|| SwapError::NoStage(stage.clone()))?;
            match slot.tx.try_send(plugin) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(SwapError::Busy(stage)),
                Err(TrySendError::Disconnected(_)) => return Err(SwapError::NoStage(stage)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fused_stage_and_the_stages_it_runs_refuse_a_swap_before_any_load() {
        let swaps = StageSwaps::default();
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        swaps.add("enrich", CpuBudget::default(), true, tx);
        swaps.add_fused("enrich", &["keep".into(), "shape".into()]);
        let engine = WasmEngine::new().expect("engine");
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ComponentCache::new(dir.path().join("cache"));
        // No such file: a swap that got as far as loading would say so.
        let missing = dir.path().join("missing.wasm");
        for stage in ["keep", "shape", "enrich"] {
            match swaps.swap(&engine, &cache, &[(stage.to_string(), missing.as_path())]) {
                Err(SwapError::Fused { stage: s, into }) => {
                    assert_eq!((s.as_str(), into.as_str()), (stage, "enrich"));
                }
                other => panic!("{stage}: {other:?}"),
            }
        }
        // A stage the run did not fuse goes on to load.
        let (tx, _rx2) = std::sync::mpsc::sync_channel(1);
        swaps.add("other", CpuBudget::default(), false, tx);
        assert!(matches!(
            swaps.swap(&engine, &cache, &[("other".to_string(), missing.as_path())]),
            Err(SwapError::Load { .. })
        ));
    }
}
