//! Reading a dead-letter file (the `envelope` format, one JSON object per
//! line) as a stream of [`Letter`]s, each with a stable ID.
//!
//! The file may be large and may hold anything (it is raw refused input, and
//! anyone who could write the data directory could have edited it), so it is
//! read one line at a time with a cap on the line's length: memory stays
//! bounded by [`MAX_LINE`] whatever the file holds, and a line that is not a
//! dead letter is reported with its number, never a panic.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::pipeline::dead_letter::headers;

/// The longest line read as a dead letter; longer ones are reported and
/// skipped without being held in memory.
pub const MAX_LINE: usize = 64 << 20;

/// One dead letter as read from the file.
#[derive(Debug, Clone)]
pub struct Letter {
    /// `OFFSET-HASH`: where its line starts in the file and the first 3
    /// bytes of the line's SHA-256, so an ID from before the file was
    /// rewritten (a purge) is refused rather than naming another letter.
    pub id: String,
    /// Byte offset of its line.
    pub offset: u64,
    /// 1-based line number.
    pub line: u64,
    /// Bytes of its line, newline included.
    pub len: u64,
    /// SHA-256 prefix of the line (16 hex digits): the replay ledger's key,
    /// which survives a purge moving the line.
    pub digest: String,
    /// `sluice.error.kind`.
    pub kind: String,
    /// `sluice.error.message`.
    pub reason: String,
    /// `sluice.error.stage`: the stage, sink or source that refused it.
    pub stage: String,
    /// `sluice.error.plugin` (empty for sources and sinks).
    pub plugin: String,
    /// `sluice.error.plugin_version`.
    pub version: String,
    /// `sluice.origin`: the source it came from.
    pub origin: String,
    /// `sluice.position` within that source.
    pub position: String,
    /// `sluice.error.time`, when it was refused (files written before that
    /// header existed have none).
    pub time_ms: Option<i64>,
    /// The event's own time.
    pub timestamp_ms: i64,
    /// The event's key (JSON, or a string for bytes that were not JSON).
    pub key: Value,
    /// The event's value. JSON that a `Value` cannot hold (a number past
    /// f64) is its text, as a string.
    pub value: Value,
    /// The key's JSON text exactly as the line has it (empty: none).
    pub key_text: String,
    /// The value's JSON text exactly as the line has it (empty: none): what
    /// a replay sends, so numbers, key order and spacing come back as they
    /// were.
    pub value_text: String,
    /// The event's own headers (the host's `sluice.error.*`, origin and
    /// position taken out).
    pub headers: Map<String, Value>,
}

/// The headers the host adds to a dead letter: taken out of
/// [`Letter::headers`], and off the event when it is replayed.
pub const HOST_HEADERS: [&str; 8] = [
    headers::KIND,
    headers::MESSAGE,
    headers::STAGE,
    headers::PLUGIN,
    headers::PLUGIN_VERSION,
    headers::ORIGIN,
    headers::POSITION,
    headers::TIME,
];

impl Letter {
    /// What `--filter` expressions and `--json` see.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "offset": self.offset,
            "line": self.line,
            "kind": self.kind,
            "reason": self.reason,
            "stage": self.stage,
            "plugin": self.plugin,
            "plugin_version": self.version,
            "origin": self.origin,
            "position": self.position,
            "time_ms": self.time_ms,
            "timestamp_ms": self.timestamp_ms,
            "key": self.key,
            "value": self.value,
            "headers": self.headers,
        })
    }
}

/// A line that is not a dead letter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset.
    pub offset: u64,
    /// Bytes of the line, newline included.
    pub len: u64,
    /// What is wrong with it.
    pub error: String,
}

/// One item of the stream.
pub enum Item {
    /// A dead letter.
    Letter(Box<Letter>),
    /// A line that could not be read as one.
    Bad(BadLine),
}

/// Reads the dead letters of `path` from byte `start` (a line start) up to
/// byte `end` (or the end of the file), calling `f` on each until it
/// returns `false`. A missing file reads as empty.
pub fn scan(
    path: &Path,
    start: u64,
    end: Option<u64>,
    f: impl FnMut(Item) -> Result<bool>,
) -> Result<()> {
    scan_capped(path, start, end, MAX_LINE, f)
}

