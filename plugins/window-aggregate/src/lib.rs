//! `window-aggregate`: aggregates events per key over event-time windows,
//! like ksqlDB's `WINDOW TUMBLING / HOPPING / SESSION ... GROUP BY`.
//!
//! Parameters:
//! - `window`: `tumbling` (default), `hopping` or `session`;
//! - `size_ms`: window length (tumbling, hopping); `advance_ms`: hop (hopping);
//!   `gap_ms`: inactivity that closes a session;
//! - `group_by`: top-level field to group by, or several separated by
//!   commas; the event key when absent;
//! - `aggregates`: comma-separated `count`, `count(f)` (events whose `f` is
//!   not null), `sum(f)`, `min(f)`, `max(f)`, `avg(f)`, `latest(f)`, each
//!   optionally `as name` (default `count`, `count_f`, `sum_f`, ...);
//!   a field or name holding `,`, `(`, ` as ` or spaces at its ends is
//!   written between backquotes (`` sum(`unit price`) as `total, eur` ``);
//! - `emit`: `close` (default: one result when the watermark passes the
//!   window's end), `update` (a result after every event) or `both`.
//!
//! Each result is keyed by `{"key", "window_start", "window_end"}` and holds
//! those fields plus the aggregates. State is the host's keyed state, so it
//! is checkpointed with the source positions; windows close on host timers.

use serde_json::{json, Map, Value};
use sluice_sdk::json::{JsonParser, JsonView, Kind, Raw};
use sluice_sdk::names;
use sluice_sdk::{Emitter, Event, EventError, Host, OutEvent, Params, Processor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Tumbling { size: i64 },
    Hopping { size: i64, advance: i64 },
    Session { gap: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Latest,
}

#[derive(Debug, Clone)]
struct Agg {
    func: Func,
    field: Option<String>,
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    Close,
    Update,
    Both,
}

/// The processor.
pub struct WindowAggregate {
    window: Window,
    /// Fields to group by; empty: the event key.
    group_by: Vec<String>,
    aggs: Vec<Agg>,
    emit: Emit,
    /// Reused per event: the view's field table.
    parser: JsonParser,
}

fn positive(params: &Params, name: &str) -> Result<i64, String> {
    let v = params.required(name)?;
    match v.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "`{name}` must be a positive number of milliseconds, got `{v}`"
        )),
    }
}

fn parse_aggs(text: &str) -> Result<Vec<Agg>, String> {
    let mut out = Vec::new();
    for part in names::split(text, ',') {
        let (expr, alias) = match names::split_once(part, " as ") {
            Some((e, a)) => (
                e.trim(),
                Some(names::name(a).map_err(|e| format!("`aggregates`: {e}"))?),
            ),
            None => (part, None),
        };
        let (fname, field) = match names::split_once(expr, "(") {
            Some((f, rest)) => {
                let field = rest
                    .trim_end()
                    .strip_suffix(')')
                    .ok_or_else(|| format!("`aggregates`: `{part}` lacks a closing `)`"))?;
                let field = names::name(field).map_err(|e| format!("`aggregates`: {e}"))?;
                (f.trim(), (!field.is_empty()).then_some(field))
            }
            None => (expr, None),
        };
        let func = match fname.to_ascii_lowercase().as_str() {
            "count" => Func::Count,
            "sum" => Func::Sum,
            "min" => Func::Min,
            "max" => Func::Max,
            "avg" => Func::Avg,
            "latest" => Func::Latest,
            other => {
                return Err(format!(
                    "`aggregates`: unknown function `{other}`; expected count, sum, min, max, avg or latest"
                ))
            }
        };
        if func != Func::Count && field.is_none() {
            return Err(format!(
                "`aggregates`: `{fname}` needs a field, like `{fname}(price)`"
            ));
        }
        let name = alias.unwrap_or_else(|| match &field {
            Some(f) => format!("{}_{f}", fname.to_ascii_lowercase()),
            None => "count".to_string(),
        });
        out.push(Agg { func, field, name });
    }
    if out.is_empty() {
        return Err("`aggregates` is empty; expected e.g. `count, sum(price) as total`".into());
    }
    Ok(out)
}

