//! One plugin stage: receives batches, calls the plugin once per batch,
//! routes refused events per the stage's error policy, forwards barriers.
//!
//! When a call crashes or breaks a limit, the batch is split in halves and
//! retried on fresh instances until the culprit event is alone: it alone is
//! dead-lettered with the reason, and its neighbours go through. A poison
//! event costs log2(batch) extra calls, and nothing innocent is lost.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::dead_letter::{Culprit, DeadLetters};
use super::runner::Report;
use super::{Aligner, Batch, Envelope, Message, Metrics, Outputs, Step};
use crate::config::OnError;
use crate::plugin::{bindings, CallFailure, TransformInstance, TransformPlugin};

/// Retries of a batch whose plugin asked to retry, before the stage fails.
const MAX_RETRIES: u32 = 8;

/// What runs a stage's logic: a sandboxed plugin instance in production, or
/// the same logic compiled natively (the benchmark's reference).
pub trait StageLogic: Send {
    /// Plugin name and version, as dead letters and errors name them.
    fn identity(&self) -> (String, String);
    /// Processes one batch.
    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure>;
    /// Instances created so far (grows when failures replace one).
    fn instantiations(&self) -> u64;
    /// Replaces the plugin with another build (hot reload).
    fn swap(&mut self, plugin: Arc<TransformPlugin>) -> Result<(), String>;
}

impl StageLogic for TransformInstance {
    fn identity(&self) -> (String, String) {
        let info = &self.plugin().info;
        (info.name.clone(), info.version.clone())
    }

    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure> {
        TransformInstance::process(self, batch)
    }

    fn instantiations(&self) -> u64 {
        self.instantiations
    }

