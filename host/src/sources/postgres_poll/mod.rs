//! `postgres-poll` source: reads new rows of PostgreSQL tables by querying
//! them on an interval, like Kafka Connect's JDBC source, for databases where
//! the pipeline has no replication rights. Modes:
//!
//! - `incrementing`: rows whose `incrementing_column` is above the last seen;
//! - `timestamp`: rows whose `timestamp_column` is after the last seen;
//! - `timestamp+incrementing`: rows after the last seen (timestamp, id) pair,
//!   so rows updated in the same instant are neither lost nor repeated.
//!
//! Rows come out as JSON objects built by the server (`row_to_json`), so the
//! type mapping is PostgreSQL's own. The position (last value per table) is
//! checkpointed once every sink has the rows, and a restart resumes after it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::clients::postgres::{classify, connect, PgTarget};
use crate::clients::tls::TlsOptions;
use crate::connector::{
    parse_source, ConfigIssue, ErrorClass, SourceConfig, SourceContext, SourceKind,
};
use crate::connector::{LagUnit, Polled, Progress, Source};
use crate::event::BatchBuilder;

/// The most rows sharing one timestamp that `mode: timestamp` reads as one
/// page (they cannot be split: the next read starts after the timestamp).
const MAX_TIED_ROWS: usize = 100_000;

/// Configuration of a `postgres-poll` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresPollConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Tables to poll (`name` or `schema.name`).
    pub tables: Vec<String>,
    /// `incrementing`, `timestamp` or `timestamp+incrementing`.
    pub mode: PollMode,
    /// Strictly increasing column (a serial or identity id) for the
    /// `incrementing` modes.
    pub incrementing_column: Option<String>,
    /// Last-modified timestamp column for the `timestamp` modes.
    pub timestamp_column: Option<String>,
    /// Wait between two passes over the tables, in ms.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    /// Only read rows whose timestamp is at least this old, in ms, so rows of
    /// transactions still in flight are not skipped (timestamp modes).
    #[serde(default)]
    pub timestamp_delay_ms: u64,
    /// Stream name = prefix + table name (`P_` gives `P_USERS` with
    /// `stream_case: upper`; `postgres-` gives `postgres-customers`).
    #[serde(default)]
    pub stream_prefix: String,
    /// Case of the table name in the stream name: `as-is` (default), `upper`
    /// or `lower`.
    #[serde(default)]
    pub stream_case: StreamCase,
    /// End the source after a pass that finds no new rows (a batch run: the
    /// pipeline drains, checkpoints and exits).
    #[serde(default)]
    pub stop_when_idle: bool,
    /// Connect timeout, in ms.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// TLS: `{mode, ca_file, cert_file, key_file, server_name}` (see
    /// docs/tls.md); libpq's `sslmode`/`sslrootcert`/... in `url` work too.
    pub tls: Option<TlsOptions>,
    /// File holding the password (its first line), instead of one in `url`.
    pub password_file: Option<PathBuf>,
}

fn default_poll_interval() -> u64 {
    5000
}
fn default_connect_timeout() -> u64 {
    10_000
}

/// Which rows are new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PollMode {
    /// By an increasing id column.
    #[serde(rename = "incrementing")]
    Incrementing,
    /// By a last-modified timestamp column.
    #[serde(rename = "timestamp")]
    Timestamp,
    /// By (timestamp, id).
    #[serde(rename = "timestamp+incrementing")]
    TimestampIncrementing,
}

impl PollMode {
    fn incrementing(self) -> bool {
        self != PollMode::Timestamp
    }
    fn timestamp(self) -> bool {
        self != PollMode::Incrementing
    }
}

/// Case of table names in stream names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamCase {
    /// As written in `tables`.
    #[default]
    AsIs,
    /// Upper case.
    Upper,
    /// Lower case.
    Lower,
}