/// State key of one window of one group: `w` + group + NUL + start (big-endian, sign-flipped).
fn window_key(group: &str, start: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 10);
    k.push(b'w');
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    k
}

fn session_key(group: &str) -> Vec<u8> {
    let mut k = vec![b's'];
    k.extend_from_slice(group.as_bytes());
    k
}

/// A number, or a string holding one (`"12.5"`), as `f64`. Parsing the
/// number's text rounds as serde_json's `as_f64` does (both to nearest).
fn number(v: Option<Raw<'_>>) -> Option<f64> {
    let v = v?;
    match v.kind() {
        Kind::Number => v.as_f64(),
        Kind::String => v.as_str()?.parse().ok(),
        _ => None,
    }
}

/// A field's value as group text, exactly as the tree gave it: strings
/// unescaped, other JSON as serde_json writes it. An integer's text is
/// already that (serde_json writes `-0` as `-0.0`, so it goes through the
/// tree); floats, objects and arrays are converted, only this value.
fn group_text(raw: Raw<'_>) -> Option<String> {
    match raw.kind() {
        Kind::Null => None,
        Kind::String => raw.as_str().map(|s| s.into_owned()),
        Kind::Number
            if raw.bytes() != b"-0" && (raw.as_i64().is_some() || raw.as_u64().is_some()) =>
        {
            Some(raw.text().to_string())
        }
        _ => raw.to_value().ok().map(|v| v.to_string()),
    }
}

impl WindowAggregate {
    fn windows(&self, ts: i64) -> Vec<(i64, i64)> {
        match self.window {
            Window::Tumbling { size } => {
                let start = ts.div_euclid(size) * size;
                vec![(start, start + size)]
            }
            Window::Hopping { size, advance } => {
                // Every window [s, s+size) with s a multiple of `advance` that holds ts.
                let last = ts.div_euclid(advance) * advance;
                let mut out = Vec::new();
                let mut s = last;
                while s > ts - size {
                    out.push((s, s + size));
                    s -= advance;
                }
                out.reverse();
                out
            }
            Window::Session { .. } => Vec::new(),
        }
    }

    /// Folds one event into an aggregate state object.
    fn fold(&self, state: &mut Map<String, Value>, value: &JsonView<'_>) {
        for a in &self.aggs {
            let field_value = a.field.as_deref().and_then(|f| value.get(f));
            let slot = state.entry(a.name.clone()).or_insert(Value::Null);
            match a.func {
                // `count` counts events; `count(f)` those whose `f` is
                // present and not null, as SQL's COUNT(col).
                Func::Count => {
                    let counted = match &a.field {
                        None => true,
                        Some(_) => field_value.is_some_and(|v| !matches!(v.kind(), Kind::Null)),
                    };
                    if counted {
                        *slot = json!(slot.as_u64().unwrap_or(0) + 1);
                    } else if slot.is_null() {
                        *slot = json!(0);
                    }
                }
                Func::Sum => {
                    if let Some(x) = number(field_value) {
                        *slot = json!(slot.as_f64().unwrap_or(0.0) + x);
                    }
                }
                Func::Min => {
                    if let Some(x) = number(field_value) {
                        if slot.as_f64().is_none_or(|m| x < m) {
                            *slot = json!(x);
                        }
                    }
                }
                Func::Max => {
                    if let Some(x) = number(field_value) {
                        if slot.as_f64().is_none_or(|m| x > m) {
                            *slot = json!(x);
                        }
                    }
                }
                Func::Avg => {
                    if let Some(x) = number(field_value) {
                        let (sum, n) = match slot {
                            Value::Array(a) if a.len() == 2 => {
                                (a[0].as_f64().unwrap_or(0.0), a[1].as_f64().unwrap_or(0.0))
                            }
                            _ => (0.0, 0.0),
                        };
                        *slot = json!([sum + x, n + 1.0]);
                    }
                }
                Func::Latest => {
                    // Only this field becomes a tree (state is JSON maps).
                    if let Some(Ok(v)) = field_value.map(|v| v.to_value()) {
                        *slot = v;
                    }
                }
            }
        }
    }

