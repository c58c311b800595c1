//! What the `postgres` and `mysql` sinks share: configuration, turning
//! events into rows, type inference for new columns, table creation and
//! evolution, batching into transactions, retries, and isolating the rows a
//! database refuses. Each database supplies a [`Backend`] that speaks its SQL.
//!
//! A batch of buffered rows is written in one transaction, as few statements
//! as possible (consecutive rows of one table with the same operation and the
//! same fields share a statement). When the database refuses a statement for a
//! row-level reason (constraint, bad value), the transaction is rolled back and
//! the rows are written again one by one, each under a savepoint: the refused
//! ones go to the dead-letter destination with the database's message and the
//! others are committed. A lost connection rolls back on its own; the sink
//! reconnects with backoff and writes the whole transaction again.

mod config;

pub use config::{SqlSinkConfig, WriteMode};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::connector::{Backoff, ErrorClass, Rejected, Sink};
use crate::event::Batch;

/// A column type the sink chooses for a new column from JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inferred {
    /// `true` / `false`.
    Bool,
    /// Integral numbers that fit in 64 bits.
    Int,
    /// Other numbers.
    Float,
    /// Strings (and fields that were only ever null).
    Text,
    /// Objects and arrays.
    Json,
}

impl Inferred {
    /// The type for `v`, `None` for null.
    pub fn of(v: &Value) -> Option<Inferred> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(_) => Inferred::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => Inferred::Int,
            Value::Number(_) => Inferred::Float,
            Value::String(_) => Inferred::Text,
            Value::Array(_) | Value::Object(_) => Inferred::Json,
        })
    }

    /// The type that holds both (integers widen to floats; anything else
    /// mixed becomes text).
    fn merge(self, other: Inferred) -> Inferred {
        match (self, other) {
            (a, b) if a == b => a,
            (Inferred::Int, Inferred::Float) | (Inferred::Float, Inferred::Int) => Inferred::Float,
            _ => Inferred::Text,
        }
    }
}

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// INSERT.
    Insert,
    /// INSERT or UPDATE on the key.
    Upsert,
    /// DELETE by key.
    Delete,
}

/// A table name, with its schema (PostgreSQL) or database (MySQL) when given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// Schema or database.
    pub schema: Option<String>,
    /// Table.
    pub name: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One row to write, and the event it came from.
#[derive(Debug, Clone)]
pub struct Row {
    batch: Arc<Batch>,
    index: usize,
    table: TableRef,
    /// What it does.
    pub op: Op,
    /// Column values: the event's fields (for a delete, only the key columns).
    pub fields: Map<String, Value>,
}

/// The database-specific half of a SQL sink.
pub trait Backend: Send {
    /// Connects (or reconnects), replacing any previous connection.
    fn connect(&mut self) -> Result<(), ErrorClass>;
    /// True when column names compare without regard to case.
    fn case_insensitive(&self) -> bool;
    /// The table's column names, `None` when it does not exist.
    fn columns(&mut self, table: &TableRef) -> Result<Option<Vec<String>>, ErrorClass>;
    /// Creates `table` with `columns`, with `key` as primary key when not empty.
    fn create_table(
        &mut self,
        table: &TableRef,
        columns: &[(String, Inferred)],
        key: &[String],
    ) -> Result<(), ErrorClass>;
    /// Adds a nullable column.
    fn add_column(&mut self, table: &TableRef, name: &str, ty: Inferred) -> Result<(), ErrorClass>;
    /// Starts a transaction.
    fn begin(&mut self) -> Result<(), ErrorClass>;
    /// Commits it.
    fn commit(&mut self) -> Result<(), ErrorClass>;
    /// Rolls it back (best effort: a lost connection rolls back by itself).
    fn rollback(&mut self);
    /// Runs `sql` (savepoint handling) inside the transaction.
    fn execute(&mut self, sql: &str) -> Result<(), ErrorClass>;
    /// Writes `rows` (all of `table`, all doing `op`, all with exactly the
    /// fields `columns`) in one statement.
    fn write(
        &mut self,
        table: &TableRef,
        op: Op,
        columns: &[String],
        key: &[String],
        rows: &[&Row],
    ) -> Result<(), ErrorClass>;
    /// The most rows one statement may carry with `columns` fields each.
    fn max_rows(&self, columns: usize) -> usize;
}

