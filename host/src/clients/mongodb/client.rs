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
    bound_pool(&mut options);
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

/// The most connections to one server a source or sink keeps: it reads or
/// writes on one thread, so the driver's default pool (10) is already more
/// than it uses.
const MAX_POOL: u32 = 10;
/// The most hosts a connection string (or a `mongodb+srv` name) may list.
const MAX_SRV_HOSTS: u32 = 16;

/// Holds the URI's pool options to [`MAX_POOL`] and its hosts to
/// [`MAX_SRV_HOSTS`]: the
/// driver opens `minPoolSize` connections per host without comparing it to
/// `maxPoolSize`, so `?minPoolSize=100000` in a pipeline file would open that
/// many against a shared database.
fn bound_pool(options: &mut ClientOptions) {
    let max = options.max_pool_size.unwrap_or(MAX_POOL).clamp(1, MAX_POOL);
    let min = options.min_pool_size.unwrap_or(0).min(max);
    let srv = options.srv_max_hosts.map(|n| n.min(MAX_SRV_HOSTS));
    let changed = options.max_pool_size.is_some_and(|m| m != max)
        || options.min_pool_size.is_some_and(|m| m != min)
        || options.srv_max_hosts != srv && options.srv_max_hosts.is_some();
    if changed {
        tracing::warn!(
            "mongodb: the connection string's pool options are held to maxPoolSize ≤ {MAX_POOL}, \
             minPoolSize ≤ maxPoolSize and srvMaxHosts ≤ {MAX_SRV_HOSTS} (now {max}, {min}, {srv:?})"
        );
    }
    options.max_pool_size = Some(max);
    options.min_pool_size = Some(min);
    // Left unset when the URI does not set it: the driver refuses it next to
    // some other options (a plain host list, `replicaSet`).
    options.srv_max_hosts = srv;
    // Parsing already resolved a `mongodb+srv` name into `hosts`, with the
    // URI's own `srvMaxHosts` or none: the seed list is held here.
    if options.hosts.len() > MAX_SRV_HOSTS as usize {
        tracing::warn!(
            "mongodb: the connection string names {} hosts; connecting to the first {MAX_SRV_HOSTS}",
            options.hosts.len()
        );
        options.hosts.truncate(MAX_SRV_HOSTS as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(uri: &str) -> ClientOptions {
        let mut o = ClientOptions::parse(uri).run().expect("uri");
        bound_pool(&mut o);
        o
    }

    #[test]
    fn pool_options_in_the_uri_cannot_open_a_flood_of_connections() {
        let o = parsed("mongodb://db.example:27017/?minPoolSize=100000&maxPoolSize=500000");
        assert_eq!((o.min_pool_size, o.max_pool_size), (Some(10), Some(10)));
        let o = parsed("mongodb://db.example:27017/?minPoolSize=3&maxPoolSize=5");
        assert_eq!((o.min_pool_size, o.max_pool_size), (Some(3), Some(5)));
        let o = parsed("mongodb://db.example:27017/");
        assert_eq!((o.min_pool_size, o.max_pool_size), (Some(0), Some(10)));
        assert_eq!(o.srv_max_hosts, None);
        let many: Vec<String> = (0..40).map(|i| format!("h{i}.example:27017")).collect();
        let o = parsed(&format!("mongodb://{}/", many.join(",")));
        assert_eq!(o.hosts.len(), 16, "a seed list is held to 16 hosts");
    }
}
