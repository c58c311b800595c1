//! `sluice validate FILE --sample EVENTS`: the pipeline's stages run over a
//! few sample events before any real data flows, so that a typo in a field
//! name, a type mismatch or a parameter that refuses every event shows up
//! at validation, with the stage's own warnings and dead-letter reasons.
//!
//! Every source is taken to produce the sample events; each transform stage
//! runs over what its inputs produced, in dependency order, with its own
//! params and limits. Processors (state, tables, timers) are not run: their
//! output depends on tables and time the sample does not have, so they and
//! the stages after them are reported as not run rather than guessed at.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{OnError, Pipeline};
use crate::event::BatchBuilder;
use crate::pipeline::process_batch;
use crate::plugin::{ComponentCache, StagePlugin, TransformInstance, WasmEngine};

/// The largest sample file read: a sample is for a look, not a run.
pub const MAX_SAMPLE_BYTES: u64 = 16 << 20;

/// The most bytes one stage is fed: a stage reading many sources (or
/// stages) would otherwise get the sample once per input.
pub const MAX_STAGE_INPUT_BYTES: usize = 64 << 20;

/// Dead-letter reasons printed per stage; the rest are counted.
const SHOWN_REASONS: usize = 5;

/// What the sample run found.
#[derive(Debug, Default)]
pub struct SampleReport {
    /// Events refused by a stage (or malformed in the sample file).
    pub dead_letters: u64,
}

/// Runs the stages of `p` over the JSON lines in `sample`, printing one line
/// per stage and each dead letter's reason to stderr.
pub fn run(
    p: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    sample: &Path,
) -> Result<SampleReport> {
    let mut report = SampleReport::default();
    let events = read_sample(sample, &mut report)?;
    eprintln!(
        "sample: {} event(s) from {}, fed to every source",
        events.len(),
        sample.display()
    );
    // Each node's output: `None` when it was not run. The sources share
    // one copy of the sample.
    let events = Rc::new(events);
    let mut outputs: HashMap<&str, Option<Rc<Vec<Vec<u8>>>>> = p
        .sources
        .iter()
        .map(|s| (s.name.as_str(), Some(events.clone())))
        .collect();
    // Tables are fed by sources or stages too; reading them is a processor's
    // business, which is not run.
    let mut pending: Vec<&crate::config::StageDef> = p.stages.iter().collect();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|s| s.inputs.iter().all(|i| outputs.contains_key(i.as_str())));
        // Validation has ruled out cycles and unknown inputs; stop rather
        // than loop if that ever changes.
        let Some(at) = ready else {
            anyhow::bail!("the stages' inputs form a cycle or name nothing");
        };
        let stage = pending.remove(at);
        let mut input = Vec::new();
        let mut bytes = 0usize;
        let mut cut = false;
        let mut missing = None;
        for i in &stage.inputs {
            match outputs.get(i.as_str()) {
                Some(Some(values)) => {
                    for v in values.iter() {
                        if bytes + v.len() > MAX_STAGE_INPUT_BYTES {
                            cut = true;
                            break;
                        }
                        bytes += v.len();
                        input.push(v.clone());
                    }
                }
                _ => missing = Some(i.clone()),
            }
        }
        if cut {
            eprintln!(
                "stage `{}`: fed only the first {} event(s): its inputs add up to more than {MAX_STAGE_INPUT_BYTES} bytes",
                stage.name,
                input.len()
            );
        }
        let out = match missing {
            Some(from) => {
                eprintln!(
                    "stage `{}`: not run (its input `{from}` was not run)",
                    stage.name
                );
                None
            }
            None => run_stage(p, engine, cache, stage, &input, &mut report)?.map(Rc::new),
        };
        outputs.insert(stage.name.as_str(), out);
    }
    for sink in &p.sinks {
        let n: Option<usize> = sink.inputs.iter().try_fold(0, |n, i| {
            outputs
                .get(i.as_str())
                .and_then(|o| o.as_ref())
                .map(|v| n + v.len())
        });
        match n {
            Some(n) => eprintln!("sink `{}`: would get {n} event(s)", sink.name),
            None => eprintln!("sink `{}`: not known (an input was not run)", sink.name),
        }
    }
    Ok(report)
}