impl PostgresPollConfig {
    /// The server to poll, TLS and password resolved (files read).
    pub fn target(&self) -> Result<PgTarget, ConfigIssue> {
        PgTarget::new(&self.url, self.tls.as_ref(), self.password_file.as_deref())
    }

    /// Cross-field checks serde cannot express.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(ConfigIssue::at(
                "url",
                "expected a postgres:// URL, e.g. `postgres://user:password@host:5432/db`",
            ));
        }
        self.target()?;
        if self.tables.is_empty() || self.tables.iter().any(|t| t.trim().is_empty()) {
            return Err(ConfigIssue::at(
                "tables",
                "expected a list of table names, e.g. [users]",
            ));
        }
        if self.mode.incrementing() && self.incrementing_column.is_none() {
            return Err(ConfigIssue::at(
                "incrementing_column",
                "required by this mode; expected the increasing id column",
            ));
        }
        if self.mode.timestamp() && self.timestamp_column.is_none() {
            return Err(ConfigIssue::at(
                "timestamp_column",
                "required by this mode; expected the last-modified timestamp column",
            ));
        }
        if !self.mode.incrementing() && self.incrementing_column.is_some() {
            return Err(ConfigIssue::at(
                "incrementing_column",
                "only used with `mode: incrementing` or `timestamp+incrementing`",
            ));
        }
        if !self.mode.timestamp() && self.timestamp_column.is_some() {
            return Err(ConfigIssue::at(
                "timestamp_column",
                "only used with `mode: timestamp` or `timestamp+incrementing`",
            ));
        }
        Ok(())
    }

    /// The stream name of `table`.
    pub fn stream_of(&self, table: &str) -> String {
        let bare = table.rsplit('.').next().unwrap_or(table);
        let bare = match self.stream_case {
            StreamCase::AsIs => bare.to_string(),
            StreamCase::Upper => bare.to_uppercase(),
            StreamCase::Lower => bare.to_lowercase(),
        };
        format!("{}{bare}", self.stream_prefix)
    }
}

fn q(name: &str) -> String {
    crate::clients::sql::quote_ident(name, '"')
}

/// One polled table: its queries and last position.
struct Table {
    /// As configured (the position's key).
    name: String,
    stream: String,
    /// `SELECT … FROM t` up to the WHERE clause.
    select: String,
    from: String,
    inc_col: Option<(String, String)>,
    ts_col: Option<(String, String)>,
    last_inc: Option<String>,
    last_ts: Option<String>,
    /// Rows not read yet, as last counted (0 once a read came back short).
    unread_rows: u64,
    /// When `unread_rows` was last counted: a backlog is counted at most
    /// every [`COUNT_EVERY`], so measuring costs the database little.
    counted_at: Option<Instant>,
}

