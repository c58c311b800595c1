//! The task that drives one sink: aligns barriers across its inputs,
//! writes batches, flushes at each barrier, routes what the target refused
//! to the dead-letter destination before passing the barrier on, and
//! reports each flushed position to the coordinator.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use super::coordinator::Report;
use super::dead_letter::{Culprit, DeadLetters};
use super::handoff::Handoffs;
use super::metrics::Counts;
use super::{Aligner, Envelope, Message, Metrics, Outputs, Step};
use crate::connector::{Rejected, Sink};

pub(crate) struct SinkTask {
    pub name: String,
    pub sink: Box<dyn Sink>,
    pub dead: Outputs,
    pub reports: Sender<Report>,
    /// False for the dead-letter destination itself.
    pub counted: bool,
    pub metrics: Arc<Metrics>,
    /// An exactly-once sink: where its upstream sources (named) leave their
    /// progress for it to commit with its output.
    pub handoffs: Option<(Arc<Handoffs>, Vec<String>)>,
    /// This sink's own counts (`None` for the dead-letter destination).
    pub counts: Option<Arc<Counts>>,
}

impl SinkTask {
    /// Sends what the target refused to the dead-letter destination.
    fn route_rejected(&self, rejected: &mut Rejected) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        if !self.counted {
            // This is the dead-letter destination itself: there is nowhere
            // further to send a refusal, and dropping it would lose data.
            let reasons: Vec<String> = rejected.drain().map(|(_, _, r)| r).collect();
            anyhow::bail!(
                "the dead-letter destination refused {} event(s); stopping so nothing is lost: {}",
                reasons.len(),
                reasons.join("; ")
            );
        }
        let (plugin, version) = self.sink.plugin_identity().unwrap_or_default();
        let culprit = Culprit {
            stage: self.name.clone(),
            plugin,
            version,
        };
        let mut dead = DeadLetters::new(&self.name, Arc::from(self.name.as_str()));
        for (batch, index, reason) in rejected.drain() {
            if let Some(event) = batch.get(index) {
                tracing::warn!(sink = %self.name, origin = %batch.origin, position = event.position, "target refused an event: {reason}");
                dead.add(&event, &batch.origin, &culprit, "sink", &reason);
            }
        }
        Metrics::add(&self.metrics.dead_letters, dead.len() as u64);
        // Refused events were counted as written when they were handed over.
        let refused = dead.len() as u64;
        self.metrics
            .events_out
            .fetch_sub(refused, Ordering::Relaxed);
        if let Some(c) = &self.counts {
            c.events_out.fetch_sub(refused, Ordering::Relaxed);
            Metrics::add(&c.dead, refused);
        }
        if let Some(b) = dead.finish() {
            self.dead.send(Message::Batch(Arc::new(b)));
        }
        Ok(())
    }

    /// Flushes at `barrier` (`None`: the end).
    fn flush(&mut self, barrier: Option<u64>, rejected: &mut Rejected) -> Result<Value> {
        if let Some((board, sources)) = &self.handoffs {
            let progress = board.take(sources, barrier)?;
            self.sink
                .source_progress(progress)
                .with_context(|| format!("sink `{}`", self.name))?;
        }
        crate::failpoint::hit("sink.flush.before")?;
        let position = self
            .sink
            .flush(rejected)
            .with_context(|| format!("sink `{}`", self.name))?;
        self.route_rejected(rejected)?;
        crate::failpoint::hit("sink.flush.after")?;
        Ok(position)
    }

    pub fn run(mut self, rx: Receiver<Envelope>, inputs: usize) -> Result<()> {
        let name = self.name.clone();
        let mut rejected = Rejected::default();
        let mut aligner = Aligner::new(inputs);
        if inputs == 0 {
            let position = self.flush(None, &mut rejected)?;
            self.dead.send(Message::End);
            let _ = self.reports.send(Report::SinkDone {
                sink: name,
                position,
            });
            return Ok(());
        }
        while let Ok(env) = rx.recv() {
            for step in aligner.push(env) {
                match step {
                    Step::Data(_, Message::Batch(batch)) => {
                        if self.counted {
                            Metrics::add(&self.metrics.events_out, batch.len() as u64);
                        }
                        if let Some(c) = &self.counts {
                            Metrics::add(&c.events_in, batch.len() as u64);
                            Metrics::add(&c.events_out, batch.len() as u64);
                        }
                        if !self.counted {
                            crate::failpoint::hit("dead_letter.write")
                                .with_context(|| format!("sink `{name}`"))?;
                        }
                        self.sink
                            .write(&batch, &mut rejected)
                            .with_context(|| format!("sink `{name}`"))?;
                        self.route_rejected(&mut rejected)?;
                        super::fair::pace();
                    }
                    Step::Data(..) => {}
                    Step::Barrier(id) => {
                        let position = self.flush(Some(id), &mut rejected)?;
                        self.dead.send(Message::Barrier(id));
                        let _ = self.reports.send(Report::SinkFlushed {
                            sink: name.clone(),
                            id,
                            position,
                        });
                    }
                    Step::End => {
                        let position = self.flush(None, &mut rejected)?;
                        self.dead.send(Message::End);
                        let _ = self.reports.send(Report::SinkDone {
                            sink: name.clone(),
                            position,
                        });
                        return Ok(());
                    }
                }
            }
        }
        // Inputs vanished without an end: a failure upstream; do not report done,
        // so no checkpoint can cover events that never arrived.
        Ok(())
    }
}
