//! `sluice dlq replay`: sends selected dead letters back into the stage (or
//! sink) that refused them, and on to the sinks, exactly once per letter.
//!
//! A replay is a run of part of the pipeline, through the ordinary runner:
//! its sources are one replay source per target (`dlq-replay.TARGET`), which
//! read the planned letters from the dead-letter file; its stages and sinks
//! are the targets and everything downstream of them. It resumes from the
//! pipeline's own checkpoint and commits into it, so file sinks (and the
//! dead-letter file, where new dead letters go) are cut back to the last
//! checkpoint after a crash exactly as for `sluice run`. The replay
//! sources' positions (`{"run": R, "next": K}`: the first K letters of the
//! run's plan for that target) are committed in the same checkpoint as the
//! sinks' lengths, which is what makes a killed replay resume without
//! sending a letter twice. The parts of the pipeline it does not run keep
//! their positions (carried into every checkpoint it writes), and the
//! checkpoint keeps the whole pipeline's fingerprint.
//!
//! Before running, the plan is written to the ledger; after (or, after a
//! crash, at the next `dlq` command) [`settle`] records each letter's
//! outcome from the checkpoint: dead-lettered again (a new dead letter
//! whose `sluice.position` is the replayed letter's offset, found after
//! where the dead-letter file ended when the replay started), delivered (a
//! sink took what it became), or filtered out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::ledger::{self, Ledger, Pending, Planned, Record, RunRecord};
use super::select::Selection;
use super::store::{self, Item, Letter};
use super::{checkpointed_len, dead_letter_file};
use crate::config::{Location, Pipeline, SourceDef};
use crate::connector::{Polled, Progress, Rejected, Sink, Source, SourceConfig, SourceContext};
use crate::event::{Batch, BatchBuilder};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::{Hooks, RunOptions, StatusCallback, WrapSink};
use crate::plugin::{ComponentCache, WasmEngine};
use crate::state::{Checkpoint, CheckpointStore, RunLock};

/// The origin of replayed events, and so of the dead letters they become.
pub const ORIGIN: &str = "dlq-replay";

/// The replay source feeding `target`.
pub fn source_name(target: &str) -> String {
    format!("{ORIGIN}.{target}")
}

/// What to replay, and how.
pub struct ReplayArgs {
    /// Which letters.
    pub selection: Selection,
    /// The `--filter` text, for the history.
    pub filter_text: Option<String>,
    /// Send every letter into this stage or sink instead of the one that
    /// refused it.
    pub to: Option<String>,
    /// Only say what would be replayed.
    pub dry_run: bool,
    /// Stops the replay (Ctrl-C): it checkpoints, and the rest is left for
    /// the next replay.
    pub stop: Arc<AtomicBool>,
    /// Progress display.
    pub on_status: Option<StatusCallback>,
}

/// What a replay did (or, with `--dry-run`, would do).
#[derive(Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    /// The run's number (0 for a dry run or when nothing was selected).
    pub run: u64,
    /// Target → how many letters were (to be) sent into it.
    pub planned: BTreeMap<String, u64>,
    /// Letters selected but already replayed in an earlier run.
    pub already_replayed: u64,
    /// Letters selected that cannot be replayed, with why (counted).
    pub not_replayable: BTreeMap<String, u64>,
    /// Outcome → count.
    pub outcomes: BTreeMap<String, u64>,
    /// Each letter replayed: ID, target, outcome, and its new dead letter.
    pub letters: Vec<Record>,
    /// What an earlier, interrupted command left and this one finished.
    pub recovered: Vec<String>,
    /// Lines of the dead-letter file that are not dead letters.
    pub bad_lines: u64,
}