/// [`scan`] with a smaller cap on a line's length: lines longer than `cap`
/// come as [`Item::Bad`] without being held in memory (the server's API
/// returns letters up to a size it can send).
pub fn scan_with_cap(
    path: &Path,
    start: u64,
    end: Option<u64>,
    cap: usize,
    f: impl FnMut(Item) -> Result<bool>,
) -> Result<()> {
    scan_capped(path, start, end, cap.min(MAX_LINE), f)
}

fn scan_capped(
    path: &Path,
    start: u64,
    end: Option<u64>,
    cap: usize,
    mut f: impl FnMut(Item) -> Result<bool>,
) -> Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut r = BufReader::with_capacity(1 << 16, file);
    r.seek(SeekFrom::Start(start))?;
    let mut offset = start;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        if end.is_some_and(|e| offset >= e) {
            return Ok(());
        }
        buf.clear();
        let (read, complete) = read_line_capped(&mut r, &mut buf, cap)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            return Ok(());
        }
        line_no += 1;
        let at = offset;
        offset += read;
        let item = if !complete {
            Item::Bad(BadLine {
                line: line_no,
                offset: at,
                len: read,
                error: format!("longer than {cap} bytes; skipped"),
            })
        } else if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            match parse(&buf, at, line_no) {
                Ok(l) => Item::Letter(Box::new(Letter { len: read, ..l })),
                Err(error) => Item::Bad(BadLine {
                    line: line_no,
                    offset: at,
                    len: read,
                    error,
                }),
            }
        };
        if !f(item)? {
            return Ok(());
        }
    }
}

/// Reads one line (newline included) into `buf`, keeping at most `cap`
/// bytes of it: returns the bytes consumed and whether the line fitted.
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> Result<(u64, bool)> {
    let mut consumed = 0u64;
    let mut fits = true;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, fits));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if fits && buf.len() + take <= cap {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            fits = false;
            buf.clear();
        }
        r.consume(take);
        consumed += take as u64;
        if done {
            return Ok((consumed, fits));
        }
    }
}

/// Reads files letter by letter at given offsets, keeping its buffer
/// when they follow each other (a replay reads its plan in file order).
pub struct Reader {
    r: BufReader<File>,
    at: u64,
    buf: Vec<u8>,
}

impl Reader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            r: BufReader::with_capacity(1 << 16, file),
            at: 0,
            buf: Vec::new(),
        })
    }

    /// The letter whose line starts at `offset`, or why there is none.
    pub fn read_at(&mut self, offset: u64) -> Result<Result<Letter, String>> {
        if offset != self.at {
            let delta = i64::try_from(offset).unwrap_or(i64::MAX)
                - i64::try_from(self.at).unwrap_or(i64::MAX);
            self.r.seek_relative(delta)?;
        }
        self.buf.clear();
        let (read, complete) = read_line_capped(&mut self.r, &mut self.buf, MAX_LINE)?;
        self.at = offset + read;
        if read == 0 {
            return Ok(Err(format!("byte {offset} is past the end of the file")));
        }
        if !complete {
            return Ok(Err(format!("the line at byte {offset} is too long")));
        }
        Ok(parse(&self.buf, offset, 0).map(|l| Letter { len: read, ..l }))
    }
}

/// The SHA-256 of a line (without its newline), in hex.
fn digest(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    hex::encode(&Sha256::digest(line)[..8])
}

/// The ID of the letter whose line starts at `offset` with `digest`.
pub fn id_of(offset: u64, digest: &str) -> String {
    format!("{offset}-{}", &digest[..6.min(digest.len())])
}

