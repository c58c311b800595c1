//! `lookup-join`: a stream–table join, like ksqlDB's
//! `SELECT ... FROM orders LEFT JOIN customers_by_key c ON orders.customer_id = c.id`.
//!
//! Parameters:
//! - `table`: the table to look up (the stage must list it under `tables:`);
//! - `on`: the event's field whose value is the table key;
//! - `join`: `left` (default: unmatched events go on with the table's fields
//!   null) or `inner` (unmatched events are dropped);
//! - `fields`: the output, `[stream.|table.]field [as name]`, comma-separated
//!   (a bare field is the event's). Default: the event's fields plus the row
//!   under the table's name.
//! - `where`: a condition (the `filter` plugin's); events it does not keep
//!   are dropped before they are looked up.
//! - `set`: computed fields, `{name: EXPRESSION}` as in `project`, evaluated
//!   against the input event. A `fields` item naming one (`price_cents`, or
//!   `stream.price_cents`) takes its value, which hides an input field of
//!   that name; a `case` without `else` that matched nothing gives `null`.
//!   Needs `fields`.
//!
//! With `where` or `set`, a value that is not a JSON object (and that
//! `where` keeps) is rejected, as `project` rejects it.
//!
//! With `where` and `set`, one stage does what `project` then `lookup-join`
//! do (SQL compiles a join over a projection to it): events cross into Wasm
//! once, and the projected event is never written, scanned or read again.
//!
//! The row is the table's latest value for the key when the event is
//! processed. Output events keep the input's key and timestamp.

use serde_json::Value;
use sluice_expr::{Condition, SetField, Watch};
use sluice_sdk::abi::{CallError, RowAnswer, RowFields, Rows};
use sluice_sdk::json::{
    BatchViews, FieldSet, JsonKey, JsonParser, JsonView, Kind, ObjectWriter, Raw,
};
use sluice_sdk::select::Selection;
use sluice_sdk::{Emitter, Event, EventError, Host, Params, Processor};

/// The processor.
pub struct LookupJoin {
    table: String,
    on: String,
    /// Where `on` is among `event_set`'s names.
    on_at: usize,
    inner: bool,
    fields: Option<Selection>,
    /// `written[i]`: whether `fields` item `i` is written (a later item with
    /// the same output name wins, as a map insert would).
    written: Vec<bool>,
    /// The `fields` items' event fields and, last, `on`, found in one pass
    /// over the event; the items' row fields (`row_names`) the host finds.
    /// `slot[i]`: item `i`'s place among its source's names.
    event_set: FieldSet,
    slot: Vec<usize>,
    /// The `fields` items' output names, encoded once.
    keys_out: Vec<JsonKey>,
    /// `plain[i]`: `fields` item `i` is an event field under its own name,
    /// which can be copied with its neighbours as one slice.
    plain: Vec<bool>,
    found: Vec<Option<usize>>,
    /// What `prepare` found in each event (`event_set`'s names, end to end)
    /// and, per event, where its answer starts, so that `process` does not
    /// search the event again.
    found_in_batch: Vec<Option<usize>>,
    /// Per event: where its answer starts in `found_in_batch`, and the
    /// shape number of its keys ([`FieldSet::last_shape`]).
    found_at: Vec<Option<(usize, u64)>>,
    /// What goes out for events of one key shape ([`Write`]s), and the
    /// shape it was worked out for.
    writes: Vec<Write>,
    planned_for: Option<u64>,
    parser: JsonParser,
    row_parser: JsonParser,
    /// The batch's events as `prepare` scanned them, so that `process`
    /// does not scan them again.
    views: BatchViews,
    /// The batch's rows, fetched in one host call by `prepare`: whole
    /// when there is no `fields` (the row is written whole), else only the
    /// values of the row fields `fields` names (`row_names`, in slot order).
    rows: Rows,
    row_fields: RowFields,
    row_names: Vec<String>,
    /// Per event of the batch: its index among the keys asked, if it had a key.
    asked: Vec<Option<u32>>,
    /// The batch's keys, end to end, and where each ends (reused across batches).
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    /// With `where` or `set`: values that are not objects are rejected.
    objects_only: bool,
    /// `where`, and per event of the batch what it answered in `prepare`
    /// (`Ok(true)`: kept), taken by `process`.
    condition: Option<Condition>,
    verdicts: Vec<Result<bool, EventError>>,
    /// `set`, and per `fields` item the `set` entry it names, if any.
    set: Vec<SetField>,
    computed_of: Vec<Option<usize>>,
    /// Per `set` entry: where its arithmetic's fields are among
    /// `event_set`'s names, when it is arithmetic.
    set_reads: Vec<Option<(usize, usize)>>,
    /// Reused per event: the `set` values.
    computed: Vec<Option<Value>>,
    /// Reports, once each, an event field the stage reads (`on`, `fields`)
    /// that no event has: a typo that would silently read as null.
    field_watch: Watch,
    /// Whether `field_watch` has anything left to report (asked once per
    /// event it observes, not per event).
    watching_fields: bool,
}

/// A field's value as lookup text: strings unescaped, integers in decimal,
/// `null` (or nothing) none, other JSON as serde_json writes it (the text
/// the table was keyed with by [`sluice_sdk::select::key_text`]).
fn key_text(raw: Raw<'_>) -> Option<String> {
    match raw.kind() {
        Kind::Null => None,
        Kind::String => raw.as_str().map(|s| s.into_owned()),
        Kind::Bool => Some(raw.text().to_string()),
        _ => {
            if let Some(i) = raw.as_i64() {
                Some(i.to_string())
            } else if let Some(u) = raw.as_u64() {
                Some(u.to_string())
            } else {
                raw.to_value().ok().map(|v| v.to_string())
            }
        }
    }
}