    fn result(&self, group: &str, start: i64, end: i64, state: &Map<String, Value>) -> Value {
        let mut out = Map::new();
        if self.group_by.len() > 1 {
            // Several fields: the key is an object of them, as ksqlDB's
            // multi-column JSON key, and each is a column of the result too.
            let values = match serde_json::from_str::<Value>(group) {
                Ok(Value::Array(v)) => v,
                _ => Vec::new(),
            };
            let key: Map<String, Value> = self
                .group_by
                .iter()
                .cloned()
                .zip(values.into_iter().chain(std::iter::repeat(Value::Null)))
                .collect();
            for (f, v) in &key {
                out.insert(f.clone(), v.clone());
            }
            out.insert("key".into(), Value::Object(key));
        } else {
            out.insert("key".into(), json!(group));
        }
        out.insert("window_start".into(), json!(start));
        out.insert("window_end".into(), json!(end));
        for a in &self.aggs {
            let v = state.get(&a.name).cloned().unwrap_or(Value::Null);
            let v = match (a.func, v) {
                (Func::Avg, Value::Array(p)) if p.len() == 2 => {
                    let (s, n) = (p[0].as_f64().unwrap_or(0.0), p[1].as_f64().unwrap_or(0.0));
                    if n > 0.0 {
                        json!(s / n)
                    } else {
                        Value::Null
                    }
                }
                (Func::Count, Value::Null) => json!(0),
                (_, v) => v,
            };
            out.insert(a.name.clone(), v);
        }
        Value::Object(out)
    }

    fn emit_result(out: &mut Emitter<'_>, result: &Value, ts: i64) {
        let key = json!({
            "key": result["key"],
            "window_start": result["window_start"],
            "window_end": result["window_end"],
        })
        .to_string();
        let value = result.to_string();
        out.emit(&OutEvent {
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: Vec::new(),
            timestamp_ms: ts,
        });
    }

    fn load(host: &mut dyn Host, key: &[u8]) -> Map<String, Value> {
        host.get(key)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    }
}

/// The group of an event as text: the event key, the one `group_by`
/// field's text, or with several fields a JSON array of their values (JSON
/// escapes control characters, so the text holds no NUL for the state key).
fn group_of(
    group_by: &[String],
    event: &Event<'_>,
    value: &JsonView<'_>,
) -> Result<String, EventError> {
    let missing = |f: &str| EventError::reject(format!("no `{f}` field to group by"));
    match group_by {
        [] => Ok(event
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()),
        [f] => value.get(f).and_then(group_text).ok_or_else(|| missing(f)),
        fields => {
            let mut parts = Vec::with_capacity(fields.len());
            for f in fields {
                match value.get(f).map(|v| v.to_value()) {
                    Some(Ok(Value::Null)) | None => return Err(missing(f)),
                    Some(Ok(v)) => parts.push(v),
                    Some(Err(e)) => return Err(EventError::reject(format!("`{f}`: {e}"))),
                }
            }
            Ok(Value::Array(parts).to_string())
        }
    }
}

