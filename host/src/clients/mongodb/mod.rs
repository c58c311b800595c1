//! The MongoDB client pieces shared by the `mongodb` source and sink: the
//! connection (official driver), error messages that name the fix, and the
//! BSON ⇄ JSON mapping.

pub mod client;
pub mod errors;
pub mod mapping;
pub mod tls;

use crate::connector::ConfigIssue;

/// Checks a MongoDB connection string's scheme (shared with the sink).
pub fn check_uri(uri: &str) -> Result<(), ConfigIssue> {
    if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") {
        Ok(())
    } else {
        Err(ConfigIssue::at("uri", format!(
                "`{}` is not a MongoDB connection string; expected mongodb://host:port/… or mongodb+srv://…",
                errors::redact(uri)
            )))
    }
}

/// The hosts a MongoDB connection string reaches, parsed by the driver
/// without looking anything up: each seed host, or the `mongodb+srv://`
/// name (its port unknown: DNS gives it). Replica-set members the seeds
/// announce are not listed: they are the granted cluster's own.
pub fn endpoints(uri: &str) -> crate::connector::endpoint::Reach {
    use crate::connector::endpoint::{unix_socket, Endpoint};
    use mongodb::options::{ConnectionString, HostInfo, ServerAddress};
    let parsed = ConnectionString::parse(uri).ok()?;
    match parsed.host_info {
        HostInfo::DnsRecord(name) => Some(vec![Endpoint::new(&name, None)]),
        HostInfo::HostIdentifiers(hosts) => Some(
            hosts
                .iter()
                .map(|a| match a {
                    ServerAddress::Tcp { host, port } => {
                        Endpoint::new(host, Some(port.unwrap_or(27017)))
                    }
                    ServerAddress::Unix { path } => unix_socket(&path.display().to_string()),
                    // The driver's enum may grow: an address we cannot
                    // read matches no grant but `*`.
                    #[allow(unreachable_patterns)]
                    _ => unix_socket("?"),
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
