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

    /// Loads each `(stage, file)` and, when every one loads as the kind its
    /// stage runs, hands them to their stages. Nothing is sent unless all load.
    pub fn swap(
        &self,
        engine: &WasmEngine,
        cache: &ComponentCache,
        changes: &[(String, &Path)],
    ) -> Result<(), SwapError> {
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