fn read_sample(sample: &Path, report: &mut SampleReport) -> Result<Vec<Vec<u8>>> {
    let file =
        std::fs::File::open(sample).with_context(|| format!("opening {}", sample.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_SAMPLE_BYTES {
        anyhow::bail!(
            "{}: {size} bytes; a sample is at most {MAX_SAMPLE_BYTES} bytes (take the first lines with `head`)",
            sample.display()
        );
    }
    let mut events = Vec::new();
    // `take` bounds what is read even if the file grows meanwhile.
    let reader = BufReader::new(file.take(MAX_SAMPLE_BYTES));
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", sample.display()))?;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match crate::event::check_json(text) {
            Ok(()) => events.push(text.to_vec()),
            Err(e) => {
                eprintln!(
                    "dead letter: {} line {}: malformed JSON: {e}",
                    sample.display(),
                    i + 1
                );
                report.dead_letters += 1;
            }
        }
    }
    Ok(events)
}

fn run_stage(
    p: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    stage: &crate::config::StageDef,
    input: &[Vec<u8>],
    report: &mut SampleReport,
) -> Result<Option<Vec<Vec<u8>>>> {
    let plugin = match StagePlugin::load(engine, cache, &stage.plugin, stage.limits.cpu_ms_per_call)
    {
        Ok(StagePlugin::Transform(t)) => Arc::new(t),
        Ok(StagePlugin::Processor(_)) => {
            eprintln!(
                "stage `{}`: a processor (state, tables, timers): not run on the sample",
                stage.name
            );
            return Ok(None);
        }
        Err(e) => anyhow::bail!("stage `{}`: {e}", stage.name),
    };
    // The pipeline's user-defined functions, as `run` gives them (one that
    // does not load was reported by validation; its calls fail per event).
    let udfs = match crate::pipeline::load_udfs(p, engine, cache) {
        Ok(set) | Err((set, _)) => set,
    };
    let mut instance =
        TransformInstance::with_udfs(plugin, &stage.name, &stage.params, stage.limits, Some(udfs))
            .map_err(|e| anyhow::anyhow!("stage `{}`: {e}", stage.name))?;
    let origin: Arc<str> = Arc::from("sample");
    let mut out = Vec::new();
    let (mut dead, mut filtered) = (0u64, 0u64);
    for chunk in input.chunks(p.batch_size.max(1)) {
        let mut b = BatchBuilder::new("sample", origin.clone(), chunk.len());
        for (i, value) in chunk.iter().enumerate() {
            b.push(None, Some(value), &[], 0, i as u64);
        }
        // Dead letters are what a sample is for: always collect them here,
        // whatever the stage's `on_error` says.
        let outcome = process_batch(&mut instance, &stage.name, OnError::DeadLetter, &b.finish())?;
        filtered += outcome.filtered;
        for batch in &outcome.outputs {
            out.extend(batch.iter().map(|e| e.value.unwrap_or(b"null").to_vec()));
        }
        for e in outcome.dead.iter().flat_map(|d| d.iter()) {
            if dead < SHOWN_REASONS as u64 {
                let reason = crate::pipeline::dead_letter::reason(&e);
                eprintln!("dead letter: stage `{}`: {reason}", stage.name);
            }
            dead += 1;
        }
    }
    // Retired before its summary line, so what it reports at the end of a
    // stream (a field no event had) comes first, as in a run.
    drop(instance);
    if dead > SHOWN_REASONS as u64 {
        eprintln!(
            "dead letter: stage `{}`: … and {} more",
            stage.name,
            dead - SHOWN_REASONS as u64
        );
    }
    eprintln!(
        "stage `{}`: {} in, {} out, {filtered} filtered out, {dead} dead letter(s)",
        stage.name,
        input.len(),
        out.len()
    );
    report.dead_letters += dead;
    Ok(Some(out))
}
