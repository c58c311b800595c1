//! The `tls:` block as mysql_async's [`SslOpts`] (rustls with ring), and TLS
//! failures as cause and fix. The files are also loaded once through
//! [`TlsOptions::build`] so a bad path or PEM fails at validation.

use std::path::PathBuf;

use mysql_async::{ClientIdentity, SslOpts};

use crate::clients::tls::{self, TlsMode, TlsOptions, TLS_FIELDS};
use crate::connector::ConfigIssue;

/// mysql_async's options for `tls` (`None`: plaintext, the default).
pub fn ssl_opts(options: Option<&TlsOptions>) -> Result<Option<SslOpts>, ConfigIssue> {
    let Some(options) = options else {
        return Ok(None);
    };
    if options.build(TlsMode::Disable, TLS_FIELDS)?.is_none() {
        return Ok(None);
    }
    let mut ssl = SslOpts::default();
    // Not the built mode: `require` with a CA file would become `verify-ca`.
    match options.mode.unwrap_or(TlsMode::Disable) {
        TlsMode::Prefer => {
            return Err(ConfigIssue::anchored(
                "tls",
                "tls.mode",
                "`prefer` is not supported by the mysql sink (its client cannot fall back to plaintext); use `require`, `verify-ca` or `verify-full`",
            ))
        }
        TlsMode::Require => {
            ssl = ssl.with_danger_accept_invalid_certs(true);
        }
        // mysql_async 0.37 recognises a name mismatch by the text
        // "NotValidForName", which rustls 0.23's errors no longer contain, so
        // its "skip the name check" fails every connection: refuse it here.
        TlsMode::VerifyCa => {
            return Err(ConfigIssue::anchored(
                "tls",
                "tls.mode",
                "`verify-ca` is not supported by the mysql sink; use `verify-full` (with `server_name` set to the name in the server's certificate when the URL's host differs)",
            ))
        }
        TlsMode::VerifyFull | TlsMode::Disable => {}
    }
    if let Some(ca) = &options.ca_file {
        ssl = ssl
            .with_root_certs(vec![PathBuf::from(ca).into()])
            .with_disable_built_in_roots(true);
    }
    if let (Some(cert), Some(key)) = (&options.cert_file, &options.key_file) {
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(
            PathBuf::from(cert).into(),
            PathBuf::from(key).into(),
        )));
    }
    if let Some(name) = &options.server_name {
        ssl = ssl.with_danger_tls_hostname_override(Some(name.clone()));
    }
    Ok(Some(ssl))
}

/// A TLS-related connection failure as cause and fix; `None` otherwise.
pub fn explain(e: &mysql_async::Error, target: &str, name: &str) -> Option<String> {
    if let Some(t) = tls::find_tls_error(e) {
        return Some(tls::explain(t, target, name));
    }
    let text = e.to_string();
    if text.contains("insecure transport") {
        return Some(format!(
            "{target} requires TLS ({text}). Fix: set `tls: {{mode: verify-full, ca_file: <the server's CA>}}`"
        ));
    }
    if text.contains("server does not have this capability") {
        return Some(format!(
            "{target} does not accept TLS connections, and `tls.mode` requires TLS. Fix: enable TLS on the server (ssl_cert, ssl_key), or remove `tls`"
        ));
    }
    None
}