/// A SQL table sink over a [`Backend`].
pub struct SqlSink<B: Backend> {
    config: SqlSinkConfig,
    name: String,
    backend: B,
    buffer: Vec<Row>,
    /// Known columns per table (exact names as in the database).
    tables: HashMap<TableRef, Vec<String>>,
    retry: Backoff,
}

impl<B: Backend> SqlSink<B> {
    /// A sink named `name` writing through `backend`.
    pub fn new(config: SqlSinkConfig, name: &str, backend: B) -> Self {
        let retry = Backoff::from_millis(config.initial_backoff_ms, config.max_backoff_ms);
        Self {
            config,
            name: name.to_string(),
            backend,
            buffer: Vec::new(),
            tables: HashMap::new(),
            retry,
        }
    }

    fn table_ref(&self, stream: &str) -> TableRef {
        TableRef {
            schema: self.config.schema.clone(),
            name: self.config.table_for(stream),
        }
    }

    fn backoff(&mut self, attempt: u32) -> Duration {
        self.retry.delay(attempt)
    }

    /// Connects (bounded retries for an unreachable server; none for refused
    /// credentials) and checks a fixed table exists or may be created.
    pub fn open(&mut self) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.backend.connect() {
                Ok(()) => break,
                Err(ErrorClass::Retry(m)) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(sink = %self.name, attempt, "cannot connect: {m}; retrying");
                    std::thread::sleep(self.backoff(attempt));
                }
                Err(ErrorClass::Retry(m)) => bail!("{m} (gave up after {} attempts)", attempt + 1),
                Err(e) => bail!("{e}"),
            }
        }
        if !self.config.table.contains("{stream}") {
            let table = self.table_ref("");
            match self.backend.columns(&table) {
                Ok(Some(cols)) => {
                    self.tables.insert(table, cols);
                }
                Ok(None) if self.config.auto_create => {}
                Ok(None) => {
                    bail!("table `{table}` does not exist; create it or set `auto_create: true`")
                }
                Err(e) => bail!("cannot read the columns of table `{table}`: {e}"),
            }
        }
        Ok(())
    }

    /// Turns event `index` into a row, or says why it cannot be one.
    fn row(&self, batch: &Arc<Batch>, index: usize) -> Result<Option<Row>, String> {
        let Some(event) = batch.get(index) else {
            return Err("event missing from its batch".into());
        };
        let table = self.table_ref(batch.stream());
        let fields = match event.value {
            None => {
                if !self.config.delete_on_tombstone {
                    return Ok(None);
                }
                if self.config.key_fields.is_empty() {
                    return Err(
                        "a tombstone (null value) deletes by key, but the sink has no `key_fields`"
                            .into(),
                    );
                }
                Map::new()
            }
            Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("the value is not a JSON object, so it is not a row".into()),
                Err(e) => return Err(format!("the value is not valid JSON: {e}")),
            },
        };
        let op = match (event.value, self.config.mode) {
            (None, _) => Op::Delete,
            (Some(_), WriteMode::Insert) => Op::Insert,
            (Some(_), WriteMode::Upsert) => Op::Upsert,
        };
        let mut fields = fields;
        if !self.config.key_fields.is_empty() {
            let key: Option<Value> = event.key.map(|k| {
                serde_json::from_slice(k)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(k).into_owned()))
            });
            for k in &self.config.key_fields {
                if fields.get(k).is_some_and(|v| !v.is_null()) {
                    continue;
                }
                let from_key = match &key {
                    Some(Value::Object(m)) => m.get(k).cloned(),
                    Some(v @ (Value::String(_) | Value::Number(_)))
                        if self.config.key_fields.len() == 1 =>
                    {
                        Some(v.clone())
                    }
                    _ => None,
                };
                match from_key {
                    Some(v) if !v.is_null() => {
                        fields.insert(k.clone(), v);
                    }
                    _ if op == Op::Insert => {}
                    _ => {
                        return Err(format!(
                            "key column `{k}` has no value: not in the event's value nor its key"
                        ))
                    }
                }
            }
            if op == Op::Delete {
                fields.retain(|k, _| self.config.key_fields.contains(k));
            }
        }
        Ok(Some(Row {
            batch: batch.clone(),
            index,
            table,
            op,
            fields,
        }))
    }

    /// Creates missing tables and columns for `rows`; rows that need a column
    /// the sink may not add are returned as refused.
    fn prepare_schema(&mut self, rows: &[Row]) -> Result<Vec<(usize, String)>, ErrorClass> {
        let mut by_table: BTreeMap<&TableRef, Vec<usize>> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            by_table.entry(&r.table).or_default().push(i);
        }
        let mut refused = Vec::new();
        for (table, idx) in by_table {
            // Field types in first-seen order.
            let mut order: Vec<&str> = Vec::new();
            let mut types: HashMap<&str, Option<Inferred>> = HashMap::new();
            for &i in &idx {
                for (k, v) in &rows[i].fields {
                    let t = Inferred::of(v);
                    match types.get_mut(k.as_str()) {
                        None => {
                            order.push(k);
                            types.insert(k, t);
                        }
                        Some(slot) => {
                            *slot = match (*slot, t) {
                                (Some(a), Some(b)) => Some(a.merge(b)),
                                (a, b) => a.or(b),
                            }
                        }
                    }
                }
            }
            let columns = match self.tables.get(table) {
                Some(c) => Some(c.clone()),
                None => self.backend.columns(table)?,
            };
            let columns = match columns {
                Some(c) => c,
                None => {
                    if !self.config.auto_create {
                        return Err(ErrorClass::Fatal(format!(
                            "table `{table}` does not exist; create it or set `auto_create: true`"
                        )));
                    }
                    let cols = new_table_columns(
                        &order,
                        &types,
                        &self.config.key_fields,
                        self.backend.case_insensitive(),
                    );
                    tracing::info!(sink = %self.name, %table, columns = cols.len(), "creating table");
                    match self
                        .backend
                        .create_table(table, &cols, &self.config.key_fields)
                    {
                        Ok(()) => {}
                        // Two writers creating the same table at once: PostgreSQL's
                        // IF NOT EXISTS can still fail on its catalog's unique index.
                        // Fine if the table is there now; read back below.
                        Err(ErrorClass::Rejected(m)) => {
                            if self.backend.columns(table)?.is_none() {
                                return Err(ErrorClass::Fatal(format!(
                                    "cannot create table `{table}`: {m}"
                                )));
                            }
                            tracing::info!(sink = %self.name, %table, "another writer created the table first: {m}");
                        }
                        Err(e) => return Err(e),
                    }
                    // Read back: another writer may have created it first.
                    self.backend.columns(table)?.ok_or_else(|| {
                        ErrorClass::Fatal(format!(
                            "table `{table}` is missing right after CREATE TABLE"
                        ))
                    })?
                }
            };
            let fold = self.backend.case_insensitive();
            let norm = |s: &str| {
                if fold {
                    s.to_lowercase()
                } else {
                    s.to_string()
                }
            };
            let mut known: HashSet<String> = columns.iter().map(|c| norm(c)).collect();
            let mut columns = columns;
            for k in order {
                if known.contains(&norm(k)) {
                    continue;
                }
                if self.config.auto_evolve {
                    let ty = types[k].unwrap_or(Inferred::Text);
                    tracing::info!(sink = %self.name, %table, column = k, ?ty, "adding column");
                    match self.backend.add_column(table, k, ty) {
                        Ok(()) => {}
                        // Added meanwhile by another writer: fine if it is there now.
                        Err(ErrorClass::Rejected(m)) => {
                            let now = self.backend.columns(table)?.unwrap_or_default();
                            if !now.iter().any(|c| norm(c) == norm(k)) {
                                return Err(ErrorClass::Fatal(format!(
                                    "cannot add column `{k}` to `{table}`: {m}"
                                )));
                            }
                            tracing::info!(sink = %self.name, %table, column = k, "another writer added the column first: {m}");
                        }
                        Err(e) => return Err(e),
                    }
                    known.insert(norm(k));
                    columns.push(k.to_string());
                } else {
                    for &i in &idx {
                        if rows[i].fields.contains_key(k) {
                            refused.push((i, format!("table `{table}` has no column `{k}` (set `auto_evolve: true` to add columns, or drop the field upstream)")));
                        }
                    }
                }
            }
            self.tables.insert(table.clone(), columns);
        }
        Ok(refused)
    }

    /// Runs `rows` (minus `skip`) in one transaction, as few statements as
    /// possible; on a row-level refusal, again row by row with savepoints.
    fn write_rows(
        &mut self,
        rows: &[Row],
        skip: &HashSet<usize>,
    ) -> Result<Vec<(usize, String)>, ErrorClass> {
        let live: Vec<usize> = (0..rows.len()).filter(|i| !skip.contains(i)).collect();
        self.backend.begin()?;
        let mut failed = None;
        for seg in segments(rows, &live, &self.config.key_fields, |n| {
            self.backend.max_rows(n)
        }) {
            let first = &rows[seg[0]];
            let columns: Vec<String> = first.fields.keys().cloned().collect();
            let refs: Vec<&Row> = seg.iter().map(|&i| &rows[i]).collect();
            match self.backend.write(
                &first.table,
                first.op,
                &columns,
                &self.config.key_fields,
                &refs,
            ) {
                Ok(()) => {}
                Err(ErrorClass::Rejected(m)) => {
                    failed = Some(m);
                    break;
                }
                Err(e) => {
                    self.backend.rollback();
                    return Err(e);
                }
            }
        }
        if failed.is_none() {
            self.backend.commit()?;
            return Ok(Vec::new());
        }
        self.backend.rollback();
        tracing::debug!(sink = %self.name, "a statement was refused; writing row by row to isolate it");
        let mut refused = Vec::new();
        self.backend.begin()?;
        for &i in &live {
            let r = &rows[i];
            let columns: Vec<String> = r.fields.keys().cloned().collect();
            self.backend.execute("SAVEPOINT sluice_row")?;
            match self
                .backend
                .write(&r.table, r.op, &columns, &self.config.key_fields, &[r])
            {
                Ok(()) => self.backend.execute("RELEASE SAVEPOINT sluice_row")?,
                Err(ErrorClass::Rejected(m)) => {
                    self.backend.execute("ROLLBACK TO SAVEPOINT sluice_row")?;
                    refused.push((i, m));
                }
                Err(e) => {
                    self.backend.rollback();
                    return Err(e);
                }
            }
        }
        self.backend.commit()?;
        Ok(refused)
    }

    /// Writes everything buffered, retrying lost connections with backoff.
    fn send(&mut self, rejected: &mut Rejected) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.buffer);
        let mut attempt = 0u32;
        loop {
            let result = self.prepare_schema(&rows).and_then(|refused| {
                let skip: HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
                let mut more = self.write_rows(&rows, &skip)?;
                more.extend(refused);
                Ok(more)
            });
            match result {
                Ok(refused) => {
                    for (i, reason) in refused {
                        let r = &rows[i];
                        rejected.push(
                            &r.batch,
                            r.index,
                            format!("table `{}` refused the row: {reason}", r.table),
                        );
                    }
                    return Ok(());
                }
                Err(ErrorClass::Retry(m)) if attempt < self.config.max_retries => {
                    attempt += 1;
                    let wait = self.backoff(attempt);
                    tracing::warn!(sink = %self.name, attempt, "database error: {m}; reconnecting in {wait:?}");
                    std::thread::sleep(wait);
                    // The schema may have changed while we were away.
                    self.tables.clear();
                    if let Err(e) = self.backend.connect() {
                        tracing::warn!(sink = %self.name, "reconnect failed: {e}");
                    }
                }
                Err(ErrorClass::Retry(m)) => bail!(
                    "database unavailable after {} retries: {m}",
                    self.config.max_retries
                ),
                Err(ErrorClass::Fatal(m)) => bail!("{m}"),
                Err(ErrorClass::Rejected(m)) => bail!("the database refused a schema change: {m}"),
            }
        }
    }

    /// Buffers a batch, writing a transaction whenever `batch_size` rows wait.
    pub fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        for i in 0..batch.len() {
            match self.row(batch, i) {
                Ok(Some(r)) => self.buffer.push(r),
                Ok(None) => {}
                Err(reason) => rejected.push(batch, i, reason),
            }
            if self.buffer.len() >= self.config.batch_size {
                self.send(rejected)?;
            }
        }
        Ok(())
    }

    /// Writes what is buffered.
    pub fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        self.send(rejected)?;
        Ok(Value::Null)
    }

    /// The backend (to close it).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }
}