impl Processor for WindowAggregate {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&[
            "window",
            "size_ms",
            "advance_ms",
            "gap_ms",
            "group_by",
            "aggregates",
            "emit",
        ])?;
        let window = match params.get("window").unwrap_or("tumbling") {
            "tumbling" => Window::Tumbling {
                size: positive(params, "size_ms")?,
            },
            "hopping" => {
                let size = positive(params, "size_ms")?;
                let advance = positive(params, "advance_ms")?;
                if advance > size {
                    return Err(format!(
                        "`advance_ms` ({advance}) must not exceed `size_ms` ({size})"
                    ));
                }
                Window::Hopping { size, advance }
            }
            "session" => Window::Session {
                gap: positive(params, "gap_ms")?,
            },
            other => {
                return Err(format!(
                    "`window`: unknown `{other}`; expected tumbling, hopping or session"
                ))
            }
        };
        let emit = match params.get("emit").unwrap_or("close") {
            "close" => Emit::Close,
            "update" => Emit::Update,
            "both" => Emit::Both,
            other => {
                return Err(format!(
                    "`emit`: unknown `{other}`; expected close, update or both"
                ))
            }
        };
        Ok(Self {
            window,
            group_by: params
                .get("group_by")
                .map(|g| {
                    names::split(g, ',')
                        .into_iter()
                        .map(names::name)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| format!("`group_by`: {e}"))?
                .unwrap_or_default(),
            aggs: parse_aggs(params.get("aggregates").unwrap_or("count"))?,
            emit,
            parser: JsonParser::new(),
        })
    }

    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        if event.is_tombstone() {
            return Ok(());
        }
        let mut parser = std::mem::take(&mut self.parser);
        let result = self.process_view(event, out, host, &mut parser);
        self.parser = parser;
        result
    }

    fn on_timer(
        &mut self,
        timer: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        self.close(timer, out, host)
    }
}

impl WindowAggregate {
    /// One event, read through the zero-copy view: only the `group_by` and
    /// aggregated fields are looked up, no tree of the event is built.
    fn process_view(
        &self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
        parser: &mut JsonParser,
    ) -> Result<(), EventError> {
        let value = event.view(parser)?;
        let group = group_of(&self.group_by, event, &value)?;
        let ts = event.timestamp_ms();
        let updates = matches!(self.emit, Emit::Update | Emit::Both);
        if let Window::Session { gap } = self.window {
            let key = session_key(&group);
            let mut s = Self::load(host, &key);
            let start = s.get("_start").and_then(Value::as_i64);
            let end = s.get("_end").and_then(Value::as_i64);
            let (start, old_end) = match (start, end) {
                (Some(st), Some(en)) if ts <= en && ts >= st - gap => (st.min(ts), Some(en)),
                (Some(st), Some(en)) => {
                    // Outside the open session: that session is over; close
                    // it now rather than let its timer find this new one.
                    host.cancel_timer(&key, en);
                    if matches!(self.emit, Emit::Close | Emit::Both) {
                        Self::emit_result(out, &self.result(&group, st, en, &s), en);
                    }
                    s = Map::new();
                    (ts, None)
                }
                _ => {
                    s = Map::new();
                    (ts, None)
                }
            };
            let end = old_end.map_or(ts + gap, |e| e.max(ts + gap));
            if let Some(e) = old_end {
                host.cancel_timer(&key, e);
            }
            self.fold(&mut s, &value);
            s.insert("_start".into(), json!(start));
            s.insert("_end".into(), json!(end));
            host.put(&key, Value::Object(s.clone()).to_string().as_bytes(), None);
            host.register_timer(&key, end);
            if updates {
                Self::emit_result(out, &self.result(&group, start, end, &s), ts);
            }
            return Ok(());
        }
        for (start, end) in self.windows(ts) {
            let key = window_key(&group, start);
            let mut s = Self::load(host, &key);
            let fresh = s.is_empty();
            self.fold(&mut s, &value);
            host.put(&key, Value::Object(s.clone()).to_string().as_bytes(), None);
            if fresh {
                // Closes once the watermark reaches the (exclusive) end: no
                // event of this window can come after that.
                host.register_timer(&key, end);
            }
            if updates {
                Self::emit_result(out, &self.result(&group, start, end, &s), ts);
            }
        }
        Ok(())
    }

