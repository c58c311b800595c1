//! `sluice dlq ls|show|replay|purge`: the dead-letter store of a pipeline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::{self, HostConfig, LoadOptions, Pipeline};
use crate::dlq::ledger::{self, Ledger};
use crate::dlq::select::Selection;
use crate::dlq::store::{self, Item, Letter};
use crate::dlq::{dead_letter_file, purge, replay};

/// Letters are grouped by (kind, stage, plugin, version); past this many
/// groups the rest are counted together, so a hostile file cannot make the
/// listing grow without bound.
const MAX_GROUPS: usize = 1000;
/// Lines that are not dead letters reported one by one (the rest counted).
const MAX_BAD_REPORTED: usize = 20;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Count and list a pipeline's dead letters, grouped by kind, stage and plugin.
    #[command(after_help = "\
Examples:
  sluice dlq ls pipeline.yaml
  sluice dlq ls pipeline.yaml --stage price --kind rejected
  sluice dlq ls pipeline.yaml --filter \"value.total > 100 and replayed is null\"
  sluice dlq ls pipeline.yaml --json | jq '.groups'

Reads the pipeline's dead-letter file (its `dead_letter` file sink, else
DATA_DIR/NAME/dead-letters.jsonl) one line at a time, so any size works.
Prints one line per group (count, kind, stage, plugin as the host knew it:
file, claimed version, sha256 prefix; how many were replayed), then the
first --limit letters with their ID. An ID is OFFSET-HASH: the letter's
byte offset in the file and the start of its SHA-256; `show`, and the
ledger of `replay`, use it. A line that is not a dead letter is reported
with its line number and skipped.

