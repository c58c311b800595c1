//! Barrier alignment for components with several inputs: once an input has
//! delivered barrier N, its later messages wait until every other live input
//! has delivered N too, so the checkpoint is a consistent cut.

use std::collections::VecDeque;

use super::{Envelope, Message};

/// What to do next, in order.
#[derive(Debug)]
pub enum Step {
    /// Process this message's batch (from input `.0`).
    Data(usize, Message),
    /// All inputs reached barrier N: checkpoint and forward it.
    Barrier(u64),
    /// Every input has ended.
    End,
}

/// Tracks barriers and ends across inputs.
#[derive(Debug)]
pub struct Aligner {
    at_barrier: Vec<Option<u64>>,
    ended: Vec<bool>,
    held: Vec<VecDeque<Message>>,
    end_reported: bool,
}

impl Aligner {
    /// An aligner for `inputs` inputs.
    pub fn new(inputs: usize) -> Self {
        Self {
            at_barrier: vec![None; inputs],
            ended: vec![false; inputs],
            held: (0..inputs).map(|_| VecDeque::new()).collect(),
            end_reported: false,
        }
    }

    /// True once every input has ended.
    pub fn finished(&self) -> bool {
        self.ended.iter().all(|e| *e)
    }

    /// Feeds one envelope; returns the steps it unlocks.
    pub fn push(&mut self, env: Envelope) -> Vec<Step> {
        let mut steps = Vec::new();
        let i = env.input;
        if i >= self.ended.len() {
            return steps;
        }
        if self.at_barrier[i].is_some() {
            self.held[i].push_back(env.message);
        } else {
            self.accept(i, env.message, &mut steps);
        }
        self.settle(&mut steps);
        steps
    }

    fn accept(&mut self, i: usize, message: Message, steps: &mut Vec<Step>) {
        match message {
            Message::Batch(_) => steps.push(Step::Data(i, message)),
            Message::Barrier(id) => self.at_barrier[i] = Some(id),
            Message::End => self.ended[i] = true,
        }
    }

    /// Completes barriers that every live input has reached, then replays held
    /// messages, repeatedly.
    fn settle(&mut self, steps: &mut Vec<Step>) {
        loop {
            let live: Vec<usize> = (0..self.ended.len()).filter(|i| !self.ended[*i]).collect();
            if live.is_empty() {
                if !self.end_reported {
                    steps.push(Step::End);
                    self.end_reported = true;
                }
                return;
            }
            let Some(id) = live.iter().filter_map(|i| self.at_barrier[*i]).min() else {
                return;
            };
            if !live
                .iter()
                .all(|i| self.at_barrier[*i].is_some_and(|b| b >= id))
            {
                return;
            }
            steps.push(Step::Barrier(id));
            for i in 0..self.at_barrier.len() {
                if self.at_barrier[i] == Some(id) {
                    self.at_barrier[i] = None;
                    while self.at_barrier[i].is_none() {
                        let Some(m) = self.held[i].pop_front() else {
                            break;
                        };
                        self.accept(i, m, steps);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> Message {
        Message::Batch(Arc::new(
            crate::event::BatchBuilder::new("s", Arc::from("s"), 1).finish(),
        ))
    }

    fn env(input: usize, message: Message) -> Envelope {
        Envelope { input, message }
    }

    #[test]
    fn holds_data_behind_a_barrier_until_every_input_reaches_it() {
        let mut a = Aligner::new(2);
        assert!(a.push(env(0, Message::Barrier(1))).is_empty());
        // Input 0 is past the barrier: its data waits.
        assert!(a.push(env(0, batch())).is_empty());
        // Input 1 data before its barrier flows.
        assert!(matches!(a.push(env(1, batch()))[..], [Step::Data(1, _)]));
        let steps = a.push(env(1, Message::Barrier(1)));
        assert!(
            matches!(steps[..], [Step::Barrier(1), Step::Data(0, _)]),
            "{steps:?}"
        );
    }

    #[test]
    fn an_ended_input_counts_as_aligned_and_end_comes_once_all_end() {
        let mut a = Aligner::new(2);
        assert!(a.push(env(0, Message::End)).is_empty());
        assert!(matches!(
            a.push(env(1, Message::Barrier(3)))[..],
            [Step::Barrier(3)]
        ));
        assert!(matches!(a.push(env(1, Message::End))[..], [Step::End]));
        assert!(a.finished());
    }
}