impl Table {
    /// The `WHERE` clause selecting the rows not read yet (empty on the
    /// first read), its parameters, and the columns they are read in order of.
    fn unread(&self, delay_ms: u64) -> (String, Vec<String>, Vec<String>) {
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<String> = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let bound = |params: &mut Vec<String>, v: &str, ty: &str| {
            params.push(v.to_string());
            format!("${}::text::{ty}", params.len())
        };
        if let Some((c, ty)) = &self.ts_col {
            // Timestamps of `timestamp` columns compare in UTC (set at connect).
            conds.push(format!(
                "t.{} < now() - interval '{} milliseconds'",
                q(c),
                delay_ms
            ));
            order.push(format!("t.{}", q(c)));
            match (&self.inc_col, &self.last_ts, &self.last_inc) {
                (Some((ic, ity)), Some(ts), Some(inc)) => {
                    let a = bound(&mut params, ts, ty);
                    let b = bound(&mut params, inc, ity);
                    conds.push(format!("(t.{}, t.{}) > ({a}, {b})", q(c), q(ic)));
                }
                (_, Some(ts), _) => {
                    let a = bound(&mut params, ts, ty);
                    conds.push(format!("t.{} > {a}", q(c)));
                }
                _ => {}
            }
        }
        if let Some((c, ty)) = &self.inc_col {
            if self.ts_col.is_none() {
                if let Some(inc) = &self.last_inc {
                    let a = bound(&mut params, inc, ty);
                    conds.push(format!("t.{} > {a}", q(c)));
                }
            }
            order.push(format!("t.{}", q(c)));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (filter, params, order)
    }
}

/// A running `postgres-poll` source.
pub struct PostgresPollSource {
    config: PostgresPollConfig,
    origin: Arc<str>,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    tables: Vec<Table>,
    /// Table the next poll reads.
    current: usize,
    /// Rows found in the current pass.
    found: u64,
    /// Rows emitted since start (positions of rows without a numeric id).
    seq: u64,
    next_pass: Instant,
    progress: Arc<Progress>,
}

/// How often a table with a backlog has its unread rows counted.
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// Counting stops here: the count scans the backlog, so it is bounded.
const COUNT_AT_MOST: u64 = 10_000_000;

impl PostgresPollSource {
    /// A source per `config`, named `origin`, measuring its lag into `progress`.
    pub fn new(
        config: PostgresPollConfig,
        origin: Arc<str>,
        progress: Arc<Progress>,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the PostgreSQL client runtime")?;
        Ok(Self {
            config,
            origin,
            rt,
            client: None,
            tables: Vec::new(),
            current: 0,
            found: 0,
            seq: 0,
            next_pass: Instant::now(),
            progress,
        })
    }

    fn connect(&mut self) -> Result<(), ErrorClass> {
        self.client = None;
        let target = self
            .config
            .target()
            .map_err(|e| ErrorClass::Fatal(e.to_string()))?;
        let client = connect(
            &self.rt,
            &target,
            Duration::from_millis(self.config.connect_timeout_ms),
        )?;
        self.rt
            .block_on(client.batch_execute("SET TIME ZONE 'UTC'"))
            .map_err(|e| classify(&e))?;
        self.client = Some(client);
        Ok(())
    }