--filter takes an expression of the `filter` plugin's language over the
letter as --json shows it: id, kind, reason, stage, plugin,
plugin_version, origin, position, time_ms, timestamp_ms, key, value (the
event's value, so value.FIELD), headers, and replayed (the outcome of its
replay: delivered, dead-lettered, filtered, replayed; null if never).")]
    Ls {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        select: SelectArgs,
        /// How many letters to list after the groups (0: none).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print one dead letter in full: event, reason, where and when it was refused.
    #[command(after_help = "\
Example:
  sluice dlq show pipeline.yaml 1532-3fa9c1
The ID is as `sluice dlq ls` prints it. An ID from before the file was
rewritten (by `purge`) is refused rather than showing another letter.")]
    Show {
        #[command(flatten)]
        common: Common,
        /// The letter's ID (OFFSET-HASH).
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back through the pipeline, each at most once, after a fix.
    #[command(after_help = "\
Examples:
  sluice dlq replay pipeline.yaml --dry-run             # what would go where
  sluice dlq replay pipeline.yaml                       # every letter not yet replayed
  sluice dlq replay pipeline.yaml --stage price --filter \"value.currency = 'eur'\"
  sluice dlq replay pipeline.yaml --kind malformed --to parse

Typically after deploying a fixed plugin or params: edit the pipeline file,
then replay. Each letter goes into the stage (or sink) that refused it, or
--to's, and on through the stages and sinks downstream of it; the rest of
the pipeline does not run. Outputs are appended to the sinks, and a letter
refused again becomes a new dead letter (with its own ID) in the same file.
Each replayed letter's outcome (delivered, with the sinks; dead-lettered,
with the new ID and reason; filtered out) goes in the ledger next to the
checkpoint (DATA_DIR/NAME/dlq-ledger.json), and `ls` shows it.

Exactly once: a letter whose replay was committed is never sent again, even
if replay runs twice or is killed (kill -9) and rerun. The replay commits
into the pipeline's own checkpoint, with the sinks' positions, as a run
does; a killed replay is recorded and the rest resumed by the next one.

Refuses while the pipeline runs (`sluice run` holds DATA_DIR/NAME/run.lock),
before the pipeline has a checkpoint, and through processor stages (window
and join state) or stages reading tables.")]
    Replay {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        select: SelectArgs,
        /// Send every selected letter into this stage or sink instead.
        #[arg(long, value_name = "STAGE")]
        to: Option<String>,
        /// Say what would be replayed, and where, without doing it.
        #[arg(long)]
        dry_run: bool,
        /// How many replayed letters to list (0: none).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove dead letters (all, selected ones, or those already replayed).
    #[command(after_help = "\
Examples:
  sluice dlq purge pipeline.yaml --replayed          # what replay has dealt with
  sluice dlq purge pipeline.yaml --kind malformed --dry-run
  sluice dlq purge pipeline.yaml --all

Rewrites the dead-letter file without them (a new file renamed over the
old, so readers see one or the other) and records its new length in the
checkpoint. IDs of the letters kept change (their offsets move). Refuses
while the pipeline runs. Lines that are not dead letters are kept.")]
    Purge {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        select: SelectArgs,
        /// Only letters already replayed (any outcome: a letter refused
        /// again lives on as its new dead letter).
        #[arg(long)]
        replayed: bool,
        /// Every letter (required when nothing else selects).
        #[arg(long)]
        all: bool,
        /// Count what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// The pipeline and where to find its plugins.
#[derive(Debug, Args)]
pub struct Common {
    /// The pipeline file.
    file: PathBuf,
    /// Extra directories to look for `plugin: NAME` in.
    #[arg(long = "plugin-path", value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
}

/// Which letters.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Only this kind (rejected, trap, limit, malformed, sink, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only those refused by this stage, sink or source.
    #[arg(long)]
    stage: Option<String>,
    /// Only those of a plugin whose name, hash or version contains this.
    #[arg(long)]
    plugin: Option<String>,
    /// Only those for which this expression is true (see `sluice dlq ls --help`).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
}

impl SelectArgs {
    /// The selection as the server's query parameters (`&kind=...`), each
    /// value percent-encoded.
    pub(super) fn query_string(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        [
            ("kind", &self.kind),
            ("stage", &self.stage),
            ("plugin", &self.plugin),
            ("filter", &self.filter),
        ]
        .iter()
        .filter_map(|(name, v)| {
            v.as_ref()
                .map(|v| format!("&{name}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        })
        .collect()
    }

    fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.stage.is_none()
            && self.plugin.is_none()
            && self.filter.is_none()
    }

    fn selection(&self) -> Result<Selection> {
        Selection::new(
            self.kind.clone(),
            self.stage.clone(),
            self.plugin.clone(),
            self.filter.as_deref(),
        )
    }
}

/// Runs a `sluice dlq` command.
pub fn run(command: DlqCommand) -> Result<ExitCode> {
    match command {
        DlqCommand::Ls {
            common,
            select,
            limit,
            json,
        } => {
            let Some(p) = load(&common)? else {
                return Ok(ExitCode::FAILURE);
            };
            ls(&p, &select.selection()?, limit, json)
        }
        DlqCommand::Show { common, id, json } => {
            let Some(p) = load(&common)? else {
                return Ok(ExitCode::FAILURE);
            };
            show(&p, &id, json)
        }
        DlqCommand::Replay {
            common,
            select,
            to,
            dry_run,
            limit,
            json,
        } => {
            let (p, engine, cache) =
                match super::run_cmd::prepare(&common.file, common.plugin_path)? {
                    Ok(ready) => ready,
                    Err(diags) => {
                        eprintln!("{}", diags.sorted());
                        return Ok(ExitCode::FAILURE);
                    }
                };
            let stop = Arc::new(AtomicBool::new(false));
            super::signals::install(stop.clone())?;
            let report = replay::replay(
                &p,
                &engine,
                &cache,
                replay::ReplayArgs {
                    selection: select.selection()?,
                    filter_text: select.filter.clone(),
                    to,
                    dry_run,
                    stop,
                    on_status: None,
                },
            )?;
            print_replay(&report, dry_run, limit, json)
        }
        DlqCommand::Purge {
            common,
            select,
            replayed,
            all,
            dry_run,
            json,
        } => {
            if select.is_empty() && !replayed && !all {
                anyhow::bail!(
                    "say which letters to purge: --replayed, --kind/--stage/--plugin/--filter, or --all"
                );
            }
            let Some(p) = load(&common)? else {
                return Ok(ExitCode::FAILURE);
            };
            let report = purge::purge(&p, &select.selection()?, replayed, dry_run)?;
            for note in &report.recovered {
                eprintln!("note: {note}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let verb = if dry_run { "would remove" } else { "removed" };
                println!(
                    "{verb} {} dead letter(s), kept {}{}; {} -> {} bytes",
                    report.removed,
                    report.kept,
                    if report.bad_lines > 0 {
                        format!(" (and {} unreadable line(s))", report.bad_lines)
                    } else {
                        String::new()
                    },
                    report.bytes_before,
                    report.bytes_after
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The pipeline file, validated (plugins are not loaded: browsing needs
/// only where the files are).
fn load(common: &Common) -> Result<Option<Pipeline>> {
    let options = LoadOptions::for_host(
        &HostConfig::current().map_err(anyhow::Error::msg)?,
        common.plugin_path.clone(),
    );
    match config::load(&common.file, &options) {
        Ok(p) => Ok(Some(p)),
        Err(diags) => {
            eprintln!("{}", diags.sorted());
            Ok(None)
        }
    }
}

#[derive(Default)]
struct Group {
    count: u64,
    replayed: u64,
}

fn ls(p: &Pipeline, selection: &Selection, limit: usize, as_json: bool) -> Result<ExitCode> {
    let file = dead_letter_file(p)?;
    let ledger = Ledger::load(&ledger::path(&p.state_dir()))?;
    let mut groups: BTreeMap<(String, String, String, String), Group> = BTreeMap::new();
    let mut other = Group::default();
    let mut listed: Vec<(Letter, Option<String>)> = Vec::new();
    let mut bad = Vec::new();
    let (mut total, mut bad_count) = (0u64, 0u64);
    store::scan(&file, 0, None, |item| {
        match item {
            Item::Bad(b) => {
                bad_count += 1;
                if bad.len() < MAX_BAD_REPORTED {
                    bad.push(b);
                }
            }
            Item::Letter(l) => {
                let replayed = ledger.outcome(&l.digest).map(str::to_string);
                if !selection.matches(&l, replayed.as_deref()) {
                    return Ok(true);
                }
                total += 1;
                let key = (
                    l.kind.clone(),
                    l.stage.clone(),
                    l.plugin.clone(),
                    l.version.clone(),
                );
                let g = if groups.len() < MAX_GROUPS || groups.contains_key(&key) {
                    groups.entry(key).or_default()
                } else {
                    &mut other
                };
                g.count += 1;
                g.replayed += u64::from(replayed.is_some());
                if listed.len() < limit {
                    listed.push((*l, replayed));
                }
            }
        }
        Ok(true)
    })?;
    if as_json {
        let groups: Vec<Value> = groups
            .iter()
            .map(|((kind, stage, plugin, version), g)| {
                json!({"kind": kind, "stage": stage, "plugin": plugin, "plugin_version": version, "count": g.count, "replayed": g.replayed})
            })
            .collect();
        let letters: Vec<Value> = listed
            .iter()
            .map(|(l, r)| {
                let mut v = l.to_json();
                if let Value::Object(o) = &mut v {
                    o.insert("replayed".into(), json!(r));
                }
                v
            })
            .collect();
        let out = json!({
            "file": file.display().to_string(),
            "total": total,
            "groups": groups,
            "other_groups": other.count,
            "letters": letters,
            "bad_lines": bad,
            "bad_line_count": bad_count,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for b in &bad {
        eprintln!(
            "warning: {}:{}: (byte {}) not a dead letter: {}",
            file.display(),
            b.line,
            b.offset,
            b.error
        );
    }
    if bad_count > bad.len() as u64 {
        eprintln!(
            "warning: ... and {} more line(s) that are not dead letters",
            bad_count - bad.len() as u64
        );
    }
    println!(
        "{total} dead letter(s) in {}{}",
        file.display(),
        if groups.is_empty() { "" } else { ":" }
    );
    if !groups.is_empty() {
        let rows: Vec<[String; 5]> = groups
            .iter()
            .map(|((kind, stage, plugin, version), g)| {
                let plugin = match (plugin.as_str(), version.as_str()) {
                    ("", _) => "-".to_string(),
                    (p, "") => p.to_string(),
                    (p, v) => format!("{p} v{v}"),
                };
                [
                    g.count.to_string(),
                    kind.clone(),
                    stage.clone(),
                    g.replayed.to_string(),
                    plugin,
                ]
            })
            .collect();
        print_table(&["COUNT", "KIND", "STAGE", "REPLAYED", "PLUGIN"], &rows);
        if other.count > 0 {
            println!(
                "  ... {} more in groups past the first {MAX_GROUPS}",
                other.count
            );
        }
    }
    if !listed.is_empty() {
        println!();
        let rows: Vec<[String; 5]> = listed
            .iter()
            .map(|(l, r)| {
                [
                    l.id.clone(),
                    l.kind.clone(),
                    l.stage.clone(),
                    r.clone().unwrap_or_else(|| "-".into()),
                    one_line(&l.reason, 80),
                ]
            })
            .collect();
        print_table(&["ID", "KIND", "STAGE", "REPLAYED", "REASON"], &rows);
        if total > listed.len() as u64 {
            println!("  ... {} more (--limit N)", total - listed.len() as u64);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Columns padded to their widest cell; the last one is not padded.
fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut widths = head.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push(' ');
                out.push_str(c);
            } else {
                out.push_str(&format!(" {c:<w$}", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `text` on one line, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn show(p: &Pipeline, id: &str, as_json: bool) -> Result<ExitCode> {
    let file = dead_letter_file(p)?;
    let letter = store::find(&file, id)?;
    let ledger = Ledger::load(&ledger::path(&p.state_dir()))?;
    let record = ledger.letters.get(&letter.digest);
    if as_json {
        let mut v = letter.to_json();
        if let Value::Object(o) = &mut v {
            o.remove("line");
            o.insert("replayed".into(), json!(record));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    println!("id:          {}", letter.id);
    println!("file:        {} (byte {})", file.display(), letter.offset);
    println!("kind:        {}", letter.kind);
    println!("reason:      {}", letter.reason);
    println!("refused by:  {}", dash(&letter.stage));
    println!("plugin:      {}", dash(&letter.plugin));
    println!("version:     {}", dash(&letter.version));
    let origin = if letter.origin == replay::ORIGIN {
        format!(
            "a replay of the letter that was at byte {} (dlq replay)",
            letter.position
        )
    } else {
        format!("source `{}`, position {}", letter.origin, letter.position)
    };
    println!("origin:      {origin}");
    println!(
        "refused at:  {}",
        letter
            .time_ms
            .map_or_else(|| "unknown (no sluice.error.time)".into(), store::utc)
    );
    if letter.timestamp_ms == 0 {
        println!("event time:  none (the source set none)");
    } else {
        println!(
            "event time:  {} ({} ms)",
            store::utc(letter.timestamp_ms),
            letter.timestamp_ms
        );
    }
    let replayed = match record {
        None => "no".to_string(),
        Some(r) => {
            let mut s = format!("run {}, into `{}`: {}", r.run, r.to, r.outcome);
            if !r.sinks.is_empty() {
                s.push_str(&format!(" (to {})", r.sinks.join(", ")));
            }
            if let Some(new) = &r.new_id {
                s.push_str(&format!(", now dead letter {new}"));
            }
            if let Some(reason) = &r.reason {
                s.push_str(&format!(": {reason}"));
            }
            s
        }
    };
    println!("replayed:    {replayed}");
    println!("key:         {}", letter.key);
    println!("headers:     {}", Value::Object(letter.headers.clone()));
    println!(
        "value:\n{}",
        serde_json::to_string_pretty(&letter.value).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_replay(
    report: &replay::ReplayReport,
    dry_run: bool,
    limit: usize,
    as_json: bool,
) -> Result<ExitCode> {
    for note in &report.recovered {
        eprintln!("note: {note}");
    }
    if report.bad_lines > 0 {
        eprintln!(
            "warning: {} line(s) of the dead-letter file are not dead letters (see `sluice dlq ls`); skipped",
            report.bad_lines
        );
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let planned: u64 = report.planned.values().sum();
    let targets: Vec<String> = report
        .planned
        .iter()
        .map(|(t, n)| format!("{n} into `{t}`"))
        .collect();
    if planned == 0 {
        println!("nothing to replay");
    } else if dry_run {
        println!("would replay {planned} letter(s): {}", targets.join(", "));
    } else {
        println!(
            "replay run {}: {planned} letter(s): {}",
            report.run,
            targets.join(", ")
        );
        for (outcome, n) in &report.outcomes {
            println!("  {outcome:<14} {n}");
        }
    }
    if report.already_replayed > 0 {
        println!(
            "  {} selected letter(s) were replayed before; skipped",
            report.already_replayed
        );
    }
    for (why, n) in &report.not_replayable {
        println!("  {n} not replayable: {why}");
    }
    for r in report.letters.iter().take(limit) {
        let mut line = format!("{} -> {}: {}", r.id, r.to, r.outcome);
        if !r.sinks.is_empty() {
            line.push_str(&format!(" ({})", r.sinks.join(", ")));
        }
        if let Some(new) = &r.new_id {
            line.push_str(&format!(" as {new}"));
        }
        if let Some(reason) = &r.reason {
            line.push_str(&format!(": {}", one_line(reason, 80)));
        }
        println!("{line}");
    }
    if limit > 0 && report.letters.len() > limit {
        println!(
            "  ... {} more (--limit N, or --json)",
            report.letters.len() - limit
        );
    }
    Ok(ExitCode::SUCCESS)
}
