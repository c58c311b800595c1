//! `mysql` sink: rows into a MySQL or MariaDB table over `mysql_async`
//! (pure Rust, no TLS). Multi-row `INSERT … VALUES (?, …), …` statements,
//! `ON DUPLICATE KEY UPDATE` for upserts, `DELETE … WHERE key IN (…)` for
//! tombstones. Batching, retries and dead letters are shared with the
//! `postgres` sink ([`super::sql`]).

mod tls;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params};
use serde_json::Value;

use super::sql::{client_runtime, Backend, Inferred, Op, Row, SqlSink, SqlSinkConfig, TableRef};
use crate::clients::sql::{chain, quote_ident};
use crate::connector::{parse_sink, ConfigIssue, ErrorClass, Sink, SinkConfig, SinkKind};

/// URL schemes a `mysql` sink accepts.
pub const SCHEMES: &[&str] = &["mysql", "mariadb"];

/// Placeholders one statement may carry (the protocol's limit is 65,535).
const MAX_PARAMS: usize = 60_000;

/// Classifies a mysql_async error.
fn classify(e: &mysql_async::Error) -> ErrorClass {
    match e {
        mysql_async::Error::Server(s) => {
            let msg = format!("{} [error {}, SQLSTATE {}]", s.message, s.code, s.state);
            match s.code {
                // Deadlock, lock wait timeout, server shutting down, read-only.
                1205 | 1213 | 1053 | 1927 | 2006 | 2013 => ErrorClass::Retry(msg),
                // Access denied (user, database, command, column), unknown database.
                1044 | 1045 | 1049 | 1142 | 1143 | 1227 | 1698 => ErrorClass::Fatal(msg),
                // Table or column gone (dropped meanwhile): re-read the schema.
                1146 | 1054 => ErrorClass::Retry(msg),
                _ => ErrorClass::Rejected(msg),
            }
        }
        other => ErrorClass::Retry(other.to_string()),
    }
}

fn type_name(t: Inferred, key: bool) -> &'static str {
    match (t, key) {
        (Inferred::Bool, _) => "BOOLEAN",
        (Inferred::Int, _) => "BIGINT",
        (Inferred::Float, _) => "DOUBLE",
        (Inferred::Text, true) => "VARCHAR(255)",
        (Inferred::Text, false) => "LONGTEXT",
        (Inferred::Json, true) => "VARCHAR(255)",
        (Inferred::Json, false) => "JSON",
    }
}

fn q(name: &str) -> String {
    quote_ident(name, '`')
}

fn qualified(t: &TableRef) -> String {
    match &t.schema {
        Some(s) => format!("{}.{}", q(s), q(&t.name)),
        None => q(&t.name),
    }
}

fn to_param(v: &Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        Value::Null => M::NULL,
        Value::Bool(b) => M::Int(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => M::Int(i),
            (None, Some(u), _) => M::UInt(u),
            (None, None, Some(f)) => M::Double(f),
            _ => M::Bytes(n.to_string().into_bytes()),
        },
        Value::String(s) => M::Bytes(s.clone().into_bytes()),
        other => M::Bytes(other.to_string().into_bytes()),
    }
}

/// The MySQL half of the sink.
pub struct MysqlBackend {
    opts: Opts,
    /// The name the server's certificate must carry, for messages.
    tls_name: String,
    connect_timeout: Duration,
    rt: tokio::runtime::Runtime,
    conn: Option<Conn>,
    /// Integer columns per table (lower-cased names), learnt with the
    /// columns: MySQL rounds a fraction stored there, even in strict mode.
    integer_columns: HashMap<TableRef, HashSet<String>>,
}

/// MySQL's integer column types (`BOOLEAN` is `tinyint`).
fn is_integer_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

/// Why `v` cannot go into an integer column without being rounded, if so:
/// a number with a fraction, or a string holding one (MySQL rounds both,
/// strict mode or not). Anything else is left to the server to refuse.
fn fraction_in_integer_column(v: &Value) -> Option<String> {
    let fractional = |f: f64| f.is_finite() && f.fract() != 0.0;
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            n.as_f64().is_some_and(fractional).then(|| n.to_string())
        }
        Value::String(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .is_some_and(fractional)
            .then(|| format!("{t:?}")),
        _ => None,
    }
}

impl MysqlBackend {
    /// Refuses `rows` when one would store a fraction in an integer column:
    /// MySQL would round it and say nothing (a row-level refusal, so the
    /// sink isolates the row and dead-letters it with this message).
    fn check_integers(
        &self,
        table: &TableRef,
        columns: &[String],
        rows: &[&Row],
    ) -> Result<(), ErrorClass> {
        let Some(ints) = self.integer_columns.get(table) else {
            return Ok(());
        };
        for c in columns.iter().filter(|c| ints.contains(&c.to_lowercase())) {
            for r in rows {
                if let Some(v) = r.fields.get(c).and_then(fraction_in_integer_column) {
                    return Err(ErrorClass::Rejected(format!(
                        "column `{c}` holds integers and the value {v} has a fraction; MySQL would round it without an error, so the row is refused"
                    )));
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, sql: &str, params: Vec<mysql_async::Value>) -> Result<(), ErrorClass> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| ErrorClass::Retry("not connected".into()))?;
        let r = if params.is_empty() {
            self.rt.block_on(conn.query_drop(sql))
        } else {
            self.rt
                .block_on(conn.exec_drop(sql, Params::Positional(params)))
        };
        r.map_err(|e| classify(&e))
    }

    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = self.rt.block_on(conn.disconnect());
        }
    }
}