    /// A window's or session's timer: emit its result and free its state.
    fn close(
        &self,
        timer: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        let Some(key) = timer.key() else {
            return Ok(());
        };
        let s = Self::load(host, key);
        host.delete(key);
        if s.is_empty() {
            return Ok(());
        }
        let (group, start, end) = match key.first() {
            Some(b's') => (
                String::from_utf8_lossy(&key[1..]).into_owned(),
                s.get("_start").and_then(Value::as_i64).unwrap_or(0),
                s.get("_end").and_then(Value::as_i64).unwrap_or(0),
            ),
            _ => {
                // `w` + group + NUL + 8 bytes of start.
                let nul = key.len().saturating_sub(9);
                let group =
                    String::from_utf8_lossy(key.get(1..nul).unwrap_or_default()).into_owned();
                let mut b = [0u8; 8];
                if let Some(raw) = key.get(nul + 1..nul + 9) {
                    b.copy_from_slice(raw);
                }
                let start = (u64::from_be_bytes(b) ^ (1 << 63)) as i64;
                let size = match self.window {
                    Window::Tumbling { size } | Window::Hopping { size, .. } => size,
                    Window::Session { .. } => 0,
                };
                (group, start, start + size)
            }
        };
        if matches!(self.emit, Emit::Close | Emit::Both) {
            Self::emit_result(out, &self.result(&group, start, end, &s), end);
        }
        Ok(())
    }
}