/// Both SQL sinks are this one sink over their backend.
impl<B: Backend> Sink for SqlSink<B> {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        SqlSink::open(self)
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        SqlSink::write(self, batch, rejected)
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        SqlSink::flush(self, rejected)
    }
}

/// A current-thread Tokio runtime for a blocking SQL client, named in the
/// error when it cannot start.
pub fn client_runtime(what: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("cannot start the {what} client runtime"))
}

/// The columns of a table created for fields first seen in `order`, key
/// columns first when no field names them. Where names compare without
/// case (MySQL), fields differing only in case share the first one's column:
/// the database would refuse the second as a duplicate and fail the run.
fn new_table_columns(
    order: &[&str],
    types: &HashMap<&str, Option<Inferred>>,
    key: &[String],
    case_insensitive: bool,
) -> Vec<(String, Inferred)> {
    let norm = |s: &str| {
        if case_insensitive {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found: Vec<(String, Option<Inferred>)> = Vec::new();
    for k in order {
        let ty = types.get(k).copied().flatten();
        match seen.get(&norm(k)) {
            Some(&at) => {
                if let Some(slot) = found.get_mut(at) {
                    slot.1 = match (slot.1, ty) {
                        (Some(a), Some(b)) => Some(a.merge(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            None => {
                seen.insert(norm(k), found.len());
                found.push((k.to_string(), ty));
            }
        }
    }
    let mut cols: Vec<(String, Inferred)> = found
        .into_iter()
        .map(|(c, t)| (c, t.unwrap_or(Inferred::Text)))
        .collect();
    for k in key {
        if !cols.iter().any(|(c, _)| norm(c) == norm(k)) {
            cols.insert(0, (k.clone(), Inferred::Text));
        }
    }
    cols
}

/// Splits `live` rows into runs that one statement can carry: same table, op
/// and field names, no key twice (an upsert or delete of the same row twice
/// in one statement is an error in both databases), at most `max_rows(n)`.
fn segments(
    rows: &[Row],
    live: &[usize],
    key: &[String],
    max_rows: impl Fn(usize) -> usize,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    for &i in live {
        let r = &rows[i];
        let k = if key.is_empty() || r.op == Op::Insert {
            None
        } else {
            Some(
                key.iter()
                    .map(|c| r.fields.get(c).map(Value::to_string).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\u{1}"),
            )
        };
        let fits = out.last().is_some_and(|seg| {
            let f = &rows[seg[0]];
            f.table == r.table
                && f.op == r.op
                && seg.len() < max_rows(f.fields.len()).max(1)
                && f.fields.len() == r.fields.len()
                && f.fields.keys().zip(r.fields.keys()).all(|(a, b)| a == b)
                && k.as_ref().is_none_or(|k| !keys.contains(k))
        });
        if !fits {
            out.push(Vec::new());
            keys.clear();
        }
        if let Some(k) = k {
            keys.insert(k);
        }
        if let Some(seg) = out.last_mut() {
            seg.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BatchBuilder;
    use serde_json::json;

    fn row(op: Op, table: &str, fields: Value) -> Row {
        let batch = Arc::new(BatchBuilder::new("s", Arc::from("s"), 0).finish());
        Row {
            batch,
            index: 0,
            table: TableRef {
                schema: None,
                name: table.into(),
            },
            op,
            fields: match fields {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    #[test]
    fn inferred_types_widen_ints_to_floats_and_mixed_kinds_to_text() {
        assert_eq!(Inferred::of(&json!(1)), Some(Inferred::Int));
        assert_eq!(Inferred::of(&json!(1.5)), Some(Inferred::Float));
        assert_eq!(Inferred::of(&json!({"a": 1})), Some(Inferred::Json));
        assert_eq!(Inferred::of(&Value::Null), None);
        assert_eq!(Inferred::Int.merge(Inferred::Float), Inferred::Float);
        assert_eq!(Inferred::Bool.merge(Inferred::Int), Inferred::Text);
    }

    #[test]
    fn segments_split_on_table_op_fields_repeated_keys_and_size() {
        let key = vec!["id".to_string()];
        let rows = vec![
            row(Op::Upsert, "a", json!({"id": 1, "v": 1})),
            row(Op::Upsert, "a", json!({"id": 2, "v": 1})),
            // Same key again: a new statement.
            row(Op::Upsert, "a", json!({"id": 1, "v": 2})),
            // Other fields: a new statement.
            row(Op::Upsert, "a", json!({"id": 3})),
            row(Op::Delete, "a", json!({"id": 3})),
            row(Op::Delete, "b", json!({"id": 3})),
            row(Op::Delete, "b", json!({"id": 4})),
            row(Op::Delete, "b", json!({"id": 5})),
        ];
        let live: Vec<usize> = (0..rows.len()).collect();
        let segs = segments(&rows, &live, &key, |_| 2);
        assert_eq!(
            segs,
            vec![vec![0, 1], vec![2], vec![3], vec![4], vec![5, 6], vec![7]]
        );
        // Inserts may repeat keys (the database decides), and `live` skips rows.
        let rows = vec![
            row(Op::Insert, "a", json!({"id": 1})),
            row(Op::Insert, "a", json!({"id": 1})),
            row(Op::Insert, "a", json!({"id": 2})),
        ];
        assert_eq!(segments(&rows, &[0, 2], &key, |_| 10), vec![vec![0, 2]]);
        assert_eq!(
            segments(&rows, &[0, 1, 2], &key, |_| 10),
            vec![vec![0, 1, 2]]
        );
    }

    #[test]
    fn a_new_table_folds_fields_differing_only_in_case_where_the_database_does() {
        let order = ["Name", "id", "name", "n"];
        let types: HashMap<&str, Option<Inferred>> = [
            ("Name", None),
            ("id", Some(Inferred::Int)),
            ("name", Some(Inferred::Text)),
            ("n", Some(Inferred::Int)),
        ]
        .into_iter()
        .collect();
        let key = vec!["ID".to_string()];
        assert_eq!(
            new_table_columns(&order, &types, &key, true),
            vec![
                ("Name".to_string(), Inferred::Text),
                ("id".to_string(), Inferred::Int),
                ("n".to_string(), Inferred::Int),
            ]
        );
        assert_eq!(
            new_table_columns(&order, &types, &key, false),
            vec![
                ("ID".to_string(), Inferred::Text),
                ("Name".to_string(), Inferred::Text),
                ("id".to_string(), Inferred::Int),
                ("name".to_string(), Inferred::Text),
                ("n".to_string(), Inferred::Int),
            ]
        );
    }

    #[test]
    fn config_checks_url_scheme_upsert_key_and_hides_passwords() {
        let base: SqlSinkConfig =
            serde_json::from_value(json!({"url": "mysql://u:secret@h/db"})).expect("config");
        assert!(base.check(&["mysql", "mariadb"]).is_ok());
        let issue = base.check(&["postgres"]).expect_err("wrong scheme");
        assert_eq!(issue.field, "url");
        assert!(!issue.message.contains("secret"), "{}", issue.message);
        let upsert: SqlSinkConfig =
            serde_json::from_value(json!({"url": "mysql://h/db", "mode": "upsert"}))
                .expect("config");
        let issue = upsert.check(&["mysql"]).expect_err("no key");
        assert_eq!(issue.field, "key_fields");
        assert_eq!(issue.anchor, "mode");
        assert_eq!(base.table_for("P_USERS"), "P_USERS");
    }
}
