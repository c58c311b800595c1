//! One batch through a plugin, with culprit isolation under a bounded budget.
//!
//! A batch is called whole first. When that call crashes, breaks a limit or
//! returns an invalid output, the events are called one at a time, so only
//! the culprits fail and their neighbours go through. Splitting in halves
//! instead would cost 2N−1 calls for N spinning events, each running to the
//! full CPU budget (8 spinners took 31 s); one at a time costs N failing calls
//! at most, and all the calls after the first failure share one per-batch
//! budget (`limits.cpu_ms_per_batch`). Events still unresolved when it runs
//! out are dead-lettered with a `limit` reason without being called again.
//!
//! Worst case for one batch: one call's budget + the per-batch budget (plus
//! one instantiation per failed call and the backoff of plugin-requested
//! retries).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::dead_letter::{Culprit, DeadLetters};
use super::stage::{StageLogic, StageOutcome};
use crate::config::OnError;
use crate::event::{Batch, BatchBuilder};
use crate::plugin::{bindings, CallCap, CallFailure};

/// Retries of a batch whose plugin asked to retry, before the stage fails.
const MAX_RETRIES: u32 = 8;

/// How a stage calls its plugin on a batch: `process` for events,
/// `on-timers` for fired timers.
pub type Call<'a> =
    dyn FnMut(&mut dyn StageLogic, &Batch) -> Result<bindings::Output, CallFailure> + 'a;

/// What isolating the culprits of failed batches may still spend.
#[derive(Debug, Clone)]
pub struct Budget {
    batch_ms: Option<u64>,
    spent: Duration,
}

impl Budget {
    /// A budget of `batch_ms` milliseconds (`None`: unlimited).
    pub fn new(batch_ms: Option<u64>) -> Self {
        Self {
            batch_ms,
            spent: Duration::ZERO,
        }
    }

    fn cap(&self) -> Option<CallCap> {
        self.batch_ms.map(|batch_ms| CallCap {
            left_ms: batch_ms
                .saturating_sub(u64::try_from(self.spent.as_millis()).unwrap_or(u64::MAX)),
            batch_ms,
        })
    }
}

/// Where one batch's results go.
pub(crate) struct Sink<'a> {
    pub stage: &'a str,
    pub policy: OnError,
    pub culprit: &'a Culprit,
    pub dead: &'a mut DeadLetters,
    pub outcome: &'a mut StageOutcome,
    /// Culprits dead-lettered so far in this batch (the first few get a
    /// log line each, the rest one line together).
    pub culprits: usize,
}

/// Culprits of one batch logged one line each; the rest are summed up.
const CULPRIT_LINES: usize = 5;

/// Runs `batch` through `call`, isolating culprits under `budget`.
pub(crate) fn run(
    instance: &mut dyn StageLogic,
    call: &mut Call<'_>,
    batch: &Batch,
    budget: &mut Budget,
    out: &mut Sink<'_>,
) -> Result<()> {
    let failure = match attempt(instance, call, batch, out)? {
        None => return Ok(()),
        Some(f) => f,
    };
    if !failure.is_event_specific() || out.policy == OnError::Fail {
        return Err(anyhow!(failure));
    }
    if batch.len() <= 1 {
        return bad_event(batch, 0, &failure, out);
    }
    // Each culprit gets its own line with the cause once it is found.
    tracing::debug!(
        stage = out.stage,
        events = batch.len(),
        "a call failed; calling its events one at a time: {failure}"
    );
    let mut produced = Vec::new();
    let result = isolate(instance, call, batch, budget, out, &mut produced);
    instance.cap_calls(None);
    if let Some(merged) = concat(&produced) {
        out.outcome.outputs.push(merged);
    }
    if out.culprits > CULPRIT_LINES {
        tracing::warn!(
            stage = out.stage,
            "{} more event(s) of this batch dead-lettered for the same kind of failure; each dead letter carries its reason",
            out.culprits - CULPRIT_LINES
        );
    }
    result
}

