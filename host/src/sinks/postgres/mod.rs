//! `postgres` sink: rows into a PostgreSQL table over `tokio-postgres`.
//!
//! Each statement carries its rows as one JSON array parameter and lets the
//! server convert it with `json_populate_recordset(NULL::table, $1)`, so every
//! column type the server can read from JSON text works (numbers into
//! `numeric`, strings into `timestamptz`, `uuid` or enums, objects into
//! `jsonb`, arrays into arrays) and a bad value is the server's own error.
//! Batching, retries and dead letters are shared with the `mysql` sink
//! ([`super::sql`]).

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tokio_postgres::Client;

use super::sql::{client_runtime, Backend, Inferred, Op, Row, SqlSink, SqlSinkConfig, TableRef};
use crate::clients::postgres::{classify, connect, PgTarget};
use crate::clients::sql::quote_ident;
use crate::connector::{parse_sink, ConfigIssue, ErrorClass, Sink, SinkConfig, SinkKind};

/// URL schemes a `postgres` sink accepts.
pub const SCHEMES: &[&str] = &["postgres", "postgresql"];

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
    target: PgTarget,
    connect_timeout: Duration,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
}

impl PostgresBackend {
    fn client(&self) -> Result<&Client, ErrorClass> {
        self.client
            .as_ref()
            .ok_or_else(|| ErrorClass::Retry("not connected".into()))
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), ErrorClass> {
        let client = self.client()?;
        self.rt
            .block_on(client.batch_execute(sql))
            .map_err(|e| classify(&e))
    }
}

impl Backend for PostgresBackend {
    fn connect(&mut self) -> Result<(), ErrorClass> {
        self.client = None;
        let client = connect(&self.rt, &self.target, self.connect_timeout)?;
        self.client = Some(client);
        Ok(())
    }

    fn case_insensitive(&self) -> bool {
        false
    }

    fn columns(&mut self, table: &TableRef) -> Result<Option<Vec<String>>, ErrorClass> {
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
    ) -> Result<(), ErrorClass> {
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

    fn add_column(&mut self, table: &TableRef, name: &str, ty: Inferred) -> Result<(), ErrorClass> {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
            qualified(table),
            q(name),
            type_name(ty)
        );
        self.batch_execute(&sql)
    }

    fn begin(&mut self) -> Result<(), ErrorClass> {
        self.batch_execute("BEGIN")
    }

    fn commit(&mut self) -> Result<(), ErrorClass> {
        self.batch_execute("COMMIT")
    }

    fn rollback(&mut self) {
        let _ = self.batch_execute("ROLLBACK");
    }

    fn execute(&mut self, sql: &str) -> Result<(), ErrorClass> {
        self.batch_execute(sql)
    }

    fn write(
        &mut self,
        table: &TableRef,
        op: Op,
        columns: &[String],
        key: &[String],
        rows: &[&Row],
    ) -> Result<(), ErrorClass> {
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

/// Configuration of a `postgres` sink: the shape both SQL sinks share.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct PostgresSinkConfig(pub SqlSinkConfig);

/// The `postgres` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "postgres",
    summary: "rows into a PostgreSQL table (insert or upsert, delete on tombstone, auto-create and evolve)",
    parse: parse_sink::<PostgresSinkConfig>,
};

impl PostgresSinkConfig {
    fn target(&self) -> Result<PgTarget, ConfigIssue> {
        let c = &self.0;
        PgTarget::new(&c.url, c.tls.as_ref(), c.password_file.as_deref())
    }
}

impl SinkConfig for PostgresSinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::postgres_tls::endpoints(&self.0.url)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        self.0.check(SCHEMES)?;
        self.target().map(|_| ())
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.0.resolve_paths(base);
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        let config = &self.0;
        let backend = PostgresBackend {
            target: self.target()?,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            rt: client_runtime("PostgreSQL")?,
            client: None,
        };
        Ok(Box::new(SqlSink::new(config.clone(), name, backend)))
    }
}
