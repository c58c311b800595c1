//! A served pipeline's dead letters for its tenant (`GET
//! /v1/pipelines/NAME/dead-letters`): the same store `sluice dlq ls` reads,
//! paged by byte offset.
//!
//! Only what the last checkpoint covers is shown: letters after it may still
//! be cut off by a rerun (which truncates the file to the checkpointed
//! length), and a line the sink is writing may be half there. Every request
//! is bounded three ways, whatever the file holds or the caller asks: lines
//! scanned ([`MAX_SCAN_BYTES`]), letters returned (`limit`, at most
//! [`MAX_PAGE`]) and bytes returned ([`MAX_PAGE_BYTES`]); a letter longer
//! than [`MAX_LETTER_BYTES`] is listed under `bad_lines` rather than read.
//! `next` says where to go on.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::Server;
use crate::dlq::ledger::{self, Ledger};
use crate::dlq::select::Selection;
use crate::dlq::store::{self, Item};
use crate::state::CheckpointStore;

/// Most letters one page holds.
pub const MAX_PAGE: u64 = 500;
/// Letters a page holds unless `limit` says otherwise.
pub const DEFAULT_PAGE: u64 = 50;
/// Bytes of the file one request reads at most; a selective filter over a
/// large file therefore takes several pages, each bounded.
pub const MAX_SCAN_BYTES: u64 = 16 << 20;
/// Bytes of letters (as stored) one page returns at most; the first letter
/// is always returned so that a page makes progress.
pub const MAX_PAGE_BYTES: u64 = 4 << 20;
/// Longest letter returned; longer ones are listed with their offset and
/// length under `bad_lines` (`sluice dlq show` on the server reads them).
pub const MAX_LETTER_BYTES: usize = 1 << 20;
/// Longest `filter` expression accepted.
pub const MAX_FILTER_CHARS: usize = 1_000;

/// What the query string asks for.
#[derive(Debug, Default)]
pub struct Query {
    /// Byte offset to read from: 0 or a previous page's `next`.
    pub after: u64,
    /// Letters wanted.
    pub limit: u64,
    /// The selection, as `sluice dlq ls` takes it.
    pub kind: Option<String>,
    /// `sluice.error.stage` equals this.
    pub stage: Option<String>,
    /// Plugin name, hash or version contains this.
    pub plugin: Option<String>,
    /// An expression over the letter, as `--filter` takes it.
    pub filter: Option<String>,
}

impl Query {
    /// From the request's query parameters; unknown ones are refused, so a
    /// misspelt filter does not silently select everything.
    pub fn parse(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        const KNOWN: [&str; 6] = ["after", "limit", "kind", "stage", "plugin", "filter"];
        if let Some(unknown) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter `{}`; expected one of {}",
                unknown.escape_debug(),
                KNOWN.join(", ")
            )));
        }
        let number = |name: &str, default: u64| super::api::whole_number(q, name, default);
        let filter = q.get("filter").cloned();
        if filter
            .as_ref()
            .is_some_and(|f| f.chars().count() > MAX_FILTER_CHARS)
        {
            return Err(ApiError::BadRequest(format!(
                "`filter` is longer than {MAX_FILTER_CHARS} characters"
            )));
        }
        Ok(Self {
            after: number("after", 0)?,
            limit: number("limit", DEFAULT_PAGE)?.clamp(1, MAX_PAGE),
            kind: q.get("kind").cloned(),
            stage: q.get("stage").cloned(),
            plugin: q.get("plugin").cloned(),
            filter,
        })
    }

    fn selection(&self) -> Result<Selection, ApiError> {
        let filter = self
            .filter
            .as_deref()
            .map(|f| {
                sluice_expr::Expr::parse(f).map_err(|e| {
                    ApiError::BadRequest(format!(
                        "`filter`: {} at column {}",
                        e.message(),
                        e.column()
                    ))
                })
            })
            .transpose()?;
        Ok(Selection {
            kind: self.kind.clone(),
            stage: self.stage.clone(),
            plugin: self.plugin.clone(),
            filter,
        })
    }
}

