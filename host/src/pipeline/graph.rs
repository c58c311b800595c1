//! Wiring the running graph: one bounded channel per consumer (stage, sink,
//! table, dead-letter destination), and for every producer the list of
//! channels its output goes to. Nothing runs here; the runner spawns tasks
//! on what this builds.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::{Envelope, Outputs};
use crate::config::Pipeline;

/// The name of the dead-letter destination among the sinks.
pub(crate) const DEAD_LETTER_SINK: &str = "dead-letter";

/// The channels of a pipeline, before its tasks take their ends.
pub(crate) struct Graph {
    /// Consumer name → its channel.
    pub receivers: HashMap<String, (SyncSender<Envelope>, Receiver<Envelope>)>,
    /// Producer (source or stage) name → where its events go.
    pub outputs: HashMap<String, Outputs>,
    /// Every component that may refuse events → the dead-letter channel,
    /// on which it is input number `dead_producers.index(name)`.
    pub dead_outputs: HashMap<String, Outputs>,
    /// How many inputs the dead-letter destination aligns.
    pub dead_inputs: usize,
}

impl Graph {
    /// Channels of capacity `pipeline.channel_capacity` for `pipeline`.
    pub fn build(pipeline: &Pipeline) -> Self {
        let cap = pipeline.channel_capacity.max(1);
        let mut receivers = HashMap::new();
        for name in pipeline
            .stages
            .iter()
            .map(|s| s.name.clone())
            .chain(pipeline.sinks.iter().map(|s| s.name.clone()))
            .chain(pipeline.tables.iter().map(|t| t.name.clone()))
            .chain(std::iter::once(DEAD_LETTER_SINK.to_string()))
        {
            receivers.insert(name, sync_channel(cap));
        }
        let producers: Vec<String> = pipeline
            .sources
            .iter()
            .map(|s| s.name.clone())
            .chain(pipeline.stages.iter().map(|s| s.name.clone()))
            .collect();
        let mut outputs: HashMap<String, Outputs> = producers
            .iter()
            .map(|p| (p.clone(), Outputs::default()))
            .collect();
        for (consumer, inputs) in pipeline
            .stages
            .iter()
            .map(|s| (&s.name, &s.inputs))
            .chain(pipeline.sinks.iter().map(|s| (&s.name, &s.inputs)))
        {
            let Some((tx, _)) = receivers.get(consumer) else {
                continue;
            };
            for (i, input) in inputs.iter().enumerate() {
                if let Some(o) = outputs.get_mut(input) {
                    o.add(tx.clone(), i);
                }
            }
        }
        for t in &pipeline.tables {
            if let (Some(o), Some((tx, _))) =
                (outputs.get_mut(&t.config.input), receivers.get(&t.name))
            {
                o.add(tx.clone(), 0);
            }
        }
        // Everything but the dead-letter sink itself may refuse events:
        // sources (malformed input), stages (plugins) and sinks (their
        // targets).
        let dead_producers: Vec<String> = producers
            .iter()
            .cloned()
            .chain(pipeline.sinks.iter().map(|s| s.name.clone()))
            .chain(pipeline.tables.iter().map(|t| t.name.clone()))
            .collect();
        let mut dead_outputs = HashMap::new();
        if let Some((dead_tx, _)) = receivers.get(DEAD_LETTER_SINK) {
            for (i, p) in dead_producers.iter().enumerate() {
                let mut o = Outputs::default();
                o.add(dead_tx.clone(), i);
                dead_outputs.insert(p.clone(), o);
            }
        }
        Graph {
            receivers,
            outputs,
            dead_outputs,
            dead_inputs: dead_producers.len(),
        }
    }

    /// The receiving end of `consumer`'s channel; its sending end is dropped
    /// here so the channel closes once every producer is gone.
    pub fn take_receiver(&mut self, consumer: &str) -> Option<Receiver<Envelope>> {
        self.receivers.remove(consumer).map(|(_, rx)| rx)
    }

    /// Where `producer`'s events go.
    pub fn take_outputs(&mut self, producer: &str) -> Outputs {
        self.outputs.remove(producer).unwrap_or_default()
    }

    /// Where `producer`'s refused events go.
    pub fn take_dead_outputs(&mut self, producer: &str) -> Outputs {
        self.dead_outputs.remove(producer).unwrap_or_default()
    }
}

/// The sources whose events reach `producer` (a source or a stage).
pub(crate) fn upstream_sources(p: &Pipeline, producer: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![producer.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if p.sources.iter().any(|s| s.name == n) {
            out.push(n);
        } else if let Some(stage) = p.stages.iter().find(|s| s.name == n) {
            todo.extend(stage.inputs.iter().cloned());
        }
    }
    out.sort();
    out
}