/// Appends `raw`'s lookup text (as [`key_text`]) to `buf`; false for none.
/// Strings without escapes and integers are written without allocating.
fn push_key_text(raw: Raw<'_>, buf: &mut Vec<u8>) -> bool {
    use std::io::Write;
    match raw.kind() {
        Kind::Null => false,
        Kind::String => raw
            .as_str()
            .map(|s| buf.extend_from_slice(s.as_bytes()))
            .is_some(),
        // An integer already written as `i64` would print it (no sign on
        // zero, no leading zeros): copied as it is, skipping the formatter.
        Kind::Number if is_canonical_i64(raw.bytes()) => {
            buf.extend_from_slice(raw.bytes());
            true
        }
        _ => {
            if let Some(i) = raw.as_i64() {
                let _ = write!(buf, "{i}");
                true
            } else {
                key_text(raw)
                    .map(|k| buf.extend_from_slice(k.as_bytes()))
                    .is_some()
            }
        }
    }
}

/// Whether `text` is an `i64` exactly as `i64::to_string` writes it.
fn is_canonical_i64(text: &[u8]) -> bool {
    let digits = match text {
        [b'-', rest @ ..] => rest,
        _ => text,
    };
    let canonical = match digits {
        [] | [b'0', _, ..] => false,
        [b'0'] => text.len() == 1, // `-0` is not how 0 prints
        _ => digits.iter().all(u8::is_ascii_digit),
    };
    // Eighteen digits always fit; nineteen only up to i64's bounds. (Only
    // that rare case pays for the parse, and the UTF-8 check before it.)
    canonical
        && (digits.len() <= 18
            || (digits.len() == 19
                && std::str::from_utf8(text).is_ok_and(|t| t.parse::<i64>().is_ok())))
}

/// The rows for `keys`, fetched in one host call: with `names` (the row
/// fields `fields` names) only those fields' values, else whole rows.
fn look_up(
    table: &str,
    names: Option<&[String]>,
    keys: &[&[u8]],
    host: &mut dyn Host,
) -> (Rows, RowFields) {
    match names {
        Some(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let fields = host.lookup_fields(table, &names, keys);
            (Rows::default(), fields)
        }
        None => (host.lookup_many(table, keys), RowFields::new(0)),
    }
}