/// Parses one line of the envelope format.
fn parse(line: &[u8], offset: u64, line_no: u64) -> Result<Letter, String> {
    use serde_json::value::RawValue;
    // Each field as its text first: a value a `Value` cannot hold (a number
    // past f64, the kind of event that becomes a dead letter) is still a
    // letter, and its bytes are kept for a replay.
    let whole: &RawValue = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let mut o: Map<String, Value> = Map::new();
    let mut text: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let fields: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_str(whole.get()).map_err(|_| "not a JSON object".to_string())?;
    for (name, raw) in fields {
        let v = serde_json::from_str(raw.get())
            .unwrap_or_else(|_| Value::String(raw.get().to_string()));
        text.insert(name.clone(), raw.get().to_string());
        o.insert(name, v);
    }
    let mut text_of = |name: &str| match o.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(_) => text.remove(name).unwrap_or_default(),
    };
    let key_text = text_of("key");
    let value_text = text_of("value");
    let Some(Value::Object(mut hs)) = o.remove("headers") else {
        return Err("no `headers` object: not a dead letter in the envelope format".into());
    };
    let mut take = |name: &str| match hs.remove(name) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let kind = take(headers::KIND);
    if kind.is_empty() {
        return Err(format!("no `{}` header: not a dead letter", headers::KIND));
    }
    let reason = take(headers::MESSAGE);
    let stage = take(headers::STAGE);
    let plugin = take(headers::PLUGIN);
    let version = take(headers::PLUGIN_VERSION);
    let origin = take(headers::ORIGIN);
    let position = take(headers::POSITION);
    let time_ms = take(headers::TIME).parse().ok();
    let timestamp_ms = o.get("timestamp_ms").and_then(Value::as_i64).unwrap_or(0);
    let d = digest(line);
    Ok(Letter {
        id: id_of(offset, &d),
        offset,
        line: line_no,
        len: line.len() as u64,
        digest: d,
        kind,
        reason,
        stage,
        plugin,
        version,
        origin,
        position,
        time_ms,
        timestamp_ms,
        key: o.remove("key").unwrap_or(Value::Null),
        value: o.remove("value").unwrap_or(Value::Null),
        key_text,
        value_text,
        headers: hs,
    })
}

/// The letter `id` names, read at its offset; an error saying why not when
/// the ID is malformed, past the end, or its hash does not match (the file
/// was rewritten since).
pub fn find(path: &Path, id: &str) -> Result<Letter> {
    let (offset, hash) = id
        .split_once('-')
        .and_then(|(o, h)| Some((o.parse::<u64>().ok()?, h)))
        .with_context(|| {
            format!("`{id}` is not a dead-letter ID (OFFSET-HASH, as `sluice dlq ls` prints)")
        })?;
    let missing = || {
        anyhow::anyhow!(
            "no dead letter {id} in {}: the file was rewritten (purged) since, or the ID is wrong; `sluice dlq ls` lists the current IDs",
            path.display()
        )
    };
    if offset > 0 && !line_starts_at(path, offset)? {
        return Err(missing());
    }
    let mut found = None;
    scan(path, offset, None, |item| {
        found = Some(item);
        Ok(false)
    })?;
    match found {
        Some(Item::Letter(l)) if l.digest.starts_with(hash) && !hash.is_empty() => {
            // Line numbers count from where the scan started.
            Ok(Letter { line: 0, ..*l })
        }
        Some(Item::Bad(b)) if b.offset == offset => {
            anyhow::bail!(
                "the line at byte {offset} is not a dead letter: {}",
                b.error
            )
        }
        _ => Err(missing()),
    }
}