fn isolate(
    instance: &mut dyn StageLogic,
    call: &mut Call<'_>,
    batch: &Batch,
    budget: &mut Budget,
    out: &mut Sink<'_>,
    produced: &mut Vec<Batch>,
) -> Result<()> {
    for i in 0..batch.len() {
        let single = batch.slice(i..i + 1);
        let cap = budget.cap();
        if let Some(cap) = cap.filter(|c| c.left_ms == 0) {
            let failure = CallFailure::Limit {
                plugin: format!("{}@{}", out.culprit.plugin, out.culprit.version),
                stage: out.stage.to_string(),
                limit: format!(
                    "CPU budget of {} ms per batch (spent isolating the culprits of a failed batch; this event was not retried)",
                    cap.batch_ms
                ),
            };
            bad_event(&single, 0, &failure, out)?;
            continue;
        }
        instance.cap_calls(cap);
        let started = Instant::now();
        let mut sub = Sink {
            stage: out.stage,
            policy: out.policy,
            culprit: out.culprit,
            dead: &mut *out.dead,
            outcome: &mut StageOutcome::default(),
            culprits: 0,
        };
        let result = attempt(instance, call, &single, &mut sub);
        budget.spent += started.elapsed();
        let sub_outcome = std::mem::take(sub.outcome);
        out.outcome.skipped += sub_outcome.skipped;
        out.outcome.filtered += sub_outcome.filtered;
        produced.extend(sub_outcome.outputs);
        match result? {
            None => {}
            Some(f) if f.is_event_specific() => bad_event(&single, 0, &f, out)?,
            Some(f) => return Err(anyhow!(f)),
        }
    }
    Ok(())
}

/// One call (with plugin-requested retries). `Ok(None)`: done, results
/// routed; `Ok(Some(failure))`: the call failed.
fn attempt(
    instance: &mut dyn StageLogic,
    call: &mut Call<'_>,
    batch: &Batch,
    out: &mut Sink<'_>,
) -> Result<Option<CallFailure>> {
    let mut retries = 0;
    let mut backoff = None;
    loop {
        match call(instance, batch) {
            Ok(output) => {
                let dropped = unanswered(batch.len(), &output);
                let produced = match Batch::from_output(batch, out.stage, output.events) {
                    Ok(p) => p,
                    // Plugins are checked before this (plugin::output_check);
                    // native stage logic is not.
                    Err(message) => {
                        return Ok(Some(CallFailure::InvalidOutput {
                            plugin: format!("{}@{}", out.culprit.plugin, out.culprit.version),
                            stage: out.stage.to_string(),
                            message,
                        }))
                    }
                };
                out.outcome.filtered += dropped;
                for r in &output.rejected {
                    let idx = r.index as usize;
                    route(batch, idx, "rejected", &r.reason, out)?;
                }
                if !produced.is_empty() {
                    out.outcome.outputs.push(produced);
                }
                return Ok(None);
            }
            Err(CallFailure::Retry { message, .. }) if retries < MAX_RETRIES => {
                retries += 1;
                let wait = backoff
                    .get_or_insert_with(|| instance.retry_backoff())
                    .delay(retries);
                tracing::warn!(
                    stage = out.stage,
                    retry = retries,
                    "plugin asked to retry in {wait:?}: {message}"
                );
                std::thread::sleep(wait);
            }
            Err(failure) => return Ok(Some(failure)),
        }
    }
}

/// Input events that neither produced an output nor were refused: what a
/// filter dropped. (A parent or rejection index out of range is caught by
/// the output checks; here it simply counts for nothing.)
fn unanswered(inputs: usize, output: &bindings::Output) -> u64 {
    let mut answered = vec![false; inputs];
    let indices = output
        .events
        .events
        .iter()
        .map(|e| e.parent as usize)
        .chain(output.rejected.iter().map(|r| r.index as usize));
    for i in indices {
        if let Some(a) = answered.get_mut(i) {
            *a = true;
        }
    }
    answered.iter().filter(|a| !**a).count() as u64
}

/// Routes an event that made its call fail; under `on_error: dead-letter`
/// the first few culprits of a batch get one log line each, with the cause.
fn bad_event(batch: &Batch, index: usize, failure: &CallFailure, out: &mut Sink<'_>) -> Result<()> {
    if out.policy == OnError::DeadLetter {
        out.culprits += 1;
        if out.culprits <= CULPRIT_LINES {
            if let Some(e) = batch.get(index) {
                tracing::warn!(stage = out.stage, origin = %batch.origin, position = e.position, "dead-lettered: {failure}");
            }
        }
    }
    route(batch, index, failure.kind(), &failure.to_string(), out)
}

/// Routes refused event `index` of `batch` per the stage's error policy.
fn route(batch: &Batch, index: usize, kind: &str, reason: &str, out: &mut Sink<'_>) -> Result<()> {
    let c = out.culprit;
    let Some(event) = batch.get(index) else {
        return Err(anyhow!(
            "plugin {}@{} in stage `{}` refused event {index}, but the batch has {} events",
            c.plugin,
            c.version,
            c.stage,
            batch.len()
        ));
    };
    match out.policy {
        OnError::DeadLetter => out.dead.add(&event, &batch.origin, c, kind, reason),
        OnError::Skip => {
            out.outcome.skipped += 1;
            tracing::warn!(stage = %c.stage, origin = %batch.origin, position = event.position, "skipping event: {reason}");
        }
        OnError::Fail => {
            return Err(anyhow!(
                "stage `{}` (on_error: fail) stopped on {} position {}: {reason}",
                c.stage,
                batch.origin,
                event.position
            ))
        }
    }
    Ok(())
}

