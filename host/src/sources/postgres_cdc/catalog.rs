//! Everything asked of the database over an ordinary connection: the checks
//! run before anything starts (each failure names the problem and the fix),
//! table selection, the publication, table shapes and type lookups.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::clients::postgres::PgTarget;

use super::pgoutput::{Column, Relation};
use super::types::TypeRegistry;

/// A table to capture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableRef {
    /// Schema.
    pub schema: String,
    /// Name.
    pub table: String,
}

impl TableRef {
    /// Parses `schema.table` or `table` (schema `public`).
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((schema, table)) => Self {
                schema: schema.into(),
                table: table.into(),
            },
            None => Self {
                schema: "public".into(),
                table: s.into(),
            },
        }
    }

    /// Quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// `"name"` with inner quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` with inner quotes doubled.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Connects an ordinary session (UTC, ISO dates) with bounded retries when
/// the server cannot be reached; wrong credentials or TLS fail at once.
pub async fn connect(target: &PgTarget) -> Result<Client> {
    let config = &target.config;
    let where_ = target.describe();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match target.connect().await {
            Ok(client) => {
                client
                    .batch_execute(
                        "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3",
                    )
                    .await?;
                return Ok(client);
            }
            Err(e) => {
                if let Some(why) = target.explain_tls(&e) {
                    return Err(anyhow!(why));
                }
                if let Some(db) = e.as_db_error() {
                    return Err(explain_db_error(db.code(), db.message(), config, &where_));
                }
                if attempt >= 5 {
                    return Err(anyhow!(
                        "cannot reach PostgreSQL at {where_} after {attempt} attempts: {e}; check that the server is running and `url` names the right host and port"
                    ));
                }
                tracing::warn!(
                    attempt,
                    "PostgreSQL at {where_} unreachable ({e}); retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// Turns a server error at connect time into what to do about it.
pub fn explain_db_error(
    code: &SqlState,
    message: &str,
    config: &tokio_postgres::Config,
    target: &str,
) -> anyhow::Error {
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    if *code == SqlState::INVALID_PASSWORD {
        anyhow!("PostgreSQL at {target} refused the password for user `{user}` ({message}); fix the user or password in `url`")
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        anyhow!("PostgreSQL at {target} refused user `{user}` ({message}); check the user in `url` and the server's pg_hba.conf")
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        anyhow!("database `{db}` does not exist on {target} ({message}); fix the database in `url`")
    } else {
        anyhow!("PostgreSQL at {target}: {message}")
    }
}

/// Checks the server can do logical replication for this role.
pub async fn check_replication(client: &Client) -> Result<()> {
    let row = client.query_one("SHOW wal_level", &[]).await?;
    let level: String = row.get(0);
    if level != "logical" {
        bail!(
            "the server runs with wal_level = {level}; change data capture needs wal_level = logical. Fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (or use the polling source)"
        );
    }
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let user: String = row.get(0);
    let allowed: bool = row.get(1);
    if !allowed {
        bail!(
            "role `{user}` may not use replication. Fix: ALTER ROLE \"{user}\" WITH REPLICATION; (as a superuser), or use the polling source"
        );
    }
    Ok(())
}

/// Resolves the include and exclude lists to existing tables.
pub async fn select_tables(
    client: &Client,
    include: &[String],
    exclude: &[String],
) -> Result<Vec<TableRef>> {
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition ORDER BY 1, 2",
            &[],
        )
        .await?;
    let existing: Vec<TableRef> = rows
        .iter()
        .map(|r| TableRef {
            schema: r.get(0),
            table: r.get(1),
        })
        .collect();
    let excluded: Vec<TableRef> = exclude.iter().map(|t| TableRef::parse(t)).collect();
    let mut out = Vec::new();
    if include.is_empty() {
        out.extend(existing.iter().filter(|t| !excluded.contains(t)).cloned());
    } else {
        for name in include {
            let t = TableRef::parse(name);
            if !existing.contains(&t) {
                bail!(
                    "table `{t}` (in `tables`) does not exist in database `{db}`; create it or fix the name (tables there: {})",
                    existing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                );
            }
            if !excluded.contains(&t) {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        bail!("no tables to capture in database `{db}`: `tables` and `exclude` leave none");
    }
    Ok(out)
}

/// The shape of `table` as the snapshot reads it: columns, types and primary key.
pub async fn relation(client: &Client, table: &TableRef) -> Result<Relation> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid::oid, COALESCE(a.attnum = ANY(i.indkey), false), c.oid, c.relreplident::text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table.schema, &table.table],
        )
        .await?;
    let first = rows
        .first()
        .ok_or_else(|| anyhow!("table `{table}` has no columns or does not exist"))?;
    let id: u32 = first.get(3);
    let ident: String = first.get(4);
    Ok(Relation {
        id,
        schema: table.schema.clone(),
        table: table.table.clone(),
        replica_identity: ident.bytes().next().unwrap_or(b'd'),
        columns: rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                type_oid: r.get(1),
                key: r.get(2),
            })
            .collect(),
    })
}