impl Processor for LookupJoin {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["table", "on", "join", "fields", "where", "set"])?;
        let condition = params
            .get("where")
            .map(|source| Condition::new(source, &[], false))
            .transpose()?;
        let set = set_fields(params)?;
        let inner = match params.get("join").unwrap_or("left") {
            "left" => false,
            "inner" => true,
            other => return Err(format!("`join`: unknown `{other}`; expected left or inner")),
        };
        let fields = params
            .get("fields")
            .map(|f| Selection::parse("fields", f, &["stream", "table"]))
            .transpose()?;
        let written = fields.as_ref().map_or_else(Vec::new, |sel| {
            let items = &sel.0;
            (0..items.len())
                .map(|i| {
                    !items[i + 1..]
                        .iter()
                        .any(|later| later.name == items[i].name)
                })
                .collect()
        });
        if !set.is_empty() && fields.is_none() {
            return Err(
                "`set` needs `fields`, which place the computed fields in the output \
                 (`fields: \"id, total, table.name as name\"`)"
                    .into(),
            );
        }
        let on = params.required("on")?;
        if set.iter().any(|f| f.name() == on) {
            return Err(format!(
                "`on`: `{on}` is a field `set` computes; join on an input field"
            ));
        }
        // A stream item naming a `set` entry takes the computed value; its
        // slot is the entry's.
        let computed_of: Vec<Option<usize>> = fields
            .iter()
            .flat_map(|sel| &sel.0)
            .map(|item| {
                (item.source == 0)
                    .then(|| set.iter().position(|f| f.name() == item.field))
                    .flatten()
            })
            .collect();
        let (mut names, mut slot): ([Vec<&str>; 2], Vec<usize>) = Default::default();
        for (item, computed) in fields.iter().flat_map(|sel| &sel.0).zip(&computed_of) {
            if let Some(k) = computed {
                slot.push(*k);
                continue;
            }
            let names = &mut names[item.source.min(1)];
            slot.push(names.len());
            names.push(&item.field);
        }
        let [mut event_names, row_names] = names;
        let row_names: Vec<String> = row_names.iter().map(|n| n.to_string()).collect();
        let on_at = event_names.len();
        event_names.push(on);
        let mut watched: Vec<Vec<&str>> = Vec::new();
        for name in &event_names {
            if !watched.iter().any(|w| w[0] == *name) {
                watched.push(vec![name]);
            }
        }
        let field_watch = Watch::for_paths(&watched).reading_null();
        // The fields `set`'s arithmetic reads, found in the same search.
        let mut set_reads = Vec::with_capacity(set.len());
        for f in &set {
            set_reads.push(f.arithmetic_reads().map(|reads| {
                let start = event_names.len();
                event_names.extend(reads);
                (start, event_names.len())
            }));
        }
        let event_set = FieldSet::new(event_names);
        let keys_out = fields
            .iter()
            .flat_map(|sel| &sel.0)
            .map(|item| JsonKey::new(&item.name))
            .collect();
        let plain = fields
            .iter()
            .flat_map(|sel| &sel.0)
            .zip(&computed_of)
            .map(|(item, computed)| {
                item.source == 0 && item.name == item.field && computed.is_none()
            })
            .collect();
        Ok(Self {
            table: params.required("table")?.to_string(),
            on: on.to_string(),
            on_at,
            inner,
            fields,
            written,
            event_set,
            slot,
            keys_out,
            plain,
            found: Vec::new(),
            found_in_batch: Vec::new(),
            found_at: Vec::new(),
            writes: Vec::new(),
            planned_for: None,
            parser: JsonParser::new(),
            row_parser: JsonParser::new(),
            views: BatchViews::new(),
            rows: Rows::default(),
            row_fields: RowFields::new(row_names.len()),
            row_names,
            asked: Vec::new(),
            keys: Vec::new(),
            key_ends: Vec::new(),
            field_watch,
            watching_fields: true,
            objects_only: condition.is_some() || !set.is_empty(),
            condition,
            verdicts: Vec::new(),
            computed: Vec::with_capacity(set.len()),
            set,
            computed_of,
            set_reads,
        })
    }

    fn prepare(&mut self, events: &[Event<'_>], host: &mut dyn Host) -> Result<(), CallError> {
        // One host call for the whole batch: the keys go over as one buffer
        // and the rows come back as one. An event whose value is not JSON is
        // rejected by `process` when it reads it again.
        self.asked.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.views.clear();
        self.found_in_batch.clear();
        self.found_at.clear();
        self.verdicts.clear();
        for e in events {
            // Events `where` drops are not looked up; tombstones pass.
            if let Some(c) = self.condition.as_mut() {
                let verdict = match e.is_tombstone() {
                    true => Ok(true),
                    false => c.keeps(e),
                };
                let kept = verdict == Ok(true);
                self.verdicts.push(verdict);
                if !kept {
                    self.found_at.push(None);
                    self.asked.push(None);
                    continue;
                }
            }
            // One search finds the key and the fields `process` copies.
            let view = self.views.scan_event(e).and_then(Result::ok);
            let on_at = self.on_at;
            let key = view.map(|v| {
                let at = self.found_in_batch.len();
                self.event_set.append_all(&v, &mut self.found_in_batch);
                let on = self.found_in_batch.get(at + on_at).copied().flatten();
                (
                    (at, self.event_set.last_shape()),
                    on.map(|i| v.field_value(i)),
                )
            });
            self.found_at.push(key.map(|(at, _)| at));
            let has_key = key
                .and_then(|(_, raw)| raw)
                .is_some_and(|raw| push_key_text(raw, &mut self.keys));
            self.asked.push(has_key.then(|| {
                self.key_ends.push(self.keys.len());
                u32::try_from(self.key_ends.len() - 1).unwrap_or(u32::MAX)
            }));
        }
        let mut start = 0;
        let refs: Vec<&[u8]> = self
            .key_ends
            .iter()
            .map(|&end| {
                let k = &self.keys[start..end];
                start = end;
                k
            })
            .collect();
        let names = self.fields.is_some().then_some(self.row_names.as_slice());
        (self.rows, self.row_fields) = look_up(&self.table, names, &refs, host);
        Ok(())
    }

    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward();
            return Ok(());
        }
        // What `where` answered in `prepare`, or (an event `prepare` did
        // not see) answers now.
        if let Some(c) = self.condition.as_mut() {
            let verdict = match self.verdicts.get_mut(event.index()) {
                Some(v) => std::mem::replace(v, Ok(false)),
                None => c.keeps(event),
            };
            if !verdict? {
                return Ok(());
            }
        }
        // The event is read through the zero-copy view: fields are copied
        // to the output as raw slices, never parsed into a tree.
        let bytes = event.value().unwrap_or(b"null");
        // What `prepare` found applies only to the view it scanned.
        let (view, found_at) = match self.views.get(event.index(), bytes) {
            Some(scanned) => (scanned, self.found_at.get(event.index()).copied().flatten()),
            None => (self.parser.parse(bytes), None),
        };
        let view = view.map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}")))?;
        // With `where` or `set` the stage stands for a `project` in front,
        // which takes only objects.
        if self.objects_only && !view.is_object() {
            return Err(EventError::Reject(format!(
                "value is {}, not a JSON object",
                view.root().kind().described()
            )));
        }
        if self.watching_fields {
            observe_fields(&mut self.field_watch, &view);
            self.watching_fields = self.field_watch.active();
        }
        let row_index = match self.asked.get(event.index()) {
            Some(asked) => asked.map(|k| k as usize),
            // An event `prepare` did not see (a caller that skipped it): ask now.
            None => {
                let key = view.get(&self.on).and_then(key_text);
                let key: Vec<&[u8]> = key.iter().map(|k| k.as_bytes()).collect();
                let names = self.fields.is_some().then_some(self.row_names.as_slice());
                (self.rows, self.row_fields) = look_up(&self.table, names, &key, host);
                self.asked.clear();
                Some(0)
            }
        };
        match &self.fields {
            Some(sel) => {
                let names = self.event_set.names().len();
                let at = found_at.and_then(|(at, shape)| {
                    Some((self.found_in_batch.get(at..at + names)?, shape))
                });
                let (found, shape) = match at {
                    Some(answer) => answer,
                    None => {
                        self.event_set.find_all(&view, &mut self.found);
                        (&self.found[..], self.event_set.last_shape())
                    }
                };
                // `set`, against the input event, before an inner join
                // drops it (an event `set` fails on is rejected either way).
                if !self.set.is_empty() {
                    compute(
                        &mut self.set,
                        &self.set_reads,
                        &view,
                        found,
                        &mut self.computed,
                    )?;
                }
                // A row that is JSON but not an object has none of the
                // fields; one that is not JSON counts as no row.
                let values = match row_index.and_then(|i| self.row_fields.get(i)) {
                    Some(RowAnswer::Object(values)) => Some(values),
                    Some(RowAnswer::Other(b)) if self.row_parser.parse(b).is_ok() => None,
                    _ if self.inner => return Ok(()),
                    _ => None,
                };
                // Events of one stream mostly share their keys: what goes
                // out is worked out again only when they change.
                if self.planned_for != Some(shape) {
                    plan(
                        sel,
                        &self.written,
                        &self.slot,
                        &self.plain,
                        &self.computed_of,
                        found,
                        &mut self.writes,
                    );
                    self.planned_for = Some(shape);
                }
                let (writes, keys, computed) = (&self.writes, &self.keys_out, &self.computed);
                out.value_with(|buf| {
                    let mut obj = ObjectWriter::new(buf);
                    for &write in writes {
                        match write {
                            Write::Run(run) => flush(&mut obj, &view, Some(run)),
                            Write::Field(n, i) => obj.raw_at(&keys[n], view.field_value(i)),
                            Write::Null(n) => obj.raw_at(&keys[n], NULL),
                            Write::Row(n, slot) => {
                                let value = values.and_then(|v| v.get(slot));
                                obj.raw_at(&keys[n], value.unwrap_or(NULL));
                            }
                            Write::Computed(n, k) => {
                                write_computed(&mut obj, &keys[n], computed.get(k))
                            }
                        }
                    }
                    obj.finish();
                });
            }
            None => {
                // A row that is not JSON counts as no row. The host's field
                // table of the row, when it sent one, spares the scan.
                let row: Option<JsonView<'_>> = match row_index.and_then(|i| self.rows.get(i)) {
                    Some(b) => {
                        let table = row_index.and_then(|i| self.rows.table(i));
                        self.row_parser.parse_with_table(b, table).ok()
                    }
                    None => None,
                };
                if row.is_none() && self.inner {
                    return Ok(());
                }
                if !view.is_object() {
                    out.forward();
                    return Ok(());
                }
                let table = &self.table;
                out.value_with(|buf| {
                    let mut obj = ObjectWriter::new(buf);
                    // The event's fields but the table's name, in runs.
                    let mut first = 0;
                    for (i, (key, _)) in view.fields().enumerate() {
                        if key.is(table) {
                            if first < i {
                                obj.raw_fields(&view, first, i - 1);
                            }
                            first = i + 1;
                        }
                    }
                    if first < view.len() {
                        obj.raw_fields(&view, first, view.len() - 1);
                    }
                    obj.raw(table, row.as_ref().map_or(NULL, |r| r.root()));
                    obj.finish();
                });
            }
        }
        Ok(())
    }
}