/// The outputs of events called one at a time, as one batch again.
fn concat(batches: &[Batch]) -> Option<Batch> {
    let first = batches.first()?;
    let events: usize = batches.iter().map(Batch::len).sum();
    let mut b = BatchBuilder::new(first.stream(), first.origin.clone(), events);
    for batch in batches {
        for e in batch.iter() {
            let headers: Vec<(&str, &[u8])> = e.headers().collect();
            b.push(e.key, e.value, &headers, e.timestamp_ms, e.position);
        }
    }
    Some(b.finish())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Forwards every event; an event whose value is `spin` fails with a CPU
    /// limit after sleeping `cost`, as a spinning guest would.
    struct Spinner {
        cost: Duration,
        calls: u32,
    }

    impl StageLogic for Spinner {
        fn identity(&self) -> (String, String) {
            ("spinner".into(), "1".into())
        }
        fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure> {
            self.calls += 1;
            let spins = batch.events.iter().any(|e| {
                e.value.and_then(|s| {
                    batch
                        .data
                        .get(s.offset as usize..(s.offset + s.len) as usize)
                }) == Some(b"spin".as_slice())
            });
            if spins {
                std::thread::sleep(self.cost);
                return Err(CallFailure::Limit {
                    plugin: "spinner@1".into(),
                    stage: "s".into(),
                    limit: "CPU budget of 20 ms per call".into(),
                });
            }
            Ok(bindings::Output {
                events: batch.clone(),
                rejected: vec![],
            })
        }
        fn instantiations(&self) -> u64 {
            0
        }
        fn swap(&mut self, _: crate::plugin::StagePlugin) -> Result<(), String> {
            Err("no".into())
        }
    }

    fn batch(values: &[&str]) -> Batch {
        let mut b = BatchBuilder::new("in", Arc::from("in"), values.len());
        for (i, v) in values.iter().enumerate() {
            b.push(None, Some(v.as_bytes()), &[], 0, i as u64);
        }
        b.finish()
    }

    fn run_one(s: &mut Spinner, b: &Batch, budget_ms: u64) -> (StageOutcome, Option<Batch>) {
        let culprit = Culprit {
            stage: "s".into(),
            plugin: "spinner".into(),
            version: "1".into(),
        };
        let mut dead = DeadLetters::new("s", b.origin.clone());
        let mut outcome = StageOutcome::default();
        let mut call = |i: &mut dyn StageLogic, b: &Batch| i.process(&b.events);
        run(
            s,
            &mut call,
            b,
            &mut Budget::new(Some(budget_ms)),
            &mut Sink {
                stage: "s",
                policy: OnError::DeadLetter,
                culprit: &culprit,
                dead: &mut dead,
                outcome: &mut outcome,
                culprits: 0,
            },
        )
        .expect("contained");
        (outcome, dead.finish())
    }

    #[test]
    fn spinners_cost_one_call_each_after_the_first_failure() {
        let mut values = vec!["ok"; 64];
        for i in [3, 20, 41, 63] {
            values[i] = "spin";
        }
        let mut s = Spinner {
            cost: Duration::from_millis(1),
            calls: 0,
        };
        let (outcome, dead) = run_one(&mut s, &batch(&values), 10_000);
        assert_eq!(s.calls, 1 + 64, "one whole call, then one per event");
        let out: usize = outcome.outputs.iter().map(Batch::len).sum();
        assert_eq!(out, 60);
        assert_eq!(outcome.outputs.len(), 1, "neighbours' outputs are merged");
        assert_eq!(dead.map(|d| d.len()), Some(4));
    }

    #[test]
    fn the_per_batch_budget_bounds_a_batch_of_spinners() {
        let values = vec!["spin"; 50];
        let mut s = Spinner {
            cost: Duration::from_millis(20),
            calls: 0,
        };
        let started = Instant::now();
        let (outcome, dead) = run_one(&mut s, &batch(&values), 100);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "bounded: {took:?}");
        assert!(
            s.calls < 10,
            "calls stop once the budget is spent: {}",
            s.calls
        );
        assert!(outcome.outputs.is_empty());
        let dead = dead.expect("dead letters");
        assert_eq!(dead.len(), 50, "every event is accounted for");
        let last = dead.get(49).expect("last");
        let msg = crate::pipeline::dead_letter::reason(&last);
        assert!(msg.contains("100 ms per batch"), "{msg}");
    }
}