/// `after` must start a line: an offset from before a purge rewrote the
/// file, or a made-up one, would otherwise read half a letter.
fn starts_a_line(file: &Path, at: u64) -> Result<bool, ApiError> {
    if at == 0 {
        return Ok(true);
    }
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(at - 1))
        .and_then(|_| f.read_exact(&mut byte))
        .map_err(anyhow::Error::from)?;
    Ok(byte[0] == b'\n')
}

/// One page of `file`'s dead letters from `q.after`, up to `end` bytes.
pub fn page(file: &Path, end: u64, replayed: &Ledger, q: &Query) -> Result<Value, ApiError> {
    let selection = q.selection()?;
    if q.after > end {
        return Err(ApiError::Conflict(format!(
            "`after` {} is past the {end} bytes the last checkpoint covers",
            q.after
        )));
    }
    if !starts_a_line(file, q.after)? {
        return Err(ApiError::Conflict(format!(
            "`after` {} does not start a dead letter (pass 0 or a page's `next`; the file may have been purged since)",
            q.after
        )));
    }
    let mut letters: Vec<Value> = Vec::new();
    let mut bad: Vec<store::BadLine> = Vec::new();
    let (mut next, mut returned_bytes) = (q.after, 0u64);
    let mut scanned = 0u64;
    store::scan_with_cap(file, q.after, Some(end), MAX_LETTER_BYTES, |item| {
        let (offset, len) = match &item {
            Item::Letter(l) => (l.offset, l.len),
            Item::Bad(b) => (b.offset, b.len),
        };
        let full = letters.len() as u64 >= q.limit
            || (!letters.is_empty() && returned_bytes + len > MAX_PAGE_BYTES)
            || (scanned > 0 && scanned + len > MAX_SCAN_BYTES);
        if full {
            return Ok(false);
        }
        scanned += len;
        next = offset + len;
        match item {
            Item::Bad(b) => {
                if bad.len() < MAX_PAGE as usize {
                    bad.push(b);
                }
            }
            Item::Letter(l) => {
                let outcome = replayed.outcome(&l.digest).map(str::to_string);
                if selection.matches(&l, outcome.as_deref()) {
                    let mut v = l.to_json();
                    if let Value::Object(o) = &mut v {
                        // Line numbers would count from `after`, not the
                        // file's start: the offset is what identifies it.
                        o.remove("line");
                        o.insert("replayed".into(), json!(outcome));
                    }
                    returned_bytes += len;
                    letters.push(v);
                }
            }
        }
        Ok(true)
    })?;
    Ok(json!({
        "letters": letters,
        "bad_lines": bad,
        "next": next,
        "end": end,
        "complete": next >= end,
    }))
}

/// `GET /v1/pipelines/NAME/dead-letters`.
/// A pipeline that is not the caller's is a 404 whatever the query says.
pub fn list(s: &Server, tenant: &str, name: &str, q: Result<Query, ApiError>) -> ApiResult {
    let rec = s
        .store
        .pipeline(tenant, name)?
        .ok_or_else(|| ApiError::NotFound(format!("no pipeline `{}`", name.escape_debug())))?;
    let q = &q?;
    // The stored file as it is checked now, so the dead-letter path is still
    // inside the tenant's area under today's policy.
    let prepared = super::pipelines::prepare(s, tenant, Some(&rec.name), &rec.yaml)?;
    let pipeline = prepared.pipeline;
    let file = crate::dlq::dead_letter_file(&pipeline)
        .map_err(|e| ApiError::Conflict(format!("{e:#}")))?;
    let end = CheckpointStore::new(&pipeline.state_dir())
        .load()
        .map_err(|e| ApiError::Conflict(format!("{e:#}")))?
        .as_ref()
        .and_then(crate::dlq::checkpointed_len)
        .unwrap_or(0);
    let replayed = Ledger::load(&ledger::path(&pipeline.state_dir()))
        .map_err(|e| ApiError::Conflict(format!("{e:#}")))?;
    let mut body = page(&file, end, &replayed, q)?;
    // The tenant knows paths relative to its own area: a reason naming an
    // input file does not show where the server keeps tenants.
    let area = format!("{}/", s.tenant_dir(tenant).display());
    if let Value::Object(o) = &mut body {
        for letter in o
            .get_mut("letters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(Value::String(reason)) = letter.get_mut("reason") {
                *reason = reason.replace(&area, "");
                // Struck with the secrets the run last used and with the
                // connections' secrets as they are now: a pipeline that has
                // not run since the server started has no run to ask.
                let run = super::logs::store().scrub(&super::store::key(tenant, name), reason);
                *reason = super::logs::strike(&run, &prepared.secrets);
            }
        }
        let shown = file.display().to_string().replace(&area, "");
        o.insert("file".into(), json!(shown));
    }
    Ok((StatusCode::OK, Json(body)))
}