/// Whether a line starts at byte `offset` (> 0) of `path`.
fn line_starts_at(path: &Path, offset: u64) -> Result<bool> {
    use std::io::Read;
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    f.seek(SeekFrom::Start(offset - 1))?;
    let mut byte = [0u8];
    Ok(f.read(&mut byte)? == 1 && byte[0] == b'\n')
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = crate::format::time::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn letter(n: u32, kind: &str) -> String {
        format!(
            r#"{{"key":null,"value":{{"n":{n}}},"headers":{{"colour":"red","sluice.error.kind":"{kind}","sluice.error.message":"bad {n}","sluice.error.stage":"s","sluice.error.plugin":"p","sluice.error.plugin_version":"1","sluice.origin":"in","sluice.position":"{n}","sluice.error.time":"1700000000000"}},"timestamp_ms":5}}"#
        )
    }

    fn collect(path: &Path) -> (Vec<Letter>, Vec<BadLine>) {
        collect_capped(path, MAX_LINE)
    }

    fn collect_capped(path: &Path, cap: usize) -> (Vec<Letter>, Vec<BadLine>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        scan_capped(path, 0, None, cap, |i| {
            match i {
                Item::Letter(l) => good.push(*l),
                Item::Bad(b) => bad.push(b),
            }
            Ok(true)
        })
        .expect("scan");
        (good, bad)
    }

    #[test]
    fn a_value_no_json_tree_can_hold_is_a_letter_with_its_exact_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.jsonl");
        // A number past f64, a float written with a trailing zero, a
        // duplicate key, a space and an integer past u64: a re-serialized
        // value would lose each.
        let value = r#"{"z":1e400,"a":1.10,"a":2, "n":123456789012345678901234567890}"#;
        let key = r#"{"id":18446744073709551616}"#;
        let line = format!(
            r#"{{"key":{key},"value":{value},"headers":{{"sluice.error.kind":"rejected","sluice.error.message":"number out of range"}},"timestamp_ms":5}}"#
        );
        std::fs::write(&path, format!("{line}\n")).expect("write");
        let (good, bad) = collect(&path);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].value_text, value);
        assert_eq!(good[0].key_text, key);
        assert_eq!(good[0].reason, "number out of range");
        // Shown and filtered as its text.
        assert_eq!(good[0].value, Value::String(value.into()));
    }

    #[test]
    fn letters_have_ids_by_offset_and_hash_and_bad_lines_their_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.jsonl");
        let text = format!(
            "{}\nnot json\n{{\"headers\":{{}}}}\n\n{}\n[1]\n{}",
            letter(1, "rejected"),
            letter(2, "trap"),
            letter(3, "rejected") // no final newline: still read
        );
        std::fs::write(&path, &text).expect("write");
        let (good, bad) = collect(&path);
        assert_eq!(good.len(), 3);
        assert_eq!(good[0].offset, 0);
        let second_at = text.find(&letter(2, "trap")).expect("there") as u64;
        assert_eq!(good[1].offset, second_at);
        assert!(good[1].id.starts_with(&format!("{second_at}-")));
        assert_eq!(good[1].kind, "trap");
        assert_eq!(good[1].reason, "bad 2");
        assert_eq!(good[1].time_ms, Some(1_700_000_000_000));
        assert_eq!(good[1].value, serde_json::json!({"n": 2}));
        assert_eq!(
            good[1].headers.keys().collect::<Vec<_>>(),
            vec!["colour"],
            "host headers taken out"
        );
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 3, 6]);
        assert!(bad[0].error.starts_with("not JSON"), "{:?}", bad[0]);
        let again = find(&path, &good[1].id).expect("found by id");
        assert_eq!(again.value, good[1].value);
        let wrong = format!("{second_at}-ffffff");
        let err = format!("{:#}", find(&path, &wrong).expect_err("hash differs"));
        assert!(err.contains("rewritten"), "{err}");
        let err = format!("{:#}", find(&path, "banana").expect_err("not an ID"));
        assert!(err.contains("`banana` is not a dead-letter ID"), "{err}");
        let err = format!(
            "{:#}",
            find(&path, "999999-abcdef").expect_err("past the end")
        );
        assert!(err.contains("no dead letter 999999-abcdef in"), "{err}");
    }

    #[test]
    fn an_overlong_line_is_skipped_in_bounded_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.jsonl");
        let mut f = std::io::BufWriter::new(File::create(&path).expect("create"));
        // Ten times the cap, written in pieces smaller than the reader's
        // buffer, so the cap (not the buffer) is what bounds memory.
        let chunk = vec![b'x'; 1000];
        for _ in 0..100 {
            f.write_all(&chunk).expect("write");
        }
        writeln!(f).expect("newline");
        writeln!(f, "{}", letter(7, "rejected")).expect("write");
        drop(f);
        let (good, bad) = collect_capped(&path, 10_000);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 1);
        assert!(bad[0].error.contains("longer than"), "{:?}", bad[0]);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].line, 2);
    }

    #[test]
    fn utc_formats_milliseconds() {
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
