//! Connecting with the official driver (shared by the source and the sink):
//! a bounded server selection timeout and a `ping`, so an unreachable server
//! or wrong credentials fail at start with a message naming the fix.

use std::time::Duration;

use anyhow::{anyhow, Result};
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::sync::Client;

use super::errors::{connect_error, redact};
use super::tls::Access;

/// A client for `uri` (with `access`: TLS, password file) that has
/// answered a `ping`.
pub fn connect(uri: &str, access: Access<'_>, timeout_ms: u64) -> Result<(Client, ClientOptions)> {
    let mut options = ClientOptions::parse(uri)
        .run()
        .map_err(|e| anyhow!("invalid MongoDB connection string {}: {e}", redact(uri)))?;
    access.apply(&mut options)?;
    options.server_selection_timeout = Some(Duration::from_millis(timeout_ms));
    options.connect_timeout = Some(Duration::from_millis(timeout_ms));
    if options.app_name.is_none() {
        options.app_name = Some("sluice".into());
    }
    let client =
        Client::with_options(options.clone()).map_err(|e| connect_error(&e, uri, timeout_ms))?;
    client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .run()
        .map_err(|e| connect_error(&e, uri, timeout_ms))?;
    Ok((client, options))
}