    /// Looks a table up and builds its query.
    fn describe(&self, client: &Client, name: &str) -> Result<Table> {
        let (schema, bare) = match name.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, name),
        };
        let qualified = match schema {
            Some(s) => format!("{}.{}", q(s), q(bare)),
            None => q(bare),
        };
        let found = self
            .rt
            .block_on(client.query_opt("SELECT to_regclass($1::text)::oid::int8", &[&qualified]))
            .with_context(|| format!("cannot look up table `{name}`"))?
            .and_then(|r| r.get::<_, Option<i64>>(0));
        let Some(oid) = found else {
            bail!(
                "table `{name}` does not exist (or this user cannot see it); check `tables` and the database in `url`"
            );
        };
        let oid = u32::try_from(oid).unwrap_or_default();
        let column_type = |col: &str| -> Result<String> {
            let row = self
                .rt
                .block_on(client.query_opt(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                    &[&oid, &col],
                ))
                .with_context(|| format!("cannot read the columns of `{name}`"))?;
            match row {
                Some(r) => Ok(r.get::<_, String>(0)),
                None => bail!("table `{name}` has no column `{col}`"),
            }
        };
        let inc_col = match &self.config.incrementing_column {
            Some(c) if self.config.mode.incrementing() => Some((c.clone(), column_type(c)?)),
            _ => None,
        };
        let ts_col = match &self.config.timestamp_column {
            Some(c) if self.config.mode.timestamp() => {
                let ty = column_type(c)?;
                if !ty.starts_with("timestamp") && ty != "date" {
                    bail!("column `{c}` of `{name}` is `{ty}`; `timestamp_column` must be a timestamp, timestamptz or date column");
                }
                Some((c.clone(), ty))
            }
            _ => None,
        };
        let pk: Vec<String> = self
            .rt
            .block_on(client.query(
                "SELECT a.attname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1 AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
                &[&oid],
            ))
            .with_context(|| format!("cannot read the primary key of `{name}`"))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let key_expr = match pk.as_slice() {
            [] => match &inc_col {
                Some((c, _)) => format!("t.{}::text", q(c)),
                None => "NULL::text".to_string(),
            },
            [one] => format!("t.{}::text", q(one)),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|c| format!("'{}', t.{}", c.replace('\'', "''"), q(c)))
                    .collect();
                format!("json_build_object({})::text", parts.join(", "))
            }
        };
        let inc_expr = inc_col
            .as_ref()
            .map_or("NULL::text".into(), |(c, _)| format!("t.{}::text", q(c)));
        let (ts_expr, ms_expr) =
            ts_col
                .as_ref()
                .map_or(("NULL::text".into(), "NULL::int8".into()), |(c, _)| {
                    (
                        format!("t.{}::text", q(c)),
                        format!("(extract(epoch from t.{}) * 1000)::int8", q(c)),
                    )
                });
        Ok(Table {
            name: name.to_string(),
            stream: self.config.stream_of(name),
            select: format!(
                "SELECT row_to_json(t)::text, {key_expr}, {inc_expr}, {ts_expr}, {ms_expr}"
            ),
            from: format!("FROM {qualified} AS t"),
            inc_col,
            ts_col,
            last_inc: None,
            last_ts: None,
            unread_rows: 0,
            counted_at: None,
        })
    }

    /// Reads up to `max` new rows of table `i`, and whether the query filled
    /// its page (so more rows may be waiting, even if some were held back).
    fn read(
        &mut self,
        i: usize,
        max: usize,
    ) -> Result<(Vec<tokio_postgres::Row>, bool), ErrorClass> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| ErrorClass::Retry("not connected".into()))?;
        let t = &self.tables[i];
        let (filter, params, order) = t.unread(self.config.timestamp_delay_ms);
        let sql = format!(
            "{} {}{filter} ORDER BY {} LIMIT {}",
            t.select,
            t.from,
            order.join(", "),
            max.max(1)
        );
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let mut rows = self
            .rt
            .block_on(client.query(&sql, &refs))
            .map_err(|e| classify(&e))?;
        let full = rows.len() >= max.max(1);
        // Timestamp only: rows sharing the last timestamp may continue past
        // the limit; leave them all for the next read (which starts after the
        // last kept timestamp), or read them all when the whole page shares it.
        if t.inc_col.is_none() && rows.len() >= max.max(1) {
            let ts_of = |r: &tokio_postgres::Row| r.get::<_, Option<String>>(3);
            let last = rows.last().and_then(ts_of);
            let first = rows.first().and_then(ts_of);
            if last == first {
                if let (Some((c, ty)), Some(ts)) = (&t.ts_col, last) {
                    // Bounded: the rows are held together in one batch.
                    let sql = format!(
                        "{} {} WHERE t.{} = $1::text::{ty} LIMIT {}",
                        t.select,
                        t.from,
                        q(c),
                        MAX_TIED_ROWS + 1
                    );
                    rows = self
                        .rt
                        .block_on(client.query(&sql, &[&ts]))
                        .map_err(|e| classify(&e))?;
                    if rows.len() > MAX_TIED_ROWS {
                        return Err(ErrorClass::Fatal(format!(
                            "table `{}` has more than {MAX_TIED_ROWS} rows whose `{c}` is {ts}; `mode: timestamp` reads the rows of one timestamp together and cannot page through that many: use `mode: timestamp+incrementing` with an increasing id column",
                            t.name
                        )));
                    }
                }
            } else {
                while rows.len() > 1 && rows.last().and_then(ts_of) == last {
                    rows.pop();
                }
            }
        }
        Ok((rows, full))
    }

    /// Counts table `i`'s unread rows when it has a backlog and was not
    /// counted lately, and reports the sum over the tables as the lag.
    fn measure_lag(&mut self, i: usize, read: usize, full: bool) {
        let t = &mut self.tables[i];
        if !full {
            t.unread_rows = 0;
        } else if t.counted_at.is_some_and(|at| at.elapsed() < COUNT_EVERY) {
            // Between counts, what was read since is no longer behind.
            t.unread_rows = t.unread_rows.saturating_sub(read as u64);
        } else {
            t.counted_at = Some(Instant::now());
            let (filter, params, _) = t.unread(self.config.timestamp_delay_ms);
            let sql = format!(
                "SELECT count(*) FROM (SELECT 1 {}{filter} LIMIT {COUNT_AT_MOST}) AS unread",
                t.from
            );
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let counted = self
                .client
                .as_ref()
                .map(|c| self.rt.block_on(c.query_one(&sql, &refs)));
            match counted {
                Some(Ok(row)) => t.unread_rows = row.get::<_, i64>(0).max(0) as u64,
                // A failed count costs the measurement, never the rows: the
                // next read reports the connection if it is gone.
                Some(Err(e)) => {
                    tracing::debug!(source = %self.origin, table = %t.name, "counting unread rows failed: {e}")
                }
                None => {}
            }
        }
        let lag = self.tables.iter().map(|t| t.unread_rows).sum();
        self.progress.set_lag(lag, LagUnit::Rows);
    }
}