    fn swap(&mut self, plugin: Arc<TransformPlugin>) -> Result<(), String> {
        TransformInstance::swap(self, plugin).map_err(|e| e.to_string())
    }
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct StageOutcome {
    /// Output batches (more than one after a split).
    pub outputs: Vec<Batch>,
    /// Dead letters, if any.
    pub dead: Option<Batch>,
    /// Events skipped under `on_error: skip`.
    pub skipped: u64,
    /// Instances replaced after failures.
    pub restarts: u64,
}

/// Runs one batch through `instance` with culprit isolation and the error
/// policy. Shared by `sluice run` and `sluice plugin test`.
pub fn process_batch(
    instance: &mut dyn StageLogic,
    stage: &str,
    policy: OnError,
    batch: &Batch,
) -> Result<StageOutcome> {
    let (plugin, version) = instance.identity();
    let culprit = Culprit {
        stage: stage.to_string(),
        plugin,
        version,
    };
    let mut dead = DeadLetters::new(stage, batch.origin.clone());
    let mut outcome = StageOutcome::default();
    let before = instance.instantiations();
    run(
        instance,
        stage,
        policy,
        batch,
        &culprit,
        &mut dead,
        &mut outcome,
    )?;
    outcome.restarts = instance.instantiations() - before;
    outcome.dead = dead.finish();
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
fn bad_event(
    policy: OnError,
    batch: &Batch,
    index: usize,
    culprit: &Culprit,
    kind: &str,
    reason: &str,
    dead: &mut DeadLetters,
    outcome: &mut StageOutcome,
) -> Result<()> {
    let Some(event) = batch.get(index) else {
        return Err(anyhow!(
            "plugin {}@{} in stage `{}` refused event {index}, but the batch has {} events",
            culprit.plugin,
            culprit.version,
            culprit.stage,
            batch.len()
        ));
    };
    match policy {
        OnError::DeadLetter => dead.add(&event, &batch.origin, culprit, kind, reason),
        OnError::Skip => {
            outcome.skipped += 1;
            tracing::warn!(stage = %culprit.stage, origin = %batch.origin, position = event.position, "skipping event: {reason}");
        }
        OnError::Fail => {
            return Err(anyhow!(
                "stage `{}` (on_error: fail) stopped on {} position {}: {reason}",
                culprit.stage,
                batch.origin,
                event.position
            ))
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run(
    instance: &mut dyn StageLogic,
    stage: &str,
    policy: OnError,
    batch: &Batch,
    culprit: &Culprit,
    dead: &mut DeadLetters,
    outcome: &mut StageOutcome,
) -> Result<()> {
    let mut retries = 0;
    loop {
        match instance.process(&batch.events) {
            Ok(output) => {
                let produced = Batch::from_output(batch, stage, output.events).map_err(|e| {
                    anyhow!(
                        "plugin {}@{} in stage `{stage}` returned a malformed batch: {e}",
                        culprit.plugin,
                        culprit.version
                    )
                })?;
                for r in &output.rejected {
                    bad_event(
                        policy,
                        batch,
                        r.index as usize,
                        culprit,
                        "rejected",
                        &r.reason,
                        dead,
                        outcome,
                    )?;
                }
                if !produced.is_empty() {
                    outcome.outputs.push(produced);
                }
                return Ok(());
            }
            Err(failure) if failure.is_event_specific() && policy != OnError::Fail => {
                tracing::warn!(stage, events = batch.len(), "{failure}");
                if batch.len() <= 1 {
                    if !batch.is_empty() {
                        bad_event(
                            policy,
                            batch,
                            0,
                            culprit,
                            failure.kind(),
                            &failure.to_string(),
                            dead,
                            outcome,
                        )?;
                    }
                    return Ok(());
                }
                let mid = batch.len() / 2;
                run(
                    instance,
                    stage,
                    policy,
                    &batch.slice(0..mid),
                    culprit,
                    dead,
                    outcome,
                )?;
                return run(
                    instance,
                    stage,
                    policy,
                    &batch.slice(mid..batch.len()),
                    culprit,
                    dead,
                    outcome,
                );
            }
            Err(CallFailure::Retry { message, .. }) if retries < MAX_RETRIES => {
                retries += 1;
                let wait = Duration::from_millis(50u64 << retries.min(7));
                tracing::warn!(
                    stage,
                    retry = retries,
                    "plugin asked to retry in {wait:?}: {message}"
                );
                std::thread::sleep(wait);
            }
            Err(failure) => return Err(anyhow!(failure)),
        }
    }
}

/// A stage thread's wiring.
pub(crate) struct StageTask {
    pub name: String,
    pub instance: Box<dyn StageLogic>,
    pub policy: OnError,
    pub inputs: usize,
    pub rx: Receiver<Envelope>,
    pub outputs: Outputs,
    pub dead: Outputs,
    pub reload: Receiver<Arc<TransformPlugin>>,
    pub reports: Sender<Report>,
    pub metrics: Arc<Metrics>,
}

impl StageTask {
    pub(crate) fn run(mut self) -> Result<()> {
        let mut aligner = Aligner::new(self.inputs);
        while let Ok(env) = self.rx.recv() {
            for step in aligner.push(env) {
                match step {
                    Step::Data(_, Message::Batch(batch)) => {
                        // Swaps happen only here, between batches: every batch
                        // runs wholly on one version.
                        while let Ok(plugin) = self.reload.try_recv() {
                            self.swap(plugin);
                        }
                        let outcome =
                            process_batch(self.instance.as_mut(), &self.name, self.policy, &batch)?;
                        Metrics::add(&self.metrics.skipped, outcome.skipped);
                        Metrics::add(&self.metrics.instance_restarts, outcome.restarts);
                        for out in outcome.outputs {
                            self.outputs.send(Message::Batch(Arc::new(out)));
                        }
                        if let Some(d) = outcome.dead {
                            Metrics::add(&self.metrics.dead_letters, d.len() as u64);
                            self.dead.send(Message::Batch(Arc::new(d)));
                        }
                    }
                    Step::Data(..) => {}
                    Step::Barrier(id) => {
                        self.outputs.send(Message::Barrier(id));
                        self.dead.send(Message::Barrier(id));
                    }
                    Step::End => {
                        self.outputs.send(Message::End);
                        self.dead.send(Message::End);
                        return Ok(());
                    }
                }
            }
        }
        // Upstream vanished without an end: a failure elsewhere, already reported.
        Ok(())
    }

    fn swap(&mut self, plugin: Arc<TransformPlugin>) {
        let (name, version) = self.instance.identity();
        let old = format!("{name}@{version}");
        let new = plugin.label();
        match self.instance.swap(plugin) {
            Ok(()) => {
                tracing::info!(stage = %self.name, "hot-swapped plugin {old} -> {new}");
                let _ = self.reports.send(Report::Swapped {
                    stage: self.name.clone(),
                    plugin: new,
                });
            }
            Err(e) => {
                tracing::error!(stage = %self.name, "keeping {old}: the new build was refused: {e}")
            }
        }
    }
}