/// Refuses tables PostgreSQL could not publish updates for: once in a
/// publication, UPDATE and DELETE on a table without a replica identity
/// fail for every application writing to it.
pub fn check_identity(rel: &Relation) -> Result<()> {
    let has_key = rel.columns.iter().any(|c| c.key);
    if !has_key && matches!(rel.replica_identity, b'd' | b'n') {
        bail!(
            "table `{}.{}` has no primary key, so publishing it would make its UPDATEs and DELETEs fail. Fix: add a primary key, or ALTER TABLE {}.{} REPLICA IDENTITY FULL; or list it in `exclude`",
            rel.schema,
            rel.table,
            quote_ident(&rel.schema),
            quote_ident(&rel.table)
        );
    }
    Ok(())
}

/// Creates the publication for `tables`, or adds tables it lacks.
pub async fn ensure_publication(client: &Client, name: &str, tables: &[TableRef]) -> Result<()> {
    let exists = !client
        .query("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await?
        .is_empty();
    let list = |ts: &[TableRef]| {
        ts.iter()
            .map(TableRef::quoted)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = "the role needs to own the tables (or be superuser) to publish them";
    if !exists {
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_ident(name),
                list(tables)
            ))
            .await
            .map_err(|e| anyhow!("creating publication `{name}`: {}; {hint}", db_message(&e)))?;
        tracing::info!(publication = name, tables = %list(tables), "created publication");
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&name],
        )
        .await?;
    let published: Vec<TableRef> = rows
        .iter()
        .map(|r| TableRef {
            schema: r.get(0),
            table: r.get(1),
        })
        .collect();
    let missing: Vec<TableRef> = tables
        .iter()
        .filter(|t| !published.contains(t))
        .cloned()
        .collect();
    if !missing.is_empty() {
        client
            .batch_execute(&format!(
                "ALTER PUBLICATION {} ADD TABLE {}",
                quote_ident(name),
                list(&missing)
            ))
            .await
            .map_err(|e| {
                anyhow!(
                    "adding tables to publication `{name}`: {}; {hint}",
                    db_message(&e)
                )
            })?;
        tracing::info!(publication = name, tables = %list(&missing), "added tables to publication");
    }
    Ok(())
}

/// The slot's confirmed position, if the slot exists.
pub async fn slot_state(client: &Client, slot: &str) -> Result<Option<Option<String>>> {
    let rows = client
        .query(
            "SELECT confirmed_flush_lsn::text, plugin::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let plugin: Option<String> = row.get(1);
    if plugin.as_deref() != Some("pgoutput") {
        bail!(
            "replication slot `{slot}` exists but uses plugin `{}`, not pgoutput; drop it (SELECT pg_drop_replication_slot('{slot}')) or set another `slot`",
            plugin.unwrap_or_default()
        );
    }
    Ok(Some(row.get(0)))
}

/// Drops `slot` (it must be inactive).
pub async fn drop_slot(client: &Client, slot: &str) -> Result<()> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| anyhow!("dropping replication slot `{slot}`: {}", db_message(&e)))?;
    Ok(())
}

/// Teaches `types` the database's own types (enums, domains, their arrays).
pub async fn learn_types(client: &Client, types: &mut TypeRegistry, oids: &[u32]) -> Result<()> {
    for &oid in oids {
        if types.knows(oid) {
            continue;
        }
        let row = client
            .query_opt(
                "SELECT typcategory::text, NULLIF(typelem, 0) FROM pg_type WHERE oid = $1",
                &[&oid],
            )
            .await?;
        if let Some(row) = row {
            let category: String = row.get(0);
            let elem: Option<u32> = row.get(1);
            if let Some(e) = elem {
                if !types.knows(e) {
                    Box::pin(learn_types(client, types, &[e])).await?;
                }
            }
            types.learn(oid, &category, elem);
        }
    }
    Ok(())
}

/// Estimated rows in `table`: the planner's figure, or an exact count when
/// the table has never been analysed.
pub async fn estimate_rows(client: &Client, table: &TableRef) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.table],
        )
        .await?;
    let estimate: f64 = row.get(0);
    if estimate > 0.0 {
        return Ok(estimate as u64);
    }
    let row = client
        .query_one(&format!("SELECT count(*) FROM {}", table.quoted()), &[])
        .await?;
    let n: i64 = row.get(0);
    Ok(n.max(0) as u64)
}

/// The server's message for a query error.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}