/// What `POST .../dead-letters/replay` and `.../purge` are asked to do: the
/// browse selection (no `after` or `limit`), and each action's own switches.
#[derive(Debug, Default)]
pub struct Action {
    /// Which letters, as for browsing.
    pub select: Query,
    /// Replay: send every letter into this stage or sink.
    pub to: Option<String>,
    /// Only count what would be done.
    pub dry_run: bool,
    /// Purge: only letters replayed before.
    pub replayed: bool,
    /// Purge: every letter (a purge must say which).
    pub all: bool,
}

impl Action {
    /// From the query string; `known` are the switches the action takes
    /// besides the selection. Unknown parameters are refused by name.
    pub fn parse(q: &HashMap<String, String>, known: &[&str]) -> Result<Self, ApiError> {
        const SELECTION: [&str; 4] = ["kind", "stage", "plugin", "filter"];
        if let Some(unknown) = q
            .keys()
            .find(|k| !SELECTION.contains(&k.as_str()) && !known.contains(&k.as_str()))
        {
            let mut all: Vec<&str> = SELECTION.to_vec();
            all.extend_from_slice(known);
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter `{}`; expected one of {}",
                unknown.escape_debug(),
                all.join(", ")
            )));
        }
        let flag = |name: &str| match q.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::BadRequest(format!(
                "`{name}` is `true` or `false`"
            ))),
        };
        let selection: HashMap<String, String> = q
            .iter()
            .filter(|(k, _)| SELECTION.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let select = Query::parse(&selection)?;
        // The expression is checked now, so a bad one is a 400 whatever the
        // pipeline's state.
        select.selection()?;
        Ok(Self {
            select,
            to: q.get("to").cloned(),
            dry_run: flag("dry_run")?,
            replayed: flag("replayed")?,
            all: flag("all")?,
        })
    }
}

/// Most replayed letters an answer lists one by one; the counts cover all.
pub const MAX_REPORTED_LETTERS: usize = 500;

/// The pipeline as it is stored and checked now, for an action that writes
/// its dead letters: 404 for another tenant's, 409 while it runs (the run
/// holds its state; replay and purge would race it).
fn idle_pipeline(
    s: &Server,
    tenant: &str,
    name: &str,
) -> Result<super::pipelines::Prepared, ApiError> {
    let rec = s
        .store
        .pipeline(tenant, name)?
        .ok_or_else(|| ApiError::NotFound(format!("no pipeline `{}`", name.escape_debug())))?;
    if s.supervisor.is_live(&super::store::key(tenant, name)) {
        return Err(ApiError::Conflict(format!(
            "pipeline `{name}` is running; stop it first (POST /v1/pipelines/{name}/stop), then replay or purge, then start it"
        )));
    }
    super::pipelines::prepare(s, tenant, Some(&rec.name), &rec.yaml)
}

/// A `dlq` error as the tenant sees it: a conflict with the pipeline's
/// state, with paths relative to its own area.
fn conflict(s: &Server, tenant: &str, e: anyhow::Error) -> ApiError {
    let area = format!("{}/", s.tenant_dir(tenant).display());
    ApiError::Conflict(format!("{e:#}").replace(&area, ""))
}