impl Drop for MysqlBackend {
    fn drop(&mut self) {
        self.close();
    }
}

impl Backend for MysqlBackend {
    fn connect(&mut self) -> Result<(), ErrorClass> {
        self.close();
        let where_ = format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port());
        let timeout = self.connect_timeout;
        let conn = self
            .rt
            .block_on(async { tokio::time::timeout(timeout, Conn::new(self.opts.clone())).await })
            .map_err(|_| ErrorClass::Retry(format!("cannot connect to MySQL at {where_}: no answer within {timeout:?}")))?
            .map_err(|e| {
                if let Some(why) = tls::explain(&e, &format!("MySQL at {where_}"), &self.tls_name) {
                    // A certificate or TLS setting does not fix itself on retry.
                    return ErrorClass::Fatal(why);
                }
                match classify(&e) {
                ErrorClass::Fatal(m) if m.contains("error 1045") || m.contains("error 1698") => {
                    // MariaDB answers a plaintext client under
                    // require_secure_transport (or REQUIRE SSL) the same way.
                    let tls_hint = match self.opts.ssl_opts() {
                        None => "; if the server requires TLS (require_secure_transport=ON, or REQUIRE SSL for this user), set `tls: {mode: verify-full, ca_file: <the server's CA>}`",
                        // Likewise a user who must show a certificate.
                        Some(ssl) if ssl.client_identity().is_none() => "; if this user must present a client certificate (REQUIRE X509, SUBJECT or ISSUER), set `tls.cert_file` and `tls.key_file`",
                        Some(_) => "",
                    };
                    ErrorClass::Fatal(format!(
                        "MySQL at {where_} refused the credentials: {m}; check the user and password in `url`{tls_hint}"
                    ))
                }
                ErrorClass::Fatal(m) => ErrorClass::Fatal(format!("MySQL at {where_}: {m}; check `url`")),
                _ => ErrorClass::Retry(format!("cannot connect to MySQL at {where_}: {}", chain(&e))),
                }
            })?;
        self.conn = Some(conn);
        // Bad values are errors (strict mode), not silent truncation.
        self.run(
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
            Vec::new(),
        )
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn columns(&mut self, table: &TableRef) -> Result<Option<Vec<String>>, ErrorClass> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| ErrorClass::Retry("not connected".into()))?;
        let schema = table.schema.clone().map_or(mysql_async::Value::NULL, |s| {
            mysql_async::Value::Bytes(s.into_bytes())
        });
        let rows: Vec<(String, String)> = self
            .rt
            .block_on(conn.exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                Params::Positional(vec![
                    schema,
                    mysql_async::Value::Bytes(table.name.clone().into_bytes()),
                ]),
            ))
            .map_err(|e| classify(&e))?;
        let ints = rows
            .iter()
            .filter(|(_, t)| is_integer_type(t))
            .map(|(c, _)| c.to_lowercase())
            .collect();
        self.integer_columns.insert(table.clone(), ints);
        Ok((!rows.is_empty()).then(|| rows.into_iter().map(|(c, _)| c).collect()))
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
                let is_key = key.contains(c);
                let not_null = if is_key { " NOT NULL" } else { "" };
                format!("{} {}{not_null}", q(c), type_name(*t, is_key))
            })
            .collect();
        if !key.is_empty() {
            let k: Vec<String> = key.iter().map(|c| q(c)).collect();
            defs.push(format!("PRIMARY KEY ({})", k.join(", ")));
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) DEFAULT CHARSET = utf8mb4",
            qualified(table),
            defs.join(", ")
        );
        self.run(&sql, Vec::new())
    }

    fn add_column(&mut self, table: &TableRef, name: &str, ty: Inferred) -> Result<(), ErrorClass> {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN {} {} NULL",
            qualified(table),
            q(name),
            type_name(ty, false)
        );
        self.run(&sql, Vec::new())?;
        if matches!(ty, Inferred::Int | Inferred::Bool) {
            self.integer_columns
                .entry(table.clone())
                .or_default()
                .insert(name.to_lowercase());
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<(), ErrorClass> {
        self.run("START TRANSACTION", Vec::new())
    }

    fn commit(&mut self) -> Result<(), ErrorClass> {
        self.run("COMMIT", Vec::new())
    }

    fn rollback(&mut self) {
        let _ = self.run("ROLLBACK", Vec::new());
    }

    fn execute(&mut self, sql: &str) -> Result<(), ErrorClass> {
        self.run(sql, Vec::new())
    }

    fn write(
        &mut self,
        table: &TableRef,
        op: Op,
        columns: &[String],
        key: &[String],
        rows: &[&Row],
    ) -> Result<(), ErrorClass> {
        if op != Op::Delete {
            self.check_integers(table, columns, rows)?;
        }
        let t = qualified(table);
        let mut params = Vec::new();
        let sql = match op {
            Op::Insert | Op::Upsert => {
                let cols: Vec<String> = columns.iter().map(|c| q(c)).collect();
                let one = format!("({})", vec!["?"; columns.len()].join(", "));
                let values = vec![one; rows.len()].join(", ");
                for r in rows {
                    for c in columns {
                        params.push(r.fields.get(c).map_or(mysql_async::Value::NULL, to_param));
                    }
                }
                let mut sql = format!("INSERT INTO {t} ({}) VALUES {values}", cols.join(", "));
                if op == Op::Upsert {
                    let updates: Vec<String> = columns
                        .iter()
                        .filter(|c| !key.contains(c))
                        .map(|c| format!("{0} = VALUES({0})", q(c)))
                        .collect();
                    let updates = if updates.is_empty() {
                        key.iter().map(|c| format!("{0} = {0}", q(c))).collect()
                    } else {
                        updates
                    };
                    sql.push_str(" ON DUPLICATE KEY UPDATE ");
                    sql.push_str(&updates.join(", "));
                }
                sql
            }
            Op::Delete => {
                let keys: Vec<String> = key.iter().map(|c| q(c)).collect();
                let one = format!("({})", vec!["?"; key.len()].join(", "));
                let values = vec![one; rows.len()].join(", ");
                for r in rows {
                    for c in key {
                        params.push(r.fields.get(c).map_or(mysql_async::Value::NULL, to_param));
                    }
                }
                format!("DELETE FROM {t} WHERE ({}) IN ({values})", keys.join(", "))
            }
        };
        self.run(&sql, params)
    }

    fn max_rows(&self, columns: usize) -> usize {
        MAX_PARAMS / columns.max(1)
    }
}