impl Source for PostgresPollSource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            match self.connect() {
                Ok(()) => break,
                Err(ErrorClass::Retry(m)) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(source = %self.origin, attempt, "{m}; retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(ErrorClass::Retry(m)) => bail!("{m} (gave up after {} attempts)", attempt + 1),
                Err(e) => bail!("{e}"),
            }
        }
        let Some(client) = self.client.take() else {
            bail!("not connected");
        };
        let described: Result<Vec<Table>> = self
            .config
            .tables
            .iter()
            .map(|name| self.describe(&client, name))
            .collect();
        self.client = Some(client);
        self.tables = described?;
        let saved = position.and_then(|p| p.get("tables"));
        for t in &mut self.tables {
            let Some(p) = saved.and_then(|s| s.get(&t.name)) else {
                continue;
            };
            let text = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            t.last_inc = p.get("incrementing").and_then(text);
            t.last_ts = p.get("timestamp").and_then(text);
        }
        self.next_pass = Instant::now();
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let now = Instant::now();
        if now < self.next_pass {
            // Short naps keep barriers and shutdown prompt.
            std::thread::sleep((self.next_pass - now).min(Duration::from_millis(100)));
            return Ok(Polled::default());
        }
        if self.tables.is_empty() {
            return Ok(Polled {
                done: true,
                ..Polled::default()
            });
        }
        let i = self.current;
        let (rows, full) = match self.read(i, max) {
            Ok(read) => read,
            Err(ErrorClass::Retry(m)) => {
                tracing::warn!(source = %self.origin, table = %self.tables[i].name, "{m}; reconnecting");
                std::thread::sleep(Duration::from_millis(500));
                if let Err(e) = self.connect() {
                    tracing::warn!(source = %self.origin, "reconnect failed: {e}");
                }
                return Ok(Polled::default());
            }
            Err(e) => bail!("polling table `{}`: {e}", self.tables[i].name),
        };
        let read = rows.len();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let t = &mut self.tables[i];
        let mut out = BatchBuilder::new(&t.stream, self.origin.clone(), rows.len());
        for row in &rows {
            let value: String = row.get(0);
            let key: Option<String> = row.get(1);
            let inc: Option<String> = row.get(2);
            let ts: Option<String> = row.get(3);
            let ms: Option<i64> = row.get(4);
            if inc.is_some() {
                t.last_inc = inc;
            }
            if ts.is_some() {
                t.last_ts = ts;
            }
            // Positions are per source; the row's id is the natural one.
            let position = t
                .last_inc
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(self.seq);
            out.push(
                key.as_deref().map(str::as_bytes),
                Some(value.as_bytes()),
                &[],
                ms.unwrap_or(now_ms),
                position,
            );
            self.found += 1;
            self.seq += 1;
        }
        // After the positions moved past this page's rows.
        self.measure_lag(i, read, full);
        if !full {
            // This table is caught up; on to the next, or end the pass.
            self.current += 1;
            if self.current >= self.tables.len() {
                self.current = 0;
                let idle = self.found == 0 && rows.is_empty();
                self.found = 0;
                if idle && self.config.stop_when_idle {
                    return Ok(Polled {
                        batch: None,
                        malformed: Vec::new(),
                        done: true,
                    });
                }
                self.next_pass =
                    Instant::now() + Duration::from_millis(self.config.poll_interval_ms);
            }
        }
        Ok(Polled {
            batch: (!out.is_empty()).then(|| out.finish()),
            malformed: Vec::new(),
            done: false,
        })
    }

    fn position(&self) -> Value {
        let mut tables = BTreeMap::new();
        for t in &self.tables {
            let mut p = serde_json::Map::new();
            if let Some(inc) = &t.last_inc {
                let v = inc
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(inc.clone()));
                p.insert("incrementing".into(), v);
            }
            if let Some(ts) = &t.last_ts {
                p.insert("timestamp".into(), Value::String(ts.clone()));
            }
            tables.insert(t.name.clone(), Value::Object(p));
        }
        json!({ "tables": tables })
    }
}

