//! Where and how to reach PostgreSQL: the URL (with libpq's TLS parameters,
//! `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, which tokio-postgres does
//! not read) and the `tls:` block, merged and validated once. Shared by the
//! `postgres` sink, the `postgres-poll` source and `postgres-cdc` (whose
//! replication client does its own SSLRequest with the same [`Tls`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{read_password_file, FieldNames, Tls, TlsMode, TlsOptions, TLS_FIELDS};
use crate::connector::ConfigIssue;

/// The libpq parameters as named in messages.
const URL_FIELDS: FieldNames = FieldNames {
    anchor: "url",
    mode: "url (sslmode)",
    ca_file: "url (sslrootcert)",
    cert_file: "url (sslcert)",
    key_file: "url (sslkey)",
    server_name: "url",
};

/// When neither the URL nor `tls:` says: plaintext, as before TLS support
/// (libpq would try `prefer`; we do not encrypt unless asked).
pub const DEFAULT_MODE: TlsMode = TlsMode::Disable;

/// A validated PostgreSQL target.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// tokio-postgres' view of the URL (without the libpq TLS parameters).
    pub config: tokio_postgres::Config,
    /// TLS, unless disabled.
    pub tls: Option<Tls>,
}

impl PgTarget {
    /// Parses `url` and merges `tls` (its fields win over the URL's; the same
    /// field set differently in both is an issue). Files are read here; the
    /// password in `password_file` replaces the URL's.
    pub fn new(
        url: &str,
        tls: Option<&TlsOptions>,
        password_file: Option<&Path>,
    ) -> Result<Self, ConfigIssue> {
        let (rest, from_url) = split_libpq_tls(url)?;
        let config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            ConfigIssue::at(
                "url",
                format!("not a PostgreSQL URL ({e}); expected postgres://user:password@host:port/database"),
            )
        })?;
        // Each source's files are checked under its own name first.
        from_url.build(DEFAULT_MODE, URL_FIELDS)?;
        let merged = tls
            .cloned()
            .unwrap_or_default()
            .merged_with(&from_url, TLS_FIELDS)?;
        let tls = merged.build(DEFAULT_MODE, TLS_FIELDS)?;
        let mut config = config;
        if let Some(path) = password_file {
            config.password(read_password_file(path)?);
        }
        config.ssl_mode(match tls.as_ref().map(|t| t.mode) {
            None => SslMode::Disable,
            Some(TlsMode::Prefer) => SslMode::Prefer,
            Some(_) => SslMode::Require,
        });
        Ok(Self { config, tls })
    }

    /// `host:port` of the first host, for messages.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    /// The first host (a socket directory for Unix sockets).
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        }
    }

    /// The first port.
    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    /// The name the certificate must carry (`server_name`, else the host).
    pub fn tls_name(&self) -> String {
        self.tls
            .as_ref()
            .and_then(|t| t.server_name.clone())
            .unwrap_or_else(|| self.host())
    }

    /// Connects and spawns the connection task on the current runtime.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        match &self.tls {
            None => {
                let (client, conn) = self.config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("PostgreSQL connection ended: {e}");
                    }
                });
                Ok(client)
            }
            Some(tls) => {
                let make = NamedTls {
                    inner: MakeRustlsConnect::new((*tls.config).clone()),
                    name: tls.server_name.clone(),
                };
                let (client, conn) = self.config.connect(make).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("PostgreSQL connection ended: {e}");
                    }
                });
                Ok(client)
            }
        }
    }

    /// What went wrong connecting, as cause and fix, when it is about TLS
    /// (a failed handshake, a server without TLS, or a server that wants
    /// TLS from a plaintext client). `None` when it is not.
    pub fn explain_tls(&self, e: &tokio_postgres::Error) -> Option<String> {
        let target = format!("PostgreSQL at {}", self.describe());
        if let Some(t) = super::tls::find_tls_error(e) {
            return Some(super::tls::explain(t, &target, &self.tls_name()));
        }
        let text = e.to_string();
        if text.contains("server does not support TLS") {
            return Some(no_tls_on_server(&target));
        }
        let db = e.as_db_error()?;
        if db.code().code() != "28000" {
            return None;
        }
        if db.message().contains("no encryption") {
            return Some(tls_required(&target, db.message()));
        }
        db.message()
            .contains("client certificate")
            .then(|| client_cert_required(&target, db.message()))
    }
}