/// `sluice dlq replay`.
pub fn replay(
    written: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    args: ReplayArgs,
) -> Result<ReplayReport> {
    // The stages as `sluice run` runs them: a dead letter names the stage
    // that refused it, which may be one that runs others fused into it,
    // and a replay must send it through all of their work.
    let (pipeline, _) = crate::pipeline::fuse::as_run(written);
    let pipeline = &pipeline;
    let state = pipeline.state_dir();
    let _lock = RunLock::acquire(&state, "sluice dlq replay")?;
    let ledger_path = ledger::path(&state);
    let mut ledger = Ledger::load(&ledger_path)?;
    let mut report = ReplayReport {
        recovered: super::recover(pipeline, &mut ledger)?,
        ..ReplayReport::default()
    };
    let file = dead_letter_file(pipeline)?;
    let store = CheckpointStore::new(&state);
    let Some(cp) = store.load()? else {
        bail!(
            "pipeline `{}` has no checkpoint in {}: run it first (a replay appends to its sinks from where its checkpoint left them)",
            pipeline.name,
            state.display()
        );
    };
    let Some(end) = checkpointed_len(&cp) else {
        bail!(
            "the checkpoint in {} records no dead-letter file length; run the pipeline once with this version of sluice first",
            state.display()
        );
    };
    let plan = plan(pipeline, &ledger, &file, end, &args, &mut report)?;
    for (target, items) in &plan {
        report.planned.insert(target.clone(), items.len() as u64);
    }
    if args.dry_run || plan.is_empty() {
        return Ok(report);
    }
    let run = ledger.next_run();
    report.run = run;
    ledger.runs.push(RunRecord {
        run,
        started_ms: now_ms(),
        filter: args.filter_text.clone(),
        to: args.to.clone(),
        planned: plan.values().map(|v| v.len() as u64).sum(),
        ..RunRecord::default()
    });
    ledger.pending = Some(Pending {
        run,
        dead_letters_from: end,
        plan: plan.clone(),
    });
    // The plan is durable before any letter moves: a crash from here on is
    // settled from the checkpoint against this plan.
    ledger.save(&ledger_path)?;

    let part = part_of(pipeline, &plan, &file, run)?;
    let delivered: Delivered = Arc::default();
    let hooks = hooks(pipeline, &cp, &part, delivered.clone());
    let mut options = RunOptions::new(args.stop.clone());
    options.on_status = args.on_status.clone();
    let outcome = crate::pipeline::run_hooked(&part, engine, cache, options, HashMap::new(), hooks);
    // Whatever happened, what the checkpoint now says is what was replayed.
    let cp = store.load()?;
    let delivered = delivered.lock().map(|d| d.clone()).unwrap_or_default();
    let complete = outcome.is_ok();
    settle(pipeline, &mut ledger, cp.as_ref(), Some(&delivered))?;
    ledger.save(&ledger_path)?;
    outcome.context("the replay run failed; what it committed is recorded, run `sluice dlq replay` again for the rest")?;
    if let Some(r) = ledger.runs.iter().find(|r| r.run == run) {
        report.outcomes = r.outcomes.clone();
    }
    report.letters = ledger
        .letters
        .values()
        .filter(|r| r.run == run)
        .cloned()
        .collect();
    report.letters.sort_by_key(|r| offset_of(&r.id));
    if !complete {
        bail!("the replay did not complete");
    }
    Ok(report)
}