const NULL: Raw<'static> = Raw::NULL;

/// The `set` values for `view`, whose `event_set` answer is `found`, into
/// `computed`. Out of line, as is [`write_computed`]: a join without `set`
/// should not pay for them in the size of its per-event code.
#[inline(never)]
fn compute(
    set: &mut [SetField],
    reads: &[Option<(usize, usize)>],
    view: &JsonView<'_>,
    found: &[Option<usize>],
    computed: &mut Vec<Option<Value>>,
) -> Result<(), EventError> {
    computed.clear();
    for (f, reads) in set.iter_mut().zip(reads) {
        let found = reads.and_then(|(start, end)| found.get(start..end));
        computed.push(f.value(view, found, false).map_err(EventError::Reject)?);
    }
    Ok(())
}

/// Tells `watch` of the event fields `view` has, warning of any no event
/// has after the watch's first events. Out of line: it runs only for those.
#[inline(never)]
fn observe_fields(watch: &mut Watch, view: &JsonView<'_>) {
    for warning in watch.observe_names(view) {
        sluice_sdk::log::warn(&warning);
    }
}

/// A computed value under `key`; `null` when it gave none.
#[inline(never)]
fn write_computed(obj: &mut ObjectWriter<'_>, key: &JsonKey, value: Option<&Option<Value>>) {
    match value {
        Some(Some(value)) => obj.value_at(key, value),
        _ => obj.raw_at(key, NULL),
    }
}

/// `set`: a JSON object of `name: EXPRESSION` (or constant) entries.
fn set_fields(params: &Params) -> Result<Vec<SetField>, String> {
    let Some(text) = params.get("set") else {
        return Ok(Vec::new());
    };
    let example = r#"{"price_cents": "round(price * 100)"}"#;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| SetField::new("set", &name, value, &[]))
            .collect(),
        Ok(other) => Err(format!(
            "parameter `set`: expected a map like {example}, found {}",
            sluice_expr::type_name(&other)
        )),
        Err(e) => Err(format!(
            "parameter `set`: expected a map like {example} ({e})"
        )),
    }
}

/// One step of writing a joined event, for `fields` item `n`'s output name
/// `keys_out[n]`.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// Event fields each under its own name, as one run.
    Run(Run),
    /// Event field `i` under item `n`'s name.
    Field(usize, usize),
    /// Item `n` from an event that lacks its field: `null`.
    Null(usize),
    /// Item `n` from the row: its row field `slot`, or `null`.
    Row(usize, usize),
    /// Item `n` from `set` entry `k`, or `null` when it gave none.
    Computed(usize, usize),
}

