//! `postgres` sink: rows into a PostgreSQL table over `tokio-postgres`.
//!
//! Each statement carries its rows as one JSON array parameter and lets the
//! server convert it with `json_populate_recordset(NULL::table, $1)`, so every
//! column type the server can read from JSON text works (numbers into
//! `numeric`, strings into `timestamptz`, `uuid` or enums, objects into
//! `jsonb`, arrays into arrays) and a bad value is the server's own error.
//! Batching, retries and dead letters are shared with the `mysql` sink
//! ([`super::sql`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::sql::{
    chain, quote_ident, Backend, DbError, Inferred, Op, Row, SqlSink, SqlSinkConfig, TableRef,
};
use super::{Rejected, Sink};
use crate::pipeline::Batch;

/// URL schemes a `postgres` sink accepts.
pub const SCHEMES: &[&str] = &["postgres", "postgresql"];

/// Classifies a tokio-postgres error.
pub fn classify(e: &tokio_postgres::Error) -> DbError {
    let Some(db) = e.as_db_error() else {
        // No server error: the connection is gone, closed or timed out.
        return DbError::Retry(chain(e));
    };
    let code = db.code().code();
    let msg = match db.detail() {
        Some(d) => format!("{} ({d}) [SQLSTATE {code}]", db.message()),
        None => format!("{} [SQLSTATE {code}]", db.message()),
    };
    if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE
        || code.starts_with("28")
        || code.starts_with("3D")
        || code.starts_with("3F")
    {
        return DbError::Fatal(msg);
    }
    // The table or a column vanished (dropped meanwhile): re-read the schema
    // and try again. No unique index for ON CONFLICT: a setup problem.
    if code == "42P01" || code == "42703" {
        return DbError::Retry(msg);
    }
    if code == "42P10" {
        return DbError::Fatal(format!(
            "{msg}; `mode: upsert` needs a primary key or unique index on `key_fields`"
        ));
    }
    match code.get(..2).unwrap_or_default() {
        // Data exceptions, integrity constraints, bad columns or syntax for
        // this row's data, check violations.
        "22" | "23" | "42" | "44" => DbError::Rejected(msg),
        // Connection exceptions, serialization failures and deadlocks,
        // resources, operator intervention (shutdown).
        "08" | "40" | "53" | "57" | "58" => DbError::Retry(msg),
        _ => DbError::Fatal(msg),
    }
}

fn type_name(t: Inferred) -> &'static str {
    match t {
        Inferred::Bool => "boolean",
        Inferred::Int => "bigint",
        Inferred::Float => "double precision",
        Inferred::Text => "text",
        Inferred::Json => "jsonb",
    }
}

fn q(name: &str) -> String {
    quote_ident(name, '"')
}

fn qualified(t: &TableRef) -> String {
    match &t.schema {
        Some(s) => format!("{}.{}", q(s), q(&t.name)),
        None => q(&t.name),
    }
}

/// The PostgreSQL half of the sink.
pub struct PostgresBackend {
    url: String,
    connect_timeout: Duration,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
}

impl PostgresBackend {
    fn client(&self) -> Result<&Client, DbError> {
        self.client
            .as_ref()
            .ok_or_else(|| DbError::Retry("not connected".into()))
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), DbError> {
        let client = self.client()?;
        self.rt
            .block_on(client.batch_execute(sql))
            .map_err(|e| classify(&e))
    }
}

/// Connects on `rt`, running the connection task there. Errors say whether
/// the credentials, the database or the network is the problem.
pub fn connect(
    rt: &tokio::runtime::Runtime,
    url: &str,
    timeout: Duration,
) -> Result<Client, DbError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| DbError::Fatal(format!("invalid PostgreSQL URL: {e}")))?;
    config.connect_timeout(timeout);
    let where_ = format!(
        "{}:{}",
        config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default(),
        config.get_ports().first().copied().unwrap_or(5432)
    );
    let (client, connection) = rt.block_on(config.connect(NoTls)).map_err(|e| {
        let class = classify(&e);
        let what = match &class {
            DbError::Fatal(m) if m.contains("SQLSTATE 28") => format!(
                "PostgreSQL at {where_} refused the credentials: {m}; check the user and password in `url`"
            ),
            DbError::Fatal(m) if m.contains("SQLSTATE 3D") => format!(
                "PostgreSQL at {where_}: {m}; check the database name in `url`"
            ),
            _ => format!("cannot connect to PostgreSQL at {where_}: {}", chain(&e)),
        };
        match class {
            DbError::Retry(_) => DbError::Retry(what),
            _ => DbError::Fatal(what),
        }
    })?;
    rt.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

