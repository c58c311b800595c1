//! What travels on the channels between components.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crate::event::Batch;

/// One item on a channel.
#[derive(Debug, Clone)]
pub enum Message {
    /// Events.
    Batch(Arc<Batch>),
    /// Checkpoint barrier: everything before it belongs to checkpoint `id`.
    Barrier(u64),
    /// The producer is finished.
    End,
}

/// A message tagged with which of the receiver's inputs it arrived on.
#[derive(Debug)]
pub struct Envelope {
    /// Index in the receiver's input list.
    pub input: usize,
    /// The message.
    pub message: Message,
}

/// Where a component's output goes: every downstream that lists it.
#[derive(Clone, Default)]
pub struct Outputs {
    targets: Vec<(SyncSender<Envelope>, usize)>,
}

impl Outputs {
    /// Adds a downstream receiver, on which we are input number `input`.
    pub fn add(&mut self, tx: SyncSender<Envelope>, input: usize) {
        self.targets.push((tx, input));
    }

    /// Sends to every downstream, blocking while they are full (backpressure).
    /// Returns false once every downstream is gone.
    pub fn send(&self, message: Message) -> bool {
        // A batch boundary of the sending source or stage: where a served
        // tenant over its CPU share waits (nothing outside a server).
        if matches!(message, Message::Batch(_)) {
            super::fair::pace();
        }
        let mut alive = false;
        for (tx, input) in &self.targets {
            alive |= tx
                .send(Envelope {
                    input: *input,
                    message: message.clone(),
                })
                .is_ok();
        }
        alive || self.targets.is_empty()
    }
}