/// `POST /v1/pipelines/NAME/dead-letters/replay`: `sluice dlq replay` for a
/// stopped (or finished, or failed) pipeline. Each letter goes through at
/// most once, however often this is called (the replay ledger says which
/// went already); the answer counts outcomes and lists at most
/// [`MAX_REPORTED_LETTERS`] letters.
pub fn replay(s: &Server, tenant: &str, name: &str, a: Result<Action, ApiError>) -> ApiResult {
    let prepared = idle_pipeline(s, tenant, name)?;
    let pipeline = &prepared.pipeline;
    let a = a?;
    // A wrong `to` is the request's mistake (400), not a conflict with the
    // pipeline's state.
    if let Some(to) = &a.to {
        let mut names: Vec<&str> = pipeline
            .stages
            .iter()
            .map(|st| st.name.as_str())
            .chain(pipeline.sinks.iter().map(|sk| sk.name.as_str()))
            .collect();
        if !names.contains(&to.as_str()) {
            names.sort_unstable();
            return Err(ApiError::BadRequest(format!(
                "`to`: pipeline `{name}` has no stage or sink `{}`; it has {}",
                to.escape_debug(),
                names.join(", ")
            )));
        }
    }
    let report = crate::dlq::replay::replay(
        pipeline,
        &s.engine,
        &s.cache,
        crate::dlq::replay::ReplayArgs {
            selection: a.select.selection()?,
            filter_text: a.select.filter.clone(),
            to: a.to,
            dry_run: a.dry_run,
            stop: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            on_status: None,
        },
    )
    .map_err(|e| conflict(s, tenant, e))?;
    let listed = report.letters.len();
    let mut v = serde_json::to_value(&report).map_err(anyhow::Error::from)?;
    if let Some(letters) = v.get_mut("letters").and_then(Value::as_array_mut) {
        letters.truncate(MAX_REPORTED_LETTERS);
    }
    v["letters_listed"] = json!(listed.min(MAX_REPORTED_LETTERS));
    v["letters_total"] = json!(listed);
    let area = format!("{}/", s.tenant_dir(tenant).display());
    // Outcomes quote reasons, which may quote a connection's secret.
    let run = super::logs::store().scrub(
        &super::store::key(tenant, name),
        &v.to_string().replace(&area, ""),
    );
    let shown = super::logs::strike(&run, &prepared.secrets);
    Ok((
        StatusCode::OK,
        Json(serde_json::from_str(&shown).unwrap_or(v)),
    ))
}

