//! The initial snapshot: every selected table read through a cursor inside
//! one REPEATABLE READ transaction that imports the snapshot exported when
//! the replication slot was created, so the rows read are exactly those
//! committed before the slot's first change.

use anyhow::{Context, Result};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::catalog::{self, quote_literal, TableRef};
use super::pgoutput::{Datum, Relation};

/// A snapshot in progress.
pub struct Snapshot {
    tables: Vec<(TableRef, Relation, u64)>,
    index: usize,
    cursor_open: bool,
    rows_in_table: u64,
    /// Rows read so far, all tables.
    pub rows_done: u64,
    /// Estimated rows, all tables.
    pub rows_total: u64,
}

/// A batch of rows from one table.
pub struct Rows {
    /// The table's shape.
    pub relation: Relation,
    /// Rows as text datums, in column order.
    pub rows: Vec<Vec<Datum>>,
}

impl Snapshot {
    /// Starts the snapshot transaction on `client`, importing `snapshot_name`.
    pub async fn begin(
        client: &Client,
        snapshot_name: &str,
        tables: Vec<(TableRef, Relation)>,
    ) -> Result<Self> {
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(snapshot_name)
            ))
            .await
            .context("importing the slot's exported snapshot")?;
        let mut with_estimates = Vec::with_capacity(tables.len());
        let mut total = 0;
        for (t, rel) in tables {
            let n = catalog::estimate_rows(client, &t).await?;
            total += n;
            with_estimates.push((t, rel, n));
        }
        Ok(Self {
            tables: with_estimates,
            index: 0,
            cursor_open: false,
            rows_in_table: 0,
            rows_done: 0,
            rows_total: total,
        })
    }

    /// Up to `max` rows of the current table; `None` when every table is done
    /// (the transaction is then closed).
    pub async fn next(&mut self, client: &Client, max: usize) -> Result<Option<Rows>> {
        loop {
            let Some((table, rel, estimate)) = self.tables.get(self.index) else {
                client.batch_execute("COMMIT").await?;
                return Ok(None);
            };
            if !self.cursor_open {
                let columns = rel
                    .columns
                    .iter()
                    .map(|c| catalog::quote_ident(&c.name))
                    .collect::<Vec<_>>()
                    .join(", ");
                client
                    .batch_execute(&format!(
                        "DECLARE sluice_snapshot NO SCROLL CURSOR FOR SELECT {columns} FROM {}",
                        table.quoted()
                    ))
                    .await
                    .with_context(|| format!("reading table `{table}`"))?;
                self.cursor_open = true;
                self.rows_in_table = 0;
                tracing::info!(table = %table, estimated_rows = estimate, "snapshot: reading table");
            }
            let messages = client
                .simple_query(&format!("FETCH {} FROM sluice_snapshot", max.max(1)))
                .await
                .with_context(|| format!("reading table `{table}`"))?;
            let mut rows = Vec::new();
            for m in messages {
                if let SimpleQueryMessage::Row(r) = m {
                    let mut datums = Vec::with_capacity(r.len());
                    for i in 0..r.len() {
                        datums.push(match r.get(i) {
                            Some(s) => Datum::Text(s.to_string()),
                            None => Datum::Null,
                        });
                    }
                    rows.push(datums);
                }
            }
            if rows.is_empty() {
                client.batch_execute("CLOSE sluice_snapshot").await?;
                tracing::info!(table = %table, rows = self.rows_in_table, "snapshot: table done");
                self.cursor_open = false;
                self.index += 1;
                continue;
            }
            self.rows_in_table += rows.len() as u64;
            self.rows_done += rows.len() as u64;
            return Ok(Some(Rows {
                relation: rel.clone(),
                rows,
            }));
        }
    }
}