/// The message for a server whose pg_hba.conf wants a client certificate.
pub fn client_cert_required(target: &str, server: &str) -> String {
    format!(
        "{target} requires a client certificate for this user ({server}). Fix: set `tls.cert_file` and `tls.key_file` to a certificate issued to this user by a CA in the server's ssl_ca_file"
    )
}

/// The message for a server that answered "no TLS" to a client requiring it.
pub fn no_tls_on_server(target: &str) -> String {
    format!(
        "{target} does not accept TLS connections, and `tls.mode` requires TLS. Fix: enable `ssl = on` on the server, or set `tls.mode: prefer` (or disable) to allow plaintext"
    )
}

/// The message for a server whose pg_hba.conf refused a plaintext connection.
pub fn tls_required(target: &str, server: &str) -> String {
    format!(
        "{target} requires TLS for this connection ({server}). Fix: set `tls: {{mode: verify-full, ca_file: <the server's CA>}}` (or `sslmode=verify-full&sslrootcert=...` in `url`)"
    )
}

/// The hosts a PostgreSQL URL reaches, read as tokio-postgres reads it
/// (`?host=` and `?port=` included; a socket directory matches no host
/// grant but `*`). `None` when it does not parse.
pub fn endpoints(url: &str) -> crate::connector::endpoint::Reach {
    use crate::connector::endpoint::{unix_socket, Endpoint};
    let (rest, _) = split_libpq_tls(url).ok()?;
    let config = tokio_postgres::Config::from_str(&rest).ok()?;
    let ports = config.get_ports();
    let out = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                tokio_postgres::config::Host::Tcp(name) => Endpoint::new(name, Some(port)),
                tokio_postgres::config::Host::Unix(dir) => unix_socket(&dir.display().to_string()),
            }
        })
        .collect::<Vec<_>>();
    // No host: tokio-postgres refuses to connect, and so does the server.
    (!out.is_empty()).then_some(out)
}

/// Takes libpq's TLS parameters out of a `postgres://` URL's query. Other
/// forms (key=value strings) go through unchanged.
fn split_libpq_tls(url: &str) -> Result<(String, TlsOptions), ConfigIssue> {
    let mut options = TlsOptions::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), options));
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok((url.to_string(), options));
    }
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            percent_decode(v).ok_or_else(|| {
                ConfigIssue::at("url", format!("`{k}` has a malformed %-escape in `{v}`"))
            })
        };
        match k {
            "sslmode" => {
                let v = value()?;
                options.mode = Some(TlsMode::parse(&v).ok_or_else(|| {
                    ConfigIssue::at(
                        "url",
                        format!("sslmode `{v}` is not one of disable, prefer, require, verify-ca, verify-full"),
                    )
                })?);
            }
            "sslrootcert" => options.ca_file = Some(PathBuf::from(value()?)),
            "sslcert" => options.cert_file = Some(PathBuf::from(value()?)),
            "sslkey" => options.key_file = Some(PathBuf::from(value()?)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, options))
}

/// Decodes `%XX` escapes; `None` for a malformed one or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The rustls adapter, verifying `name` instead of the URL's host when set.
#[derive(Clone)]
struct NamedTls {
    inner: MakeRustlsConnect,
    name: Option<String>,
}

impl<S> MakeTlsConnect<S> for NamedTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = self.name.as_deref().unwrap_or(host);
        <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.inner, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_leave_the_url() {
        let (rest, o) = split_libpq_tls(
            "postgres://u:p@db:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(o.mode, Some(TlsMode::VerifyFull));
        assert_eq!(o.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, o) =
            split_libpq_tls("postgres://db/x?sslmode=disable").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(o.mode, Some(TlsMode::Disable));
    }

    #[test]
    fn bad_libpq_parameters_are_named() {
        let e = PgTarget::new("postgres://db/x?sslmode=always", None, None).err();
        assert_eq!(e.as_ref().map(|i| i.field.as_str()), Some("url"));
        let e = PgTarget::new(
            "postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            None,
            None,
        )
        .err();
        assert_eq!(
            e.as_ref().map(|i| i.field.as_str()),
            Some("url (sslrootcert)")
        );
        assert!(e
            .map(|i| i.message)
            .unwrap_or_default()
            .contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn modes_map_to_tokio_postgres() {
        let t = PgTarget::new("postgres://db/x", None, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.tls.is_none());
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
        let t = PgTarget::new("postgres://db/x?sslmode=require", None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.tls.map(|t| t.mode), Some(TlsMode::Require));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
    }
}