/// Configuration of a `mysql` sink: the shape both SQL sinks share.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct MysqlSinkConfig(pub SqlSinkConfig);

/// The `mysql` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "mysql",
    summary: "rows into a MySQL or MariaDB table (insert or upsert, delete on tombstone, auto-create and evolve)",
    parse: parse_sink::<MysqlSinkConfig>,
};

impl SinkConfig for MysqlSinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        use crate::connector::endpoint::{unix_socket, Endpoint};
        // Parsed as `build` parses it.
        let url = match self.0.url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => self.0.url.clone(),
        };
        let opts = Opts::from_url(&url).ok()?;
        Some(vec![match opts.socket() {
            Some(path) => unix_socket(path),
            None => Endpoint::new(opts.ip_or_hostname(), Some(opts.tcp_port())),
        }])
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        self.0.check(SCHEMES)?;
        tls::ssl_opts(self.0.tls.as_ref())?;
        if let Some(p) = &self.0.password_file {
            crate::clients::tls::read_password_file(p)?;
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.0.resolve_paths(base);
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        let config = &self.0;
        let url = match config.url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => config.url.clone(),
        };
        let opts = Opts::from_url(&url).map_err(|e| anyhow::anyhow!("invalid MySQL URL: {e}"))?;
        let mut builder = OptsBuilder::from_opts(opts);
        if let Some(p) = &config.password_file {
            builder = builder.pass(Some(crate::clients::tls::read_password_file(p)?));
        }
        if let Some(ssl) = tls::ssl_opts(config.tls.as_ref())? {
            builder = builder.ssl_opts(ssl);
        }
        let opts: Opts = builder
            .prefer_socket(false)
            .stmt_cache_size(64)
            .wait_timeout(None)
            .into();
        let tls_name = config
            .tls
            .as_ref()
            .and_then(|t| t.server_name.clone())
            .unwrap_or_else(|| opts.ip_or_hostname().to_string());
        let backend = MysqlBackend {
            opts,
            tls_name,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            rt: client_runtime("MySQL")?,
            conn: None,
            integer_columns: HashMap::new(),
        };
        Ok(Box::new(SqlSink::new(config.clone(), name, backend)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_fractions_headed_for_an_integer_column_are_refused() {
        for v in [json!(2.5), json!(-0.1), json!("2.5"), json!(" 3.75 ")] {
            assert!(fraction_in_integer_column(&v).is_some(), "{v}");
        }
        // Whole numbers, integers as text, and what the server refuses itself.
        for v in [
            json!(3),
            json!(3.0),
            json!("7"),
            json!("lots"),
            json!(true),
            json!(null),
            json!(u64::MAX),
        ] {
            assert_eq!(fraction_in_integer_column(&v), None, "{v}");
        }
        assert!(is_integer_type("BIGINT") && is_integer_type("tinyint"));
        assert!(!is_integer_type("double") && !is_integer_type("decimal"));
    }
}