sluice_sdk::export_processor!(WindowAggregate);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::Harness;

    fn values(outs: &[(Option<String>, Option<String>)]) -> Vec<Value> {
        outs.iter()
            .map(|(_, v)| sluice_sdk::testing::json_of(v))
            .collect()
    }

    #[test]
    fn tumbling_counts_close_when_the_watermark_passes() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "30000"),
            ("group_by", "cat"),
            (
                "aggregates",
                "count, sum(n) as total, avg(n), max(n), latest(name)",
            ),
        ])
        .expect("params");
        assert!(h
            .send("s", None, Some(r#"{"cat":"A","n":1,"name":"x"}"#), 1_000)
            .expect("ok")
            .is_empty());
        assert!(h
            .send("s", None, Some(r#"{"cat":"A","n":3,"name":"y"}"#), 29_999)
            .expect("ok")
            .is_empty());
        assert!(h
            .send("s", None, Some(r#"{"cat":"B","n":5}"#), 10_000)
            .expect("ok")
            .is_empty());
        // An event in the next window moves the watermark past the first one.
        let closed = values(
            &h.send("s", None, Some(r#"{"cat":"A","n":7}"#), 30_000)
                .expect("ok"),
        );
        assert_eq!(
            closed,
            vec![
                json!({"key":"A","window_start":0,"window_end":30000,"count":2,"total":4.0,"avg_n":2.0,"max_n":3.0,"latest_name":"y"}),
                json!({"key":"B","window_start":0,"window_end":30000,"count":1,"total":5.0,"avg_n":5.0,"max_n":5.0,"latest_name":null}),
            ]
        );
        let last = values(&h.advance(i64::MAX).expect("ok"));
        assert_eq!(last[0]["window_start"], 30000);
        assert_eq!(last[0]["count"], 1);
    }

    #[test]
    fn count_of_a_field_counts_values_that_are_not_null() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "10"),
            ("group_by", "g"),
            ("aggregates", "count, count(n), count(m) as ms"),
        ])
        .expect("params");
        for v in [
            r#"{"g":"a","n":1}"#,
            r#"{"g":"a","n":null}"#,
            r#"{"g":"a"}"#,
            r#"{"g":"a","n":0,"m":false}"#,
        ] {
            h.send("s", None, Some(v), 1).expect("ok");
        }
        h.send("s", None, Some(r#"{"g":"b"}"#), 1).expect("ok");
        let out = values(&h.advance(i64::MAX).expect("ok"));
        assert_eq!(
            out,
            vec![
                json!({"key":"a","window_start":0,"window_end":10,"count":4,"count_n":2,"ms":1}),
                json!({"key":"b","window_start":0,"window_end":10,"count":1,"count_n":0,"ms":0}),
            ]
        );
    }

    #[test]
    fn quoted_names_may_hold_commas_parentheses_and_spaces() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "10"),
            ("group_by", "`my region`, `a,b`"),
            (
                "aggregates",
                "count as `n (all)`, sum(`unit price`), max(`it``s`) as `top, eur`",
            ),
        ])
        .expect("params");
        h.send(
            "s",
            None,
            Some(r#"{"my region":"eu","a,b":1,"unit price":2,"it`s":5}"#),
            1,
        )
        .expect("ok");
        let out = values(&h.advance(i64::MAX).expect("ok"));
        assert_eq!(
            out,
            vec![
                json!({"my region":"eu","a,b":1,"key":{"my region":"eu","a,b":1},
                "window_start":0,"window_end":10,"n (all)":1,"sum_unit price":2.0,"top, eur":5.0})
            ]
        );
        let err = Harness::<WindowAggregate>::new(&[("size_ms", "10"), ("group_by", "`open")])
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("`group_by`") && err.contains("the backquote is not closed"),
            "{err}"
        );
    }

    #[test]
    fn several_group_fields_key_by_an_object_of_them() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "10"),
            ("group_by", "region, tier"),
            ("aggregates", "count, sum(n) as total"),
        ])
        .expect("params");
        for v in [
            r#"{"region":"eu","tier":1,"n":1}"#,
            r#"{"region":"eu","tier":2,"n":2}"#,
            r#"{"tier":1,"region":"eu","n":4}"#,
            r#"{"region":"e\u0000u","tier":1,"n":8}"#,
        ] {
            h.send("s", None, Some(v), 1).expect("ok");
        }
        let err = h
            .send("s", None, Some(r#"{"region":"eu","tier":null}"#), 1)
            .err()
            .unwrap_or_default();
        assert!(err.contains("no `tier` field"), "{err}");
        let outs = h.advance(i64::MAX).expect("ok");
        let mut got: Vec<(Value, Value)> = outs
            .iter()
            .map(|(k, v)| {
                (
                    sluice_sdk::testing::json_of(k),
                    sluice_sdk::testing::json_of(v),
                )
            })
            .collect();
        got.sort_by_key(|(k, _)| k.to_string());
        let row = |region: &str, tier: i64, count: i64, total: f64| {
            let key = json!({"region": region, "tier": tier});
            (
                json!({"key": key, "window_start": 0, "window_end": 10}),
                json!({"key": key, "region": region, "tier": tier, "window_start": 0, "window_end": 10, "count": count, "total": total}),
            )
        };
        let mut want = vec![
            row("eu", 1, 2, 5.0),
            row("eu", 2, 1, 2.0),
            row("e\u{0}u", 1, 1, 8.0),
        ];
        want.sort_by_key(|(k, _)| k.to_string());
        assert_eq!(got, want);
    }

    #[test]
    fn hopping_and_session_windows() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("window", "hopping"),
            ("size_ms", "10"),
            ("advance_ms", "5"),
            ("emit", "update"),
        ])
        .expect("params");
        let outs = values(&h.send("s", Some("k"), Some("{}"), 7).expect("ok"));
        let bounds: Vec<(i64, i64)> = outs
            .iter()
            .map(|v| {
                (
                    v["window_start"].as_i64().unwrap_or(-1),
                    v["window_end"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(bounds, vec![(0, 10), (5, 15)]);

        let mut h = Harness::<WindowAggregate>::new(&[("window", "session"), ("gap_ms", "100")])
            .expect("params");
        h.send("s", Some("u"), Some("{}"), 0).expect("ok");
        h.send("s", Some("u"), Some("{}"), 80).expect("ok");
        let closed = values(&h.send("s", Some("u"), Some("{}"), 500).expect("ok"));
        assert_eq!(
            closed,
            vec![json!({"key":"u","window_start":0,"window_end":180,"count":2})]
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |p: &[(&str, &str)]| Harness::<WindowAggregate>::new(p).err().unwrap_or_default();
        assert!(err(&[]).contains("size_ms"));
        assert!(err(&[("size_ms", "10"), ("aggregates", "median(x)")])
            .contains("unknown function `median`"));
        assert!(err(&[("size_ms", "10"), ("aggregates", "sum")]).contains("needs a field"));
        assert!(err(&[
            ("window", "hopping"),
            ("size_ms", "10"),
            ("advance_ms", "20")
        ])
        .contains("must not exceed"));
    }

    #[test]
    fn events_without_the_group_field_are_rejected() {
        let mut h = Harness::<WindowAggregate>::new(&[("size_ms", "10"), ("group_by", "cat")])
            .expect("params");
        let err = h
            .send("s", None, Some(r#"{"x":1}"#), 1)
            .err()
            .unwrap_or_default();
        assert!(err.contains("no `cat` field"), "{err}");
    }

    #[test]
    fn big_integers_keep_their_exact_value() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "10"),
            ("group_by", "g"),
            ("aggregates", "count, latest(id), latest(neg)"),
        ])
        .expect("params");
        h.send(
            "s",
            None,
            Some(r#"{"g":9007199254740993,"id":18446744073709551615,"neg":-9223372036854775808,"x":1.50}"#),
            1,
        )
        .expect("ok");
        let out = h.advance(i64::MAX).expect("ok");
        assert_eq!(out.len(), 1);
        // Key order follows serde_json's `preserve_order` feature, which a
        // workspace-wide test build may switch on; the numbers' text may not
        // change either way.
        let raw = out[0].1.as_deref().unwrap_or_default();
        for field in [
            r#""key":"9007199254740993""#,
            r#""latest_id":18446744073709551615"#,
            r#""latest_neg":-9223372036854775808"#,
            r#""count":1"#,
            r#""window_start":0"#,
            r#""window_end":10"#,
        ] {
            assert!(raw.contains(field), "{field} in {raw}");
        }
        assert_eq!(raw.matches(':').count(), 6, "{raw}");
    }

    #[test]
    fn duplicate_keys_read_the_last_occurrence() {
        let mut h = Harness::<WindowAggregate>::new(&[
            ("size_ms", "10"),
            ("group_by", "g"),
            ("aggregates", "sum(n), latest(n)"),
        ])
        .expect("params");
        h.send("s", None, Some(r#"{"g":"a","n":1,"g":"b","n":2}"#), 1)
            .expect("ok");
        let out = values(&h.advance(i64::MAX).expect("ok"));
        assert_eq!(
            out,
            vec![json!({"key":"b","window_start":0,"window_end":10,"sum_n":2.0,"latest_n":2})]
        );
    }

    #[test]
    fn group_text_is_what_the_tree_gave() {
        for text in [
            r#""a\u00e9""#,
            "12",
            "-12",
            "-0",
            "1.50",
            "1e2",
            "18446744073709551615",
            "18446744073709551616",
            "false",
            r#"{"b": 1, "a": [2]}"#,
            "null",
        ] {
            let tree = match serde_json::from_str::<Value>(text).expect("json") {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            };
            let view = JsonView::parse(text.as_bytes()).expect("json");
            assert_eq!(group_text(view.root()), tree, "{text}");
        }
    }

    #[test]
    fn hostile_values_are_rejected_with_a_reason() {
        let mut h = Harness::<WindowAggregate>::new(&[("size_ms", "10")]).expect("params");
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for bad in [deep.as_str(), r#"{"a":1"#, r#"{"a":"\udc00"}"#, "{} 1"] {
            let err = h
                .send("s", Some("k"), Some(bad), 1)
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("value is not valid JSON: "), "{err}");
        }
        assert!(h.host.state.is_empty(), "nothing counted");
        let err = h
            .send("s", Some("k"), Some(&deep), 1)
            .err()
            .unwrap_or_default();
        assert!(err.contains("recursion limit exceeded"), "{err}");
    }
}