fn offset_of(id: &str) -> u64 {
    id.split_once('-')
        .and_then(|(o, _)| o.parse().ok())
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The letters to replay, by target, in file order: selected, not replayed
/// before, each line once, and with a target that can take them.
fn plan(
    pipeline: &Pipeline,
    ledger: &Ledger,
    file: &Path,
    end: u64,
    args: &ReplayArgs,
    report: &mut ReplayReport,
) -> Result<BTreeMap<String, Vec<Planned>>> {
    let stages: HashSet<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    let sinks: HashSet<&str> = pipeline.sinks.iter().map(|s| s.name.as_str()).collect();
    let sources: HashSet<&str> = pipeline.sources.iter().map(|s| s.name.as_str()).collect();
    if let Some(to) = &args.to {
        if !stages.contains(to.as_str()) && !sinks.contains(to.as_str()) {
            let mut names: Vec<&str> = stages.iter().chain(sinks.iter()).copied().collect();
            names.sort_unstable();
            bail!(
                "--to {to}: no stage or sink of that name in pipeline `{}` (it has: {})",
                pipeline.name,
                names.join(", ")
            );
        }
    }
    let mut plan: BTreeMap<String, Vec<Planned>> = BTreeMap::new();
    let mut seen = HashSet::new();
    store::scan(file, 0, Some(end), |item| {
        let letter = match item {
            Item::Letter(l) => l,
            Item::Bad(b) => {
                tracing::warn!(
                    line = b.line,
                    offset = b.offset,
                    "{}: {}",
                    file.display(),
                    b.error
                );
                report.bad_lines += 1;
                return Ok(true);
            }
        };
        let replayed = ledger.outcome(&letter.digest);
        if !args.selection.matches(&letter, replayed) {
            return Ok(true);
        }
        if replayed.is_some() || !seen.insert(letter.digest.clone()) {
            report.already_replayed += 1;
            return Ok(true);
        }
        let target = args.to.clone().unwrap_or_else(|| letter.stage.clone());
        let why_not = if stages.contains(target.as_str()) || sinks.contains(target.as_str()) {
            None
        } else if sources.contains(target.as_str()) {
            Some(format!(
                "refused by source `{target}` (input it could not read): give --to STAGE"
            ))
        } else {
            Some(format!(
                "refused by `{target}`, which the pipeline no longer has: give --to STAGE"
            ))
        };
        match why_not {
            Some(why) => *report.not_replayable.entry(why).or_default() += 1,
            None => plan.entry(target).or_default().push(Planned {
                offset: letter.offset,
                digest: letter.digest.clone(),
            }),
        }
        Ok(true)
    })?;
    Ok(plan)
}

/// The part of `pipeline` a replay runs: a replay source per target, the
/// targets and everything downstream of them.
fn part_of(
    pipeline: &Pipeline,
    plan: &BTreeMap<String, Vec<Planned>>,
    file: &Path,
    run: u64,
) -> Result<Pipeline> {
    // Everything downstream of the targets, found by repeated passes (the
    // graph is small and acyclic).
    let mut kept: BTreeSet<String> = plan.keys().cloned().collect();
    loop {
        let before = kept.len();
        for s in &pipeline.stages {
            if s.inputs.iter().any(|i| kept.contains(i)) {
                kept.insert(s.name.clone());
            }
        }
        for s in &pipeline.sinks {
            if s.inputs.iter().any(|i| kept.contains(i)) {
                kept.insert(s.name.clone());
            }
        }
        if kept.len() == before {
            break;
        }
    }
    for t in &pipeline.tables {
        if kept.contains(&t.config.input) {
            bail!(
                "table `{}` is fed by `{}`: replaying into it is not supported (tables are not updated by a replay)",
                t.name,
                t.config.input
            );
        }
    }
    let mut part = pipeline.clone();
    part.tables.clear();
    part.sources = plan
        .iter()
        .map(|(target, items)| SourceDef {
            name: source_name(target),
            config: Box::new(ReplaySourceConfig {
                file: file.to_path_buf(),
                run,
                items: Arc::new(items.clone()),
            }) as Box<dyn SourceConfig>,
            at: Location::default(),
        })
        .collect();
    let inputs = |name: &str, inputs: &[String]| -> Vec<String> {
        let mut out: Vec<String> = inputs
            .iter()
            .filter(|i| kept.contains(*i))
            .cloned()
            .collect();
        if plan.contains_key(name) {
            out.push(source_name(name));
        }
        out
    };
    part.stages = pipeline
        .stages
        .iter()
        .filter(|s| kept.contains(&s.name))
        .map(|s| {
            let mut s = s.clone();
            s.inputs = inputs(&s.name, &s.inputs);
            s
        })
        .collect();
    for s in &part.stages {
        if !s.tables.is_empty() {
            bail!(
                "stage `{}` reads tables ({}): replaying through it is not supported",
                s.name,
                s.tables.join(", ")
            );
        }
    }
    part.sinks = pipeline
        .sinks
        .iter()
        .filter(|s| kept.contains(&s.name))
        .map(|s| {
            let mut s = s.clone();
            s.inputs = inputs(&s.name, &s.inputs);
            s
        })
        .collect();
    Ok(part)
}

/// Sink name → the positions (replayed letters' offsets) of events it took.
type Delivered = Arc<Mutex<HashMap<u64, BTreeSet<String>>>>;

/// How the runner runs `part` for `pipeline`: whole-pipeline fingerprint,
/// the other components' positions carried, sinks recording what they took.
fn hooks(pipeline: &Pipeline, cp: &Checkpoint, part: &Pipeline, delivered: Delivered) -> Hooks {
    let running_sinks: HashSet<&str> = part.sinks.iter().map(|s| s.name.as_str()).collect();
    let carried = Checkpoint {
        id: 0,
        // Only the pipeline's own sources: earlier replays' positions are
        // settled in the ledger and dropped here.
        sources: cp
            .sources
            .iter()
            .filter(|(n, _)| pipeline.sources.iter().any(|s| &s.name == *n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        sinks: cp
            .sinks
            .iter()
            .filter(|(n, _)| {
                !running_sinks.contains(n.as_str())
                    && n.as_str() != crate::pipeline::DEAD_LETTER_SINK
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        stages: cp.stages.clone(),
        pipeline: None,
    };
    let old: Option<Fingerprint> = cp
        .pipeline
        .clone()
        .and_then(|v| serde_json::from_value(v).ok());
    let whole = pipeline.clone();
    let ran: Vec<String> = part.stages.iter().map(|s| s.name.clone()).collect();
    let fingerprint = Box::new(move |plugins: &[String]| {
        // Stages the replay ran are recorded with the plugin it loaded;
        // the others with what the checkpoint had (the next full run
        // loads and compares them).
        let all: Vec<String> = whole
            .stages
            .iter()
            .map(|s| match ran.iter().position(|r| *r == s.name) {
                Some(i) => plugins.get(i).cloned().unwrap_or_default(),
                None => old
                    .as_ref()
                    .and_then(|f| f.stages.get(&s.name))
                    .map(|p| p.plugin.clone())
                    .unwrap_or_default(),
            })
            .collect();
        Fingerprint::of(&whole, &all)
    });
    let wrap: WrapSink = Arc::new(move |name: &str, inner: Box<dyn Sink>| {
        Box::new(Recording {
            name: name.to_string(),
            inner,
            delivered: delivered.clone(),
        }) as Box<dyn Sink>
    });
    Hooks {
        fingerprint: Some(fingerprint),
        carried,
        wrap_sink: Some(wrap),
        stateless_only: true,
    }
}

/// Records the letters a sink took what they became.
struct Recording {
    name: String,
    inner: Box<dyn Sink>,
    delivered: Delivered,
}

impl Sink for Recording {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.inner.open(position)
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        if let Ok(mut d) = self.delivered.lock() {
            for p in &batch.positions {
                d.entry(*p).or_default().insert(self.name.clone());
            }
        }
        self.inner.write(batch, rejected)
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        self.inner.flush(rejected)
    }

    fn exactly_once(&mut self, pipeline: &str) -> bool {
        self.inner.exactly_once(pipeline)
    }

    fn source_progress(&mut self, progress: Vec<crate::connector::Handoff>) -> Result<()> {
        self.inner.source_progress(progress)
    }
}

/// Records the outcome of every letter the pending replay committed, from
/// `cp` (the pipeline's checkpoint now) and, when the run ended in this
/// process, which sinks took what (`delivered`); without it (a killed run
/// settled later) letters that were not dead-lettered again are recorded
/// as `replayed`. Letters the checkpoint does not cover are left for the
/// next replay. Returns a note when it settled a killed run.
pub fn settle(
    pipeline: &Pipeline,
    ledger: &mut Ledger,
    cp: Option<&Checkpoint>,
    delivered: Option<&HashMap<u64, BTreeSet<String>>>,
) -> Result<Option<String>> {
    let Some(pending) = ledger.pending.take() else {
        return Ok(None);
    };
    let file = dead_letter_file(pipeline)?;
    // New dead letters the replay committed: after where the file ended
    // when it started, up to where the checkpoint says it ends now.
    let mut again: HashMap<u64, (String, String)> = HashMap::new();
    if let Some(end) = cp.and_then(checkpointed_len) {
        store::scan(&file, pending.dead_letters_from, Some(end), |item| {
            if let Item::Letter(l) = item {
                if let Ok(p) = l.position.parse::<u64>() {
                    again.insert(p, (l.id.clone(), l.reason.clone()));
                }
            }
            Ok(true)
        })?;
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut done_total = 0usize;
    let mut planned_total = 0usize;
    for (target, items) in &pending.plan {
        planned_total += items.len();
        let done = cp
            .and_then(|c| c.sources.get(&source_name(target)))
            .filter(|p| p.get("run").and_then(Value::as_u64) == Some(pending.run))
            .and_then(|p| p.get("next"))
            .and_then(Value::as_u64)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(items.len());
        done_total += done;
        for item in &items[..done] {
            let mut record = Record {
                run: pending.run,
                id: store::id_of(item.offset, &item.digest),
                to: target.clone(),
                outcome: String::new(),
                sinks: Vec::new(),
                new_id: None,
                reason: None,
            };
            if let Some((id, reason)) = again.get(&item.offset) {
                record.outcome = "dead-lettered".into();
                record.new_id = Some(id.clone());
                record.reason = Some(reason.clone());
            } else if let Some(d) = delivered {
                match d.get(&item.offset) {
                    Some(sinks) => {
                        record.outcome = "delivered".into();
                        record.sinks = sinks.iter().cloned().collect();
                    }
                    None => record.outcome = "filtered".into(),
                }
            } else {
                record.outcome = "replayed".into();
            }
            *counts.entry(record.outcome.clone()).or_default() += 1;
            ledger.letters.insert(item.digest.clone(), record);
        }
    }
    let interrupted = delivered.is_none();
    if let Some(r) = ledger.runs.iter_mut().find(|r| r.run == pending.run) {
        r.outcomes = counts;
        r.interrupted = interrupted;
    }
    Ok(interrupted.then(|| {
        format!(
            "recorded replay run {} that was interrupted: {done_total} of {planned_total} letters had been committed; the rest are replayable again",
            pending.run
        )
    }))
}

/// The replay source's configuration: the letters of one target's plan.
#[derive(Debug, Clone)]
struct ReplaySourceConfig {
    file: PathBuf,
    run: u64,
    items: Arc<Vec<Planned>>,
}

impl SourceConfig for ReplaySourceConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        cx.progress.set_total(self.items.len() as u64);
        Ok(Box::new(ReplaySource {
            config: self.clone(),
            reader: None,
            next: 0,
            progress: cx.progress,
            origin: Arc::from(ORIGIN),
        }))
    }
}

/// Reads one target's planned letters back as events. Its position is
/// `{"run": R, "next": K}`; a position of another run means this one has
/// not started.
struct ReplaySource {
    config: ReplaySourceConfig,
    reader: Option<store::Reader>,
    next: usize,
    progress: Arc<Progress>,
    origin: Arc<str>,
}

impl Source for ReplaySource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.next = position
            .filter(|p| p.get("run").and_then(Value::as_u64) == Some(self.config.run))
            .and_then(|p| p.get("next"))
            .and_then(Value::as_u64)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        self.reader = Some(store::Reader::open(&self.config.file)?);
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let items = self.config.items.clone();
        if self.next >= items.len() {
            return Ok(Polled {
                done: true,
                ..Polled::default()
            });
        }
        let reader = self
            .reader
            .as_mut()
            .context("replay source used before open")?;
        let mut builder: Option<(String, BatchBuilder)> = None;
        for item in items.iter().skip(self.next).take(max.max(1)) {
            let letter = match reader.read_at(item.offset)? {
                Ok(l) if l.digest == item.digest => l,
                _ => bail!(
                    "the dead-letter file changed under the replay: no longer the planned letter {}",
                    store::id_of(item.offset, &item.digest)
                ),
            };
            // A batch holds one stream: the letter's source, as the stage
            // first saw it.
            let stream = letter.origin.clone();
            if builder.as_ref().is_some_and(|(s, _)| *s != stream) {
                break;
            }
            let (_, b) = builder.get_or_insert_with(|| {
                (
                    stream.clone(),
                    BatchBuilder::new(&stream, self.origin.clone(), max.max(1)),
                )
            });
            push_event(b, &letter, item.offset);
            self.next += 1;
        }
        self.progress.set_done(self.next as u64);
        Ok(Polled {
            batch: builder.map(|(_, b)| b.finish()),
            malformed: Vec::new(),
            done: false,
        })
    }

    fn position(&self) -> Value {
        json!({ "run": self.config.run, "next": self.next })
    }
}

/// The event a dead letter holds, at `position` (the letter's offset, which
/// its outcome is found by).
///
/// The envelope format writes a key or value that is not JSON as a JSON
/// string, so bytes cannot always be given back exactly: a string key is
/// given back as its text (plain-text keys are common, JSON-string keys
/// rare), a value as JSON, except a `malformed` letter's string value,
/// which is the raw line the source could not read.
fn push_event(b: &mut BatchBuilder, letter: &Letter, position: u64) {
    // JSON goes back as the line's text of it, not re-serialized: numbers
    // (a number past f64 too), key order and duplicate keys as they were.
    let key = match &letter.key {
        Value::Null => None,
        Value::String(s) if letter.key_text.starts_with('"') => Some(s.as_bytes().to_vec()),
        _ => Some(letter.key_text.as_bytes().to_vec()),
    };
    let value = match &letter.value {
        Value::Null => None,
        Value::String(s) if letter.kind == "malformed" => Some(s.as_bytes().to_vec()),
        _ => Some(letter.value_text.as_bytes().to_vec()),
    };
    let header_values: Vec<(String, Vec<u8>)> = letter
        .headers
        .iter()
        .map(|(n, v)| {
            let bytes = match v {
                Value::String(s) => s.as_bytes().to_vec(),
                other => other.to_string().into_bytes(),
            };
            (n.clone(), bytes)
        })
        .collect();
    let headers: Vec<(&str, &[u8])> = header_values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    b.push(
        key.as_deref(),
        value.as_deref(),
        &headers,
        letter.timestamp_ms,
        position,
    );
}