/// The `postgres-poll` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "postgres-poll",
    summary: "new rows of PostgreSQL tables, by polling an incrementing or timestamp column",
    parse: parse_source::<PostgresPollConfig>,
};

impl SourceConfig for PostgresPollConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::postgres_tls::endpoints(&self.url)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        PostgresPollConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        if let Some(tls) = &mut self.tls {
            tls.resolve_paths(base);
        }
        if let Some(p) = &mut self.password_file {
            *p = base.join(&*p);
        }
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(PostgresPollSource::new(
            self.clone(),
            std::sync::Arc::from(cx.name),
            cx.progress,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: Value) -> PostgresPollConfig {
        serde_json::from_value(v).expect("config")
    }

    #[test]
    fn stream_names_take_prefix_and_case_and_drop_the_schema() {
        let c = config(
            json!({"url": "postgres://h/db", "tables": ["public.users"], "mode": "incrementing",
            "incrementing_column": "index", "stream_prefix": "P_", "stream_case": "upper"}),
        );
        assert_eq!(c.stream_of("public.users"), "P_USERS");
        let c = config(
            json!({"url": "postgres://h/db", "tables": ["customers"], "mode": "timestamp",
            "timestamp_column": "dt_update", "stream_prefix": "postgres-"}),
        );
        assert_eq!(c.stream_of("customers"), "postgres-customers");
        assert!(c.check().is_ok());
    }

    #[test]
    fn modes_need_their_columns_and_only_those() {
        let field = config(
            json!({"url": "postgres://h/db", "tables": ["t"], "mode": "timestamp+incrementing",
            "timestamp_column": "ts"}),
        )
        .check()
        .expect_err("missing incrementing column")
        .field;
        assert_eq!(field, "incrementing_column");
        let field = config(
            json!({"url": "postgres://h/db", "tables": ["t"], "mode": "incrementing",
            "incrementing_column": "id", "timestamp_column": "ts"}),
        )
        .check()
        .expect_err("timestamp column unused")
        .field;
        assert_eq!(field, "timestamp_column");
        let field = config(
            json!({"url": "mysql://h/db", "tables": ["t"], "mode": "incrementing",
            "incrementing_column": "id"}),
        )
        .check()
        .expect_err("wrong scheme")
        .field;
        assert_eq!(field, "url");
    }
}
