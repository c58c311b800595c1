//! The task that drives one source: polls it, sends its batches and
//! malformed inputs downstream, injects the checkpoint barriers the
//! coordinator requests, and hands durable positions back to it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use super::coordinator::Report;
use super::dead_letter::DeadLetters;
use super::handoff::Handoffs;
use super::metrics::Counts;
use super::{Message, Metrics, Outputs};
use crate::connector::Source;

/// How often a paused source looks at its flags.
const PAUSED_POLL: std::time::Duration = std::time::Duration::from_millis(20);

pub(crate) struct SourceTask {
    pub name: String,
    pub source: Box<dyn Source>,
    /// Positions of durable checkpoints, to acknowledge upstream.
    pub commits: Receiver<Value>,
    pub outputs: Outputs,
    pub dead: Outputs,
    pub batch_size: usize,
    pub requested: Arc<AtomicU64>,
    pub last: u64,
    pub caught_up: bool,
    pub stop: Arc<AtomicBool>,
    /// While set, nothing is read (barriers still pass).
    pub pause: Option<Arc<AtomicBool>>,
    pub reports: Sender<Report>,
    pub metrics: Arc<Metrics>,
    /// The run's tap: every batch read is offered to it.
    pub tap: Arc<super::tap::TapHub>,
    /// Set when an exactly-once sink commits this source's progress.
    pub handoffs: Option<Arc<Handoffs>>,
    /// This source's own counts.
    pub counts: Arc<Counts>,
}

impl SourceTask {
    fn barriers(&mut self) {
        let want = self.requested.load(Ordering::SeqCst);
        while self.last < want {
            self.last += 1;
            let _ = self.reports.send(Report::SourceAt {
                source: self.name.clone(),
                id: self.last,
                position: self.source.position(),
            });
            self.hand_off(Some(self.last));
            self.outputs.send(Message::Barrier(self.last));
            self.dead.send(Message::Barrier(self.last));
        }
    }

    /// Leaves the progress just reported for the exactly-once sink.
    fn hand_off(&mut self, barrier: Option<u64>) {
        if let Some(board) = &self.handoffs {
            if let Some(h) = self.source.handoff() {
                board.post(&self.name, barrier, h);
            }
        }
    }

    /// Hands the newest durable position to the source.
    fn acknowledge(&mut self) -> Result<()> {
        let mut latest = None;
        while let Ok(p) = self.commits.try_recv() {
            latest = Some(p);
        }
        match latest {
            Some(p) => self.commit(&p),
            None => Ok(()),
        }
    }

    /// Tells the source a checkpoint holding position `p` is durable.
    fn commit(&mut self, p: &Value) -> Result<()> {
        crate::failpoint::hit("source.commit.before")?;
        self.source
            .committed(p)
            .with_context(|| format!("source `{}` acknowledging a checkpoint", self.name))?;
        crate::failpoint::hit("source.commit.after")
    }

    pub fn run(mut self) -> Result<()> {
        loop {
            self.acknowledge()?;
            self.barriers();
            if self.stop.load(Ordering::SeqCst) {
                tracing::info!(source = %self.name, "stopping: draining in-flight events");
                break;
            }
            if self
                .pause
                .as_ref()
                .is_some_and(|p| p.load(Ordering::SeqCst))
            {
                // Paused: no reading, but barriers above still pass, so
                // checkpoints commit at the paused position.
                self.source.paused();
                std::thread::sleep(PAUSED_POLL);
                continue;
            }
            let polled = self.source.poll(self.batch_size)?;
            if !polled.malformed.is_empty() {
                let mut dead = DeadLetters::new(&self.name, Arc::from(self.name.as_str()));
                for m in &polled.malformed {
                    tracing::warn!(source = %self.name, "{}", m.reason);
                    dead.add_raw(&m.bytes, m.position, &self.name, "malformed", &m.reason);
                }
                Metrics::add(&self.metrics.dead_letters, dead.len() as u64);
                Metrics::add(&self.counts.dead, dead.len() as u64);
                if let Some(b) = dead.finish() {
                    self.dead.send(Message::Batch(Arc::new(b)));
                }
            }
            if let Some(batch) = polled.batch {
                Metrics::add(&self.metrics.events_in, batch.len() as u64);
                Metrics::add(&self.counts.events_out, batch.len() as u64);
                self.tap.offer(&self.name, &batch);
                if !self.outputs.send(Message::Batch(Arc::new(batch))) {
                    return Ok(()); // downstream failed; that failure is reported
                }
            }
            if polled.done {
                break;
            }
            if !self.caught_up && self.source.caught_up() {
                // A barrier right behind the snapshot: a table that has
                // flushed it holds everything the snapshot had.
                self.caught_up = true;
                self.requested.fetch_add(1, Ordering::SeqCst);
                self.barriers();
                tracing::info!(source = %self.name, barrier = self.last, "caught up");
                let _ = self.reports.send(Report::CaughtUp {
                    source: self.name.clone(),
                    id: self.last,
                });
            }
        }
        if !self.caught_up {
            let _ = self.reports.send(Report::CaughtUp {
                source: self.name.clone(),
                id: self.last + 1,
            });
        }
        let _ = self.reports.send(Report::SourceDone {
            source: self.name.clone(),
            position: self.source.position(),
        });
        self.hand_off(None);
        self.outputs.send(Message::End);
        self.dead.send(Message::End);
        // The final checkpoint comes after the sinks drain; acknowledge it
        // too. The channel closes when the coordinator finishes.
        while let Ok(p) = self.commits.recv() {
            self.commit(&p)?;
        }
        Ok(())
    }
}