/// The writes for an event whose `event_set` answer is `found`: the
/// written `fields` items in order, event fields under their own names that
/// are also consecutive in the event merged into runs. The answer depends
/// only on the event's keys, so the writes hold for every event of its shape.
fn plan(
    sel: &Selection,
    written: &[bool],
    slots: &[usize],
    plain: &[bool],
    computed_of: &[Option<usize>],
    found: &[Option<usize>],
    writes: &mut Vec<Write>,
) {
    writes.clear();
    let mut run: Option<Run> = None;
    let items = sel.0.iter().enumerate().zip(written).zip(slots);
    for (((n, item), _), &slot) in items.filter(|((_, w), _)| **w) {
        if let Some(k) = computed_of.get(n).copied().flatten() {
            writes.extend(run.take().map(Write::Run));
            writes.push(Write::Computed(n, k));
            continue;
        }
        if item.source != 0 {
            writes.extend(run.take().map(Write::Run));
            writes.push(Write::Row(n, slot));
            continue;
        }
        let at = found.get(slot).copied().flatten();
        if let (true, Some(i)) = (plain.get(n).copied().unwrap_or(false), at) {
            match run.as_mut() {
                Some(r) if r.last + 1 == i => r.last = i,
                _ => {
                    writes.extend(run.take().map(Write::Run));
                    run = Some(Run { first: i, last: i });
                }
            }
            continue;
        }
        writes.extend(run.take().map(Write::Run));
        writes.push(match at {
            Some(i) => Write::Field(n, i),
            None => Write::Null(n),
        });
    }
    writes.extend(run.take().map(Write::Run));
}

/// Consecutive event fields `first..=last`, each written by a `fields` item
/// under its own name.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: usize,
    last: usize,
}

/// Writes `run`: in one copy when the event has those fields compactly, else
/// field by field. Either way the bytes are what `raw_at` under each item's
/// name writes: an unescaped key is its name as JSON writes it.
fn flush(obj: &mut ObjectWriter<'_>, view: &JsonView<'_>, run: Option<Run>) {
    let Some(run) = run else { return };
    match view.compact_run(run.first, run.last) {
        Some(r) => obj.raw_run(r),
        None => {
            for i in run.first..=run.last {
                let (key, value) = view.field(i);
                if key.has_escape() {
                    obj.raw(&key.text(), value);
                } else {
                    obj.raw_field(key, value);
                }
            }
        }
    }
}