impl Backend for PostgresBackend {
    fn connect(&mut self) -> Result<(), DbError> {
        self.client = None;
        let client = connect(&self.rt, &self.url, self.connect_timeout)?;
        self.client = Some(client);
        Ok(())
    }

    fn case_insensitive(&self) -> bool {
        false
    }

    fn columns(&mut self, table: &TableRef) -> Result<Option<Vec<String>>, DbError> {
        let client = self.client()?;
        let name = qualified(table);
        let rows = self
            .rt
            .block_on(client.query(
                "SELECT a.attname::text FROM (SELECT to_regclass($1::text) AS oid) r \
                 LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 WHERE r.oid IS NOT NULL ORDER BY a.attnum",
                &[&name],
            ))
            .map_err(|e| classify(&e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .filter_map(|r| r.get::<_, Option<String>>(0))
                .collect(),
        ))
    }

    fn create_table(
        &mut self,
        table: &TableRef,
        columns: &[(String, Inferred)],
        key: &[String],
    ) -> Result<(), DbError> {
        let mut defs: Vec<String> = columns
            .iter()
            .map(|(c, t)| {
                let not_null = if key.contains(c) { " NOT NULL" } else { "" };
                format!("{} {}{not_null}", q(c), type_name(*t))
            })
            .collect();
        if !key.is_empty() {
            let k: Vec<String> = key.iter().map(|c| q(c)).collect();
            defs.push(format!("PRIMARY KEY ({})", k.join(", ")));
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            qualified(table),
            defs.join(", ")
        );
        self.batch_execute(&sql)
    }

    fn add_column(&mut self, table: &TableRef, name: &str, ty: Inferred) -> Result<(), DbError> {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
            qualified(table),
            q(name),
            type_name(ty)
        );
        self.batch_execute(&sql)
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.batch_execute("BEGIN")
    }

    fn commit(&mut self) -> Result<(), DbError> {
        self.batch_execute("COMMIT")
    }

    fn rollback(&mut self) {
        let _ = self.batch_execute("ROLLBACK");
    }

    fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.batch_execute(sql)
    }

    fn write(
        &mut self,
        table: &TableRef,
        op: Op,
        columns: &[String],
        key: &[String],
        rows: &[&Row],
    ) -> Result<(), DbError> {
        let t = qualified(table);
        let cols: Vec<String> = columns.iter().map(|c| q(c)).collect();
        let cols = cols.join(", ");
        let source = format!("json_populate_recordset(NULL::{t}, $1::text::json)");
        let sql = match op {
            Op::Insert => format!("INSERT INTO {t} ({cols}) SELECT {cols} FROM {source}"),
            Op::Upsert => {
                let keys: Vec<String> = key.iter().map(|c| q(c)).collect();
                let updates: Vec<String> = columns
                    .iter()
                    .filter(|c| !key.contains(c))
                    .map(|c| format!("{0} = EXCLUDED.{0}", q(c)))
                    .collect();
                let action = if updates.is_empty() {
                    "NOTHING".to_string()
                } else {
                    format!("UPDATE SET {}", updates.join(", "))
                };
                format!(
                    "INSERT INTO {t} ({cols}) SELECT {cols} FROM {source} ON CONFLICT ({}) DO {action}",
                    keys.join(", ")
                )
            }
            Op::Delete => {
                let keys: Vec<String> = key.iter().map(|c| q(c)).collect();
                let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = d.{k}")).collect();
                format!(
                    "DELETE FROM {t} AS t USING (SELECT {} FROM {source}) AS d WHERE {}",
                    keys.join(", "),
                    on.join(" AND ")
                )
            }
        };
        let body = Value::Array(
            rows.iter()
                .map(|r| Value::Object(r.fields.clone()))
                .collect(),
        );
        let param = body.to_string();
        let client = self.client()?;
        self.rt
            .block_on(client.execute(&sql, &[&param]))
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    fn max_rows(&self, _columns: usize) -> usize {
        // One parameter whatever the row count; keep statements reasonable.
        10_000
    }
}

/// A running `postgres` sink.
pub struct PostgresSink {
    inner: SqlSink<PostgresBackend>,
}

impl PostgresSink {
    /// A sink per `config`, named `name` in logs.
    pub fn new(config: SqlSinkConfig, name: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the PostgreSQL client runtime")?;
        let backend = PostgresBackend {
            url: config.url.clone(),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            rt,
            client: None,
        };
        Ok(Self {
            inner: SqlSink::new(config, name, backend),
        })
    }
}

impl Sink for PostgresSink {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        self.inner.open()
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        self.inner.write(batch, rejected)
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        self.inner.flush(rejected)
    }
}
