//! The PostgreSQL client pieces shared by the `postgres` sink and the
//! `postgres-poll` source: connecting with errors that name the fix, and
//! classifying server errors by what to do about them. TLS and the URL's
//! libpq parameters are in [`super::postgres_tls`].

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

pub use super::postgres_tls::PgTarget;

use super::sql::chain;
use crate::connector::ErrorClass;

/// Classifies a tokio-postgres error.
pub fn classify(e: &tokio_postgres::Error) -> ErrorClass {
    let Some(db) = e.as_db_error() else {
        // No server error: the connection is gone, closed or timed out.
        return ErrorClass::Retry(chain(e));
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
        return ErrorClass::Fatal(msg);
    }
    // The table or a column vanished (dropped meanwhile): re-read the schema
    // and try again. No unique index for ON CONFLICT: a setup problem.
    if code == "42P01" || code == "42703" {
        return ErrorClass::Retry(msg);
    }
    if code == "42P10" {
        return ErrorClass::Fatal(format!(
            "{msg}; `mode: upsert` needs a primary key or unique index on `key_fields`"
        ));
    }
    match code.get(..2).unwrap_or_default() {
        // Data exceptions, integrity constraints, bad columns or syntax for
        // this row's data, check violations.
        "22" | "23" | "42" | "44" => ErrorClass::Rejected(msg),
        // Connection exceptions, serialization failures and deadlocks,
        // resources, operator intervention (shutdown).
        "08" | "40" | "53" | "57" | "58" => ErrorClass::Retry(msg),
        _ => ErrorClass::Fatal(msg),
    }
}

/// Connects on `rt`, running the connection task there. Errors say whether
/// TLS, the credentials, the database or the network is the problem.
pub fn connect(
    rt: &tokio::runtime::Runtime,
    target: &PgTarget,
    timeout: Duration,
) -> Result<Client, ErrorClass> {
    let mut target = target.clone();
    target.config.connect_timeout(timeout);
    let where_ = target.describe();
    rt.block_on(target.connect()).map_err(|e| {
        if let Some(why) = target.explain_tls(&e) {
            // A certificate or TLS setting does not fix itself on retry.
            return ErrorClass::Fatal(why);
        }
        let class = classify(&e);
        let what = match &class {
            ErrorClass::Fatal(m) if m.contains("SQLSTATE 28") => format!(
                "PostgreSQL at {where_} refused the credentials: {m}; check the user and password in `url`"
            ),
            ErrorClass::Fatal(m) if m.contains("SQLSTATE 3D") => format!(
                "PostgreSQL at {where_}: {m}; check the database name in `url`"
            ),
            _ => format!("cannot connect to PostgreSQL at {where_}: {}", chain(&e)),
        };
        match class {
            ErrorClass::Retry(_) => ErrorClass::Retry(what),
            _ => ErrorClass::Fatal(what),
        }
    })
}