sluice_sdk::export_processor!(LookupJoin);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use sluice_sdk::testing::json_of as value;
    use sluice_sdk::testing::Harness;

    #[test]
    fn integer_keys_are_copied_only_when_they_are_what_i64_would_print() {
        let mut texts: Vec<String> = [
            "0",
            "7",
            "-7",
            "10200",
            "-0",
            "007",
            "-007",
            "00",
            "1.0",
            "1e3",
            "",
            "-",
            "--1",
            "+1",
            " 1",
            "1 ",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "999999999999999999",
            "-999999999999999999",
            "1000000000000000000",
            "10000000000000000000",
            "12a",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Every length around the eighteen-digit shortcut, both signs.
        for len in 1..=21 {
            for lead in ['1', '5', '9'] {
                let t: String = std::iter::once(lead)
                    .chain(std::iter::repeat_n('7', len - 1))
                    .collect();
                texts.push(format!("-{t}"));
                texts.push(t);
            }
        }
        for text in &texts {
            let prints_as = text.parse::<i64>().map(|i| i.to_string());
            assert_eq!(
                is_canonical_i64(text.as_bytes()),
                prints_as.as_deref() == Ok(text.as_str()),
                "{text}"
            );
        }
        // And the key text is the same either way.
        for json in [
            "7",
            "-0",
            "7.0",
            "1e3",
            "-9223372036854775808",
            "18446744073709551615",
        ] {
            let raw = JsonView::parse(json.as_bytes()).expect("json").root();
            let mut pushed = Vec::new();
            let has = push_key_text(raw, &mut pushed);
            let pushed = String::from_utf8(pushed).expect("utf-8");
            assert_eq!(has.then_some(pushed), key_text(raw), "{json}");
        }
    }

    #[test]
    fn a_batch_costs_one_table_call_and_rows_stay_with_their_events() {
        use sluice_sdk::abi::RawBatch;
        use sluice_sdk::testing::MemoryHost;
        let params = Params::new([("table", "t"), ("on", "k"), ("fields", "n, table.v")]);
        let mut p = LookupJoin::new(&params).expect("params");
        let mut host = MemoryHost::default();
        let rows = host.tables.entry("t".into()).or_default();
        rows.insert(b"7".to_vec(), br#"{"v":"seven"}"#.to_vec());
        rows.insert(b"x".to_vec(), br#"{"v":"ex"}"#.to_vec());
        let mut batch = RawBatch::default();
        for v in [
            r#"{"n":0,"k":7}"#,
            r#"{"n":1}"#,
            "not json",
            r#"{"n":3,"k":"x"}"#,
            r#"{"n":4,"k":8}"#,
            r#"{"n":5,"k":7}"#,
        ] {
            batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
        }
        batch.push_event(Some(b"gone"), None, &[], 0, 0);
        let out = sluice_sdk::processor::run_processor(&mut p, &mut host, &batch).expect("ok");
        assert_eq!(host.table_calls, 1, "one call for the whole batch");
        let values: Vec<Option<&[u8]>> = out
            .events
            .events
            .iter()
            .map(|e| e.value.and_then(|s| s.slice(&out.events.data)))
            .collect();
        let want: Vec<Option<&[u8]>> = vec![
            Some(br#"{"n":0,"v":"seven"}"#),
            Some(br#"{"n":1,"v":null}"#),
            Some(br#"{"n":3,"v":"ex"}"#),
            Some(br#"{"n":4,"v":null}"#),
            Some(br#"{"n":5,"v":"seven"}"#),
            None,
        ];
        assert_eq!(values, want);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].index, 2, "the event that is not JSON");
    }

    #[test]
    fn what_prepare_found_is_used_for_the_event_it_was_found_in() {
        // One batch of events whose fields lie at different places, against
        // each event alone: `process` must use the fields `prepare` found in
        // that very event, never a neighbour's.
        use sluice_sdk::abi::RawBatch;
        use sluice_sdk::testing::MemoryHost;
        let params = Params::new([("table", "t"), ("on", "k"), ("fields", "a, b, table.v, c")]);
        let mut host = MemoryHost::default();
        let rows = host.tables.entry("t".into()).or_default();
        rows.insert(b"1".to_vec(), br#"{"v":"one"}"#.to_vec());
        rows.insert(b"2".to_vec(), br#"{"v":"two"}"#.to_vec());
        let events = [
            r#"{"k":1,"a":"a0","b":"b0","c":"c0"}"#,
            r#"{"a":"a1","k":2,"c":"c1","b":"b1"}"#,
            r#"{"a":"a2","k":2,"c":"c2","b":"b2"}"#,
            r#"{"c":"c3","b":"b3","a":"a3","k":1}"#,
            r#"{"k":1,"a":"a4","b":"b4","c":"c4"}"#,
            r#"{"k":2,"a":"a5"}"#,
            r#"{"k":1,"a":"a6","b":"b6","c":"c6"}"#,
        ];
        let outputs = |batch: &RawBatch, host: &mut MemoryHost| {
            let mut p = LookupJoin::new(&params).expect("params");
            let out = sluice_sdk::processor::run_processor(&mut p, host, batch).expect("ok");
            values_of(&out)
        };
        let mut batch = RawBatch::default();
        let mut alone = Vec::new();
        for v in events {
            batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
            let mut one = RawBatch::default();
            one.push_event(None, Some(v.as_bytes()), &[], 0, 0);
            alone.extend(outputs(&one, &mut host));
        }
        assert_eq!(outputs(&batch, &mut host), alone);
        assert_eq!(
            alone[3].as_deref(),
            Some(&br#"{"a":"a3","b":"b3","v":"one","c":"c3"}"#[..])
        );
    }

    /// Output values, and (input index, reason) of the rejected events.
    type Outcome = (Vec<Option<Vec<u8>>>, Vec<(u32, String)>);

    /// What `project` (with `where`, `select` and `set`) then `lookup-join`
    /// (with `fields` naming the projected fields) give, one batch through
    /// both: output values byte for byte, and the rejected events with
    /// their reasons.
    fn project_then_join(
        project: &[(&str, &str)],
        join: &[(&str, &str)],
        batch: &sluice_sdk::abi::RawBatch,
        host: &mut sluice_sdk::testing::MemoryHost,
    ) -> Outcome {
        use sluice_sdk::Transform;
        let mut p = sluice_plugin_project::Project::new(&Params::new(project.iter().copied()))
            .expect("project params");
        let shaped = sluice_sdk::run_transform(&mut p, batch).expect("project");
        let mut j = LookupJoin::new(&Params::new(join.iter().copied())).expect("join params");
        let out = sluice_sdk::processor::run_processor(&mut j, host, &shaped.events).expect("join");
        assert!(
            out.rejected.is_empty(),
            "the join rejects nothing project wrote"
        );
        let rejected = shaped
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.clone()))
            .collect();
        (values_of(&out), rejected)
    }

    fn values_of(out: &sluice_sdk::abi::RawOutput) -> Vec<Option<Vec<u8>>> {
        out.events
            .events
            .iter()
            .map(|e| {
                e.value
                    .and_then(|s| s.slice(&out.events.data))
                    .map(<[u8]>::to_vec)
            })
            .collect()
    }

    #[test]
    fn where_and_set_do_what_project_then_lookup_join_do() {
        use sluice_sdk::testing::{batch_with_tables, MemoryHost};
        let events = [
            r#"{"order_id":"a","customer_id":1,"price":51.47,"currency":"usd","note":"x"}"#,
            r#"{"order_id":"b","customer_id":1,"price":5,"currency":"aud"}"#,
            r#"{"order_id":"c","customer_id":3,"price":0.5,"currency":"eur"}"#,
            r#"{"order_id":"d","customer_id":2,"price":"x","currency":"gbp","note":[1, 2]}"#,
            r#"{"customer_id":2,"price":150,"currency":"usd"}"#,
            "[1,2]",
            r#"{"order_id":"#,
            r#""text""#,
            r#"{"customer_id":1,"price":1e400,"currency":"usd"}"#,
            r#"{"customer_id":1,"currency":"usd","customer_id":2,"price":1}"#,
            r#"{"customer_id":"1","price":2.5,"currency":"jpy"}"#,
            r#"{"customer_id":null,"price":2,"currency":"cad"}"#,
            r#"{"curr\u0065ncy":"usd","customer_id":1,"price":2}"#,
            r#"{"customer_id":2,"price":9007199254740993,"currency":"usd"}"#,
            r#"{"price_cents":5,"price":1.005,"currency":"gbp","customer_id":1}"#,
            r#"{ "order_id" : "e" , "customer_id" : 1 , "price" : -0.0 , "currency" : "usd" }"#,
        ];
        let mut host = MemoryHost::default();
        let rows = host.tables.entry("c".into()).or_default();
        rows.insert(b"1".to_vec(), br#"{"name":"ann","age":34}"#.to_vec());
        rows.insert(b"2".to_vec(), br#"{"age":51,"name":"Jos\u00e9"}"#.to_vec());
        let select = r#"["order_id","customer_id","currency","note"]"#;
        let set = r#"{"price_cents":"round(price * 100)","big":"case when price > 100 then 'big' end","v":2}"#;
        let fields = "order_id, customer_id, currency, note, price_cents, big, v, \
                      table.name as customer_name, table.age as customer_age";
        // Non-objects pass it, to be rejected as `project` rejects them.
        let condition = "currency is null or currency != 'aud'";
        let mut compared = 0;
        for (where_, set) in [
            (Some(condition), Some(set)),
            (None, Some(set)),
            (Some(condition), None),
        ] {
            let fields = match set {
                Some(_) => fields.to_string(),
                None => fields.replace(" price_cents, big, v,", ""),
            };
            for join in ["left", "inner"] {
                let mut project = vec![("select", select)];
                let mut fused = vec![
                    ("table", "c"),
                    ("on", "customer_id"),
                    ("join", join),
                    ("fields", fields.as_str()),
                ];
                for (name, value) in [("where", where_), ("set", set)] {
                    if let Some(value) = value {
                        project.push((name, value));
                        fused.push((name, value));
                    }
                }
                let join_alone = &fused[..4];
                for batch in [batch_with_tables(&events), {
                    let mut b = sluice_sdk::abi::RawBatch::default();
                    for v in events {
                        b.push_event(None, Some(v.as_bytes()), &[], 0, 0);
                    }
                    b.push_event(Some(b"gone"), None, &[], 0, 0);
                    b
                }] {
                    let want = project_then_join(&project, join_alone, &batch, &mut host);
                    let mut p =
                        LookupJoin::new(&Params::new(fused.iter().copied())).expect("fused params");
                    let out = sluice_sdk::processor::run_processor(&mut p, &mut host, &batch)
                        .expect("fused");
                    let rejected: Vec<(u32, String)> = out
                        .rejected
                        .iter()
                        .map(|r| (r.index, r.reason.clone()))
                        .collect();
                    let context = format!("where {where_:?}, set {set:?}, {join} join");
                    assert_eq!(
                        values_of(&out)
                            .iter()
                            .map(|v| v.as_deref().map(String::from_utf8_lossy))
                            .collect::<Vec<_>>(),
                        want.0
                            .iter()
                            .map(|v| v.as_deref().map(String::from_utf8_lossy))
                            .collect::<Vec<_>>(),
                        "{context}"
                    );
                    assert_eq!(rejected, want.1, "{context}");
                    assert!(!want.0.is_empty() && !want.1.is_empty(), "{context}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 12);
    }

    #[test]
    fn a_field_no_event_has_is_reported_once_with_the_closest_name() {
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "t"),
            ("on", "custmer_id"),
            ("fields", "order_id, pricee, table.name as name"),
        ])
        .expect("params");
        sluice_sdk::log::take_captured();
        for i in 0..120 {
            let value = format!(r#"{{"order_id":{i},"customer_id":1,"price":2}}"#);
            h.send("s", None, Some(&value), 0).expect("ok");
        }
        let logged: Vec<String> = sluice_sdk::log::take_captured_lines();
        assert_eq!(
            logged,
            vec![
                "Warn field `pricee` is absent from all 100 events so far, so it reads as \
                 null; did you mean `price`?",
                "Warn field `custmer_id` is absent from all 100 events so far, so it reads as \
                 null; did you mean `customer_id`?",
            ]
        );
    }

    #[test]
    fn set_needs_fields_and_on_must_be_an_input_field() {
        let err = |params: &[(&str, &str)]| {
            LookupJoin::new(&Params::new(params.iter().copied()))
                .err()
                .unwrap_or_default()
        };
        let set = r#"{"k2":"k * 2"}"#;
        assert!(err(&[("table", "t"), ("on", "k"), ("set", set)]).contains("`set` needs `fields`"));
        assert!(
            err(&[("table", "t"), ("on", "k2"), ("fields", "k2"), ("set", set)])
                .contains("`on`: `k2` is a field `set` computes")
        );
        assert!(
            err(&[("table", "t"), ("on", "k"), ("fields", "k"), ("set", "[1]")])
                .contains("parameter `set`: expected a map")
        );
        assert!(err(&[
            ("table", "t"),
            ("on", "k"),
            ("fields", "k"),
            ("set", r#"{"x":"k +"}"#)
        ])
        .contains("parameter `set`: field `x`"));
        assert!(err(&[("table", "t"), ("on", "k"), ("where", "k ==")]).contains("`where`"));
    }

    fn parse(v: &str) -> Value {
        serde_json::from_str(v).unwrap_or(Value::Null)
    }

    #[test]
    fn left_join_projects_fields_and_nulls_unknown_rows() {
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "customers_by_key"),
            ("on", "customer_id"),
            (
                "fields",
                "order_id, price, table.id as customer_id, table.name as customer_name",
            ),
        ])
        .expect("params");
        h.table_row(
            "customers_by_key",
            "5",
            r#"{"id":"5","name":"fred","age":34}"#,
        );
        let out = h
            .send(
                "orders",
                None,
                Some(r#"{"order_id":1,"customer_id":"5","price":9.5}"#),
                0,
            )
            .expect("ok");
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":1,"price":9.5,"customer_id":"5","customer_name":"fred"}"#)
        );
        let out = h
            .send(
                "orders",
                None,
                Some(r#"{"order_id":2,"customer_id":"9","price":1}"#),
                0,
            )
            .expect("ok");
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":2,"price":1,"customer_id":null,"customer_name":null}"#)
        );
    }

    #[test]
    fn inner_join_drops_unmatched_and_numbers_match_text_keys() {
        let mut h = Harness::<LookupJoin>::new(&[("table", "t"), ("on", "k"), ("join", "inner")])
            .expect("params");
        h.table_row("t", "7", r#"{"v":1}"#);
        assert_eq!(
            h.send("s", None, Some(r#"{"k":8}"#), 0).expect("ok").len(),
            0
        );
        let out = h.send("s", None, Some(r#"{"k":7}"#), 0).expect("ok");
        assert_eq!(value(&out[0].1), parse(r#"{"k":7,"t":{"v":1}}"#));
        assert!(Harness::<LookupJoin>::new(&[("table", "t")]).is_err());
    }

    #[test]
    fn event_fields_next_to_each_other_go_out_as_they_would_one_by_one() {
        // Runs of event fields under their own names are copied as one
        // slice when the event is compact; spaces, an escaped key, a
        // rename, a row field or a gap in the event break the run, and the
        // bytes must be the same either way.
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "c"),
            ("on", "id"),
            (
                "fields",
                "a, b, table.name as n, c, d as dd, e, f, a as a2, g",
            ),
        ])
        .expect("params");
        h.table_row("c", "1", r#"{"name":"ann"}"#);
        let cases = [
            (
                r#"{"id":1,"a":[1, 2],"b":"x","c":1.50,"d":true,"e":{"k":"v"},"f":null,"g":-0}"#,
                r#"{"a":[1, 2],"b":"x","n":"ann","c":1.50,"dd":true,"e":{"k":"v"},"f":null,"a2":[1, 2],"g":-0}"#,
            ),
            (
                r#"{"id":1, "a" : 1,"b":2 ,"c":3,"d":4,"e":5, "f":6,"g":7}"#,
                r#"{"a":1,"b":2,"n":"ann","c":3,"dd":4,"e":5,"f":6,"a2":1,"g":7}"#,
            ),
            (
                "{\"id\":1,\"a\":1,\"\\u0062\":2,\"c\":3,\"e\":5,\"f\":6,\"x\":0,\"g\":7}",
                r#"{"a":1,"b":2,"n":"ann","c":3,"dd":null,"e":5,"f":6,"a2":1,"g":7}"#,
            ),
            (
                r#"{"g":7,"f":6,"e":5,"c":3,"b":2,"a":1,"id":1}"#,
                r#"{"a":1,"b":2,"n":"ann","c":3,"dd":null,"e":5,"f":6,"a2":1,"g":7}"#,
            ),
        ];
        for (event, want) in cases {
            let out = h.send("s", None, Some(event), 0).expect("ok");
            assert_eq!(out[0].1.as_deref(), Some(want), "{event}");
        }
    }

    #[test]
    fn raw_text_is_copied_byte_for_byte() {
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "c"),
            ("on", "customer_id"),
            (
                "fields",
                "order_id, price, table.name as name, table.big, nope",
            ),
        ])
        .expect("params");
        h.table_row(
            "c",
            "9007199254740993",
            "{\"name\":\"Jos\\u00e9 \u{1f600}\",\"big\":18446744073709551615}",
        );
        let out = h
            .send(
                "s",
                None,
                Some(
                    r#"{"order_id":9007199254740993,"customer_id":9007199254740993,"price":1.50}"#,
                ),
                0,
            )
            .expect("ok");
        assert_eq!(
            out[0].1.as_deref(),
            Some("{\"order_id\":9007199254740993,\"price\":1.50,\"name\":\"Jos\\u00e9 \u{1f600}\",\"big\":18446744073709551615,\"nope\":null}")
        );
    }

    #[test]
    fn default_output_keeps_the_event_and_replaces_a_same_named_field() {
        let mut h = Harness::<LookupJoin>::new(&[("table", "t"), ("on", "k")]).expect("params");
        h.table_row("t", "a\"b", r#"{"v": [1, 2]}"#);
        let out = h
            .send(
                "s",
                None,
                Some(r#"{"k":"a\"b","t":0,"n":{"x":1.0},"t":1}"#),
                0,
            )
            .expect("ok");
        assert_eq!(
            out[0].1.as_deref(),
            Some(r#"{"k":"a\"b","n":{"x":1.0},"t":{"v": [1, 2]}}"#)
        );
        // Not an object: passed on unchanged.
        let out = h.send("s", None, Some("[1, 2]"), 0).expect("ok");
        assert_eq!(out[0].1.as_deref(), Some("[1, 2]"));
    }

    #[test]
    fn duplicate_keys_and_output_names_last_wins() {
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "t"),
            ("on", "k"),
            ("fields", "a as x, b as x"),
        ])
        .expect("params");
        h.table_row("t", "2", r#"{}"#);
        let out = h
            .send(
                "s",
                None,
                Some(r#"{"k":1,"a":"first","k":2,"b":"second"}"#),
                0,
            )
            .expect("ok");
        assert_eq!(out[0].1.as_deref(), Some(r#"{"x":"second"}"#));
    }

    #[test]
    fn malformed_events_are_rejected_and_malformed_rows_are_no_row() {
        let mut h = Harness::<LookupJoin>::new(&[("table", "t"), ("on", "k")]).expect("params");
        let err = h
            .send("s", None, Some(r#"{"k":1,}"#), 0)
            .expect_err("rejected");
        assert_eq!(
            err,
            "value is not valid JSON: key must be a string at byte 7"
        );
        h.table_row("t", "1", "{not json");
        let out = h.send("s", None, Some(r#"{"k":1}"#), 0).expect("ok");
        assert_eq!(out[0].1.as_deref(), Some(r#"{"k":1,"t":null}"#));
    }

    #[test]
    fn with_fields_a_row_that_is_not_an_object_has_none_and_one_not_json_is_no_row() {
        // Rows come projected on `fields`' row fields; these two come whole.
        let params = [
            ("table", "t"),
            ("on", "k"),
            ("join", "inner"),
            ("fields", "k, table.name as name"),
        ];
        let mut h = Harness::<LookupJoin>::new(&params).expect("params");
        h.table_row("t", "1", "[1,2]");
        h.table_row("t", "2", "{not json");
        h.table_row("t", "3", r#"{"name":"ann"}"#);
        let mut got = Vec::new();
        for k in 1..=4 {
            let value = format!(r#"{{"k":{k}}}"#);
            for (_, v) in h.send("s", None, Some(&value), 0).expect("ok") {
                got.push(v.unwrap_or_default());
            }
        }
        assert_eq!(got, [r#"{"k":1,"name":null}"#, r#"{"k":3,"name":"ann"}"#]);
    }
}