/// `POST /v1/pipelines/NAME/dead-letters/purge`: `sluice dlq purge` for a
/// stopped pipeline. It must say which letters: a selection, `replayed`, or
/// `all=true`.
pub fn purge(s: &Server, tenant: &str, name: &str, a: Result<Action, ApiError>) -> ApiResult {
    let pipeline = idle_pipeline(s, tenant, name)?.pipeline;
    let a = a?;
    let q = &a.select;
    let chosen = q.kind.is_some() || q.stage.is_some() || q.plugin.is_some() || q.filter.is_some();
    if !chosen && !a.replayed && !a.all {
        return Err(ApiError::BadRequest(
            "say which letters to purge: `replayed=true`, `kind`/`stage`/`plugin`/`filter`, or `all=true`".into(),
        ));
    }
    let report = crate::dlq::purge::purge(&pipeline, &q.selection()?, a.replayed, a.dry_run)
        .map_err(|e| conflict(s, tenant, e))?;
    Ok((StatusCode::OK, Json(json!(report))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(i: usize, stage: &str, pad: usize) -> String {
        let value = json!({"n": i, "pad": "x".repeat(pad)});
        let line = json!({
            "key": null, "value": value, "timestamp": 0,
            "headers": {
                "sluice.error.kind": "refused", "sluice.error.message": format!("bad {i}"),
                "sluice.error.stage": stage, "sluice.origin": "in",
                "sluice.position": i.to_string(),
            },
        });
        format!("{line}\n")
    }

    fn query(pairs: &[(&str, &str)]) -> Result<Query, ApiError> {
        Query::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn numbers(page: &Value) -> Vec<i64> {
        page["letters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["value"]["n"].as_i64())
            .collect()
    }

    #[test]
    fn pages_follow_next_up_to_the_checkpointed_length_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dl.jsonl");
        let text: String = (0..7).map(|i| letter(i, "tag", 0)).collect();
        let uncommitted = letter(7, "tag", 0);
        std::fs::write(&file, format!("{text}{uncommitted}")).expect("write");
        let end = text.len() as u64;
        let ledger = Ledger::default();
        let mut q = query(&[("limit", "3")]).expect("query");
        let mut seen = Vec::new();
        loop {
            let p = page(&file, end, &ledger, &q).expect("page");
            assert!(p["letters"].as_array().is_some_and(|l| l.len() <= 3));
            seen.extend(numbers(&p));
            if p["complete"] == true {
                break;
            }
            q.after = p["next"].as_u64().expect("next");
        }
        assert_eq!(
            seen,
            (0..7).collect::<Vec<_>>(),
            "the uncommitted 8th is not shown"
        );
    }

    #[test]
    fn a_selection_filters_and_bad_parameters_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dl.jsonl");
        let text: String = (0..6)
            .map(|i| letter(i, if i % 2 == 0 { "even" } else { "odd" }, 0))
            .collect();
        std::fs::write(&file, &text).expect("write");
        let end = text.len() as u64;
        let ledger = Ledger::default();
        let p = page(&file, end, &ledger, &query(&[("stage", "odd")]).expect("q")).expect("page");
        assert_eq!(numbers(&p), vec![1, 3, 5]);
        let p = page(
            &file,
            end,
            &ledger,
            &query(&[("filter", "value.n >= 4")]).expect("q"),
        )
        .expect("page");
        assert_eq!(numbers(&p), vec![4, 5]);

        let refused = |pairs: &[(&str, &str)]| match query(pairs)
            .and_then(|q| page(&file, end, &ledger, &q))
        {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        };
        assert!(refused(&[("stagee", "odd")]).contains("unknown query parameter `stagee`"));
        assert!(refused(&[("after", "-1")]).contains("`after` is a whole number"));
        assert!(refused(&[("filter", "value.n >=")]).starts_with("`filter`: "));
        let long = "a".repeat(MAX_FILTER_CHARS + 1);
        assert!(refused(&[("filter", long.as_str())]).contains("longer than 1000"));
        // Offsets that do not fit the file as it is now conflict with it.
        let conflict = |after: u64| match page(
            &file,
            end,
            &ledger,
            &Query {
                after,
                ..query(&[]).expect("q")
            },
        ) {
            Err(ApiError::Conflict(m)) => m,
            other => panic!("expected a 409, got {other:?}"),
        };
        assert!(conflict(5).contains("does not start a dead letter"));
        assert!(conflict(end + 1).contains("past the"));
    }

    #[test]
    fn pages_are_bounded_in_letters_bytes_and_scan_and_huge_letters_are_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dl.jsonl");
        let mut text = letter(0, "s", MAX_LETTER_BYTES + 10);
        // 900 KiB letters: four fit in a page's 4 MiB, a fifth does not.
        for i in 1..7 {
            text.push_str(&letter(i, "s", 900 << 10));
        }
        std::fs::write(&file, &text).expect("write");
        let end = text.len() as u64;
        let ledger = Ledger::default();
        let q = query(&[("limit", "100000")]).expect("q");
        assert_eq!(q.limit, MAX_PAGE);
        let p = page(&file, end, &ledger, &q).expect("page");
        assert_eq!(p["bad_lines"][0]["offset"], 0, "{:#}", p["bad_lines"]);
        assert_eq!(p["bad_lines"].as_array().map(Vec::len), Some(1));
        assert_eq!(numbers(&p), vec![1, 2, 3, 4], "4 MiB of letters per page");
        let q = Query {
            after: p["next"].as_u64().expect("next"),
            ..query(&[]).expect("q")
        };
        let p = page(&file, end, &ledger, &q).expect("page");
        assert_eq!(numbers(&p), vec![5, 6]);
        assert_eq!(p["complete"], true);

        // A filter that selects nothing still stops after MAX_SCAN_BYTES.
        let small: String = (0..40_000).map(|i| letter(i, "s", 500)).collect();
        std::fs::write(&file, &small).expect("write");
        let p = page(
            &file,
            small.len() as u64,
            &ledger,
            &query(&[("stage", "none")]).expect("q"),
        )
        .expect("page");
        let next = p["next"].as_u64().expect("next");
        assert!(
            next <= MAX_SCAN_BYTES && next > MAX_SCAN_BYTES - 1024,
            "{next}"
        );
        assert_eq!(p["complete"], false);
    }
}
