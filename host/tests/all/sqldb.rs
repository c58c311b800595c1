//! Test-side access to the SQL services: PostgreSQL 15 (`scripts/services/postgres.sh`,
//! URL in `SLUICE_PG_URL`) and MariaDB 10.11 (`scripts/services/mariadb.sh`, URL in
//! `SLUICE_MYSQL_URL`), both real servers from Debian packages. The clients are the
//! same crates the host uses. Every test makes its own uniquely named tables.

use mysql_async::prelude::Queryable;

pub fn pg_url() -> String {
    crate::support::service("SLUICE_PG_URL", "postgres")
}

pub fn mysql_url() -> String {
    crate::support::service("SLUICE_MYSQL_URL", "mariadb")
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mysql,
}

impl Kind {
    /// The sink/source `type` and URL.
    pub fn sink_type(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }

    pub fn url(self) -> String {
        match self {
            Kind::Postgres => pg_url(),
            Kind::Mysql => mysql_url(),
        }
    }

    /// Quotes an identifier.
    pub fn q(self, name: &str) -> String {
        match self {
            Kind::Postgres => format!("\"{name}\""),
            Kind::Mysql => format!("`{name}`"),
        }
    }

    /// Runs statements (`;`-separated).
    pub fn exec(self, sql: &str) {
        let rt = rt();
        match self {
            Kind::Postgres => rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
                    .await
                    .expect("connect to PostgreSQL");
                tokio::spawn(conn);
                client
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }),
            Kind::Mysql => rt.block_on(async {
                let mut conn = mysql_async::Conn::from_url(mysql_url())
                    .await
                    .expect("connect to MySQL");
                conn.query_drop(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.disconnect().await;
            }),
        }
    }

    /// Every row of `sql`, each value as text (NULL as `None`).
    pub fn rows(self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rt = rt();
        match self {
            Kind::Postgres => rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
                    .await
                    .expect("connect to PostgreSQL");
                tokio::spawn(conn);
                let msgs = client
                    .simple_query(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                msgs.iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect()
            }),
            Kind::Mysql => rt.block_on(async {
                let mut conn = mysql_async::Conn::from_url(mysql_url())
                    .await
                    .expect("connect to MySQL");
                let rows: Vec<mysql_async::Row> = conn
                    .query(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.disconnect().await;
                rows.into_iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.get::<Option<String>, usize>(i).flatten())
                            .collect()
                    })
                    .collect()
            }),
        }
    }

    /// Rows of `sql` as `|`-joined strings (NULL as `∅`), for compact asserts.
    pub fn flat(self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| "∅".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    /// Column names of `table`, in order.
    pub fn columns(self, table: &str) -> Vec<String> {
        let sql = match self {
            Kind::Postgres => format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
            ),
            Kind::Mysql => format!(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
            ),
        };
        self.flat(&sql)
    }
}
