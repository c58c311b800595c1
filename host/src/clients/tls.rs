//! One TLS shape for every connector that talks to a database or broker:
//!
//! ```yaml
//! tls:
//!   mode: verify-full        # disable | prefer | require | verify-ca | verify-full
//!   ca_file: certs/ca.pem    # CAs to trust (default: the public web PKI roots)
//!   cert_file: certs/me.pem  # client certificate chain (with key_file)
//!   key_file: certs/me.key
//!   server_name: db.internal # name to verify instead of the URL's host
//!   key_password_file: /run/secrets/key-pw  # Kafka only: an encrypted key_file
//! ```
//!
//! The modes mean what libpq's `sslmode` means:
//! - `disable`: plaintext;
//! - `prefer`: TLS when the server offers it, plaintext otherwise, no
//!   verification (it protects against passive eavesdroppers only);
//! - `require`: TLS or fail, but the certificate is NOT verified (anyone in
//!   the middle can present one), unless `ca_file` is set: then, as in libpq,
//!   it behaves like `verify-ca`;
//! - `verify-ca`: TLS, and the server's chain must lead to a trusted CA (the
//!   host name is not checked);
//! - `verify-full`: TLS, trusted chain, and the certificate must name the host
//!   (or `server_name`).
//!
//! Files are read and parsed once, when the pipeline is validated, so a bad
//! path or PEM fails there with the field's name. Everything uses rustls with
//! the ring provider, like the rest of the host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use serde::Deserialize;

use crate::connector::ConfigIssue;

/// How much TLS a connection asks for (libpq's `sslmode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plaintext.
    Disable,
    /// TLS if the server offers it, without verification.
    Prefer,
    /// TLS, without verification (unless a CA file is given).
    Require,
    /// TLS with a chain check, no host name check.
    VerifyCa,
    /// TLS with a chain check and a host name check.
    VerifyFull,
}

impl TlsMode {
    /// Parses libpq's spelling (`verify-full`, also `verify_full`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.replace('_', "-").as_str() {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The spelling users write.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The `tls:` block of a connector's configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`; when
    /// absent, the connector's default (see its docs).
    pub mode: Option<TlsMode>,
    /// PEM file with the CA certificates to trust; default: the public web
    /// PKI roots (Mozilla's list, built in).
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate chain (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    pub key_file: Option<PathBuf>,
    /// Host name to send (SNI) and to verify, when the URL's host is an
    /// address or a tunnel's name rather than the certificate's.
    pub server_name: Option<String>,
    /// The password of an encrypted `key_file` (Kafka only: librdkafka's
    /// `ssl.key.password`). Never shown in Debug output or messages.
    pub key_password: Option<String>,
    /// A file whose first line is `key_password` (a mounted secret).
    pub key_password_file: Option<PathBuf>,
}

// By hand, to keep the key's password out of every printed form (Debug
// output is what checkpoints fingerprint and what debug logs show), and to
// print exactly what the derived form printed while the two password fields
// are unset, so fingerprints taken before they existed still match.
impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TlsOptions");
        d.field("mode", &self.mode)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("server_name", &self.server_name);
        if self.key_password.is_some() {
            d.field("key_password", &"<redacted>");
        }
        if let Some(p) = &self.key_password_file {
            d.field("key_password_file", p);
        }
        d.finish()
    }
}

/// What each option is called where it came from, for error messages: the
/// `tls:` block or a connection URL's own parameters.
#[derive(Debug, Clone, Copy)]
pub struct FieldNames {
    /// The line an issue points at.
    pub anchor: &'static str,
    /// `mode`.
    pub mode: &'static str,
    /// `ca_file`.
    pub ca_file: &'static str,
    /// `cert_file`.
    pub cert_file: &'static str,
    /// `key_file`.
    pub key_file: &'static str,
    /// `server_name`.
    pub server_name: &'static str,
}

/// Names in a `tls:` block.
pub const TLS_FIELDS: FieldNames = FieldNames {
    anchor: "tls",
    mode: "tls.mode",
    ca_file: "tls.ca_file",
    cert_file: "tls.cert_file",
    key_file: "tls.key_file",
    server_name: "tls.server_name",
};

/// A TLS configuration ready to connect with.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The effective mode (never `disable`).
    pub mode: TlsMode,
    /// The rustls configuration (verifier, client certificate).
    pub config: Arc<ClientConfig>,
    /// The name to verify instead of the connection's host, if set.
    pub server_name: Option<String>,
}

impl Tls {
    /// The name to send and verify for a connection to `host`.
    pub fn name_for(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string()).map_err(|e| {
            format!("`{name}` is not a valid TLS server name ({e}); set `tls.server_name`")
        })
    }
}

/// The ring provider every TLS connection of the host uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsOptions {
    /// Makes relative file paths relative to the pipeline file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.ca_file,
            &mut self.cert_file,
            &mut self.key_file,
            &mut self.key_password_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// `self`, with what it leaves unset taken from `other` (e.g. the URL's
    /// own spelling). A value set differently in both is an issue.
    pub fn merged_with(&self, other: &TlsOptions, names: FieldNames) -> Result<Self, ConfigIssue> {
        fn pick<T: Clone + PartialEq + std::fmt::Debug>(
            a: &Option<T>,
            b: &Option<T>,
            field: &str,
            anchor: &str,
        ) -> Result<Option<T>, ConfigIssue> {
            match (a, b) {
                (Some(x), Some(y)) if x != y => Err(ConfigIssue::anchored(
                    anchor,
                    field,
                    format!("set to {x:?} here and to {y:?} in the URL; keep one"),
                )),
                (Some(x), _) => Ok(Some(x.clone())),
                (None, y) => Ok(y.clone()),
            }
        }
        let a = names.anchor;
        Ok(Self {
            mode: pick(&self.mode, &other.mode, names.mode, a)?,
            ca_file: pick(&self.ca_file, &other.ca_file, names.ca_file, a)?,
            cert_file: pick(&self.cert_file, &other.cert_file, names.cert_file, a)?,
            key_file: pick(&self.key_file, &other.key_file, names.key_file, a)?,
            server_name: pick(&self.server_name, &other.server_name, names.server_name, a)?,
            key_password: self
                .key_password
                .clone()
                .or_else(|| other.key_password.clone()),
            key_password_file: self
                .key_password_file
                .clone()
                .or_else(|| other.key_password_file.clone()),
        })
    }

    /// For a client that decrypts `key_file` itself (librdkafka): the key's
    /// password (read from `key_password_file` if that is where it is), and
    /// these options without it, and without the encrypted key and its
    /// certificate, which rustls cannot read, for [`TlsOptions::build`].
    /// The certificate file is still read here, so a bad path fails at
    /// validation; the key is checked by the client when it loads it.
    pub fn split_key_password(&self) -> Result<(TlsOptions, Option<String>), ConfigIssue> {
        let issue = |field: &str, m: String| ConfigIssue::anchored("tls", field, m);
        let password = match (&self.key_password, &self.key_password_file) {
            (Some(_), Some(_)) => {
                return Err(issue(
                    "tls.key_password_file",
                    "set `key_password` or `key_password_file`, not both".into(),
                ))
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(path)) => Some(
                read_password_file(path).map_err(|i| issue("tls.key_password_file", i.message))?,
            ),
            (None, None) => None,
        };
        let mut rest = self.clone();
        rest.key_password = None;
        rest.key_password_file = None;
        if password.is_some() {
            let (Some(cert), Some(_)) = (&self.cert_file, &self.key_file) else {
                return Err(issue(
                    "tls.key_password",
                    "is the password of an encrypted `key_file`; set `cert_file` and `key_file` too".into(),
                ));
            };
            read_certs(cert).map_err(|m| issue("tls.cert_file", m))?;
            rest.cert_file = None;
            rest.key_file = None;
        }
        Ok((rest, password))
    }

    /// Reads the files and builds the client configuration; `None` for
    /// `disable`. `default_mode` applies when `mode` is unset.
    pub fn build(
        &self,
        default_mode: TlsMode,
        names: FieldNames,
    ) -> Result<Option<Tls>, ConfigIssue> {
        let issue = |field: &str, m: String| ConfigIssue::anchored(names.anchor, field, m);
        if let Some(field) = [
            (self.key_password.is_some(), "tls.key_password"),
            (self.key_password_file.is_some(), "tls.key_password_file"),
        ]
        .iter()
        .find_map(|(set, f)| set.then_some(*f))
        {
            return Err(issue(
                field,
                "is supported by the Kafka connectors only (librdkafka decrypts the key); decrypt the key once (`openssl pkey -in KEY -out KEY.pem`), keep it as a secret, and point `key_file` at it".into(),
            ));
        }
        let mut mode = self.mode.unwrap_or(default_mode);
        if mode == TlsMode::Disable {
            if let Some(field) = [
                (self.ca_file.is_some(), names.ca_file),
                (self.cert_file.is_some(), names.cert_file),
                (self.key_file.is_some(), names.key_file),
                (self.server_name.is_some(), names.server_name),
            ]
            .iter()
            .find_map(|(set, f)| set.then_some(*f))
            {
                return Err(issue(
                    field,
                    format!(
                        "has no effect with TLS disabled; set `{}` to verify-full (or verify-ca, require)",
                        names.mode
                    ),
                ));
            }
            return Ok(None);
        }
        // As libpq: `require` with a CA to check against checks it.
        if mode == TlsMode::Require && self.ca_file.is_some() {
            mode = TlsMode::VerifyCa;
        }
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str()).map_err(|e| {
                issue(
                    names.server_name,
                    format!("`{name}` is not a host name or IP address ({e})"),
                )
            })?;
        }
        let provider = provider();
        let roots = match &self.ca_file {
            Some(path) => {
                let certs = read_certs(path).map_err(|m| issue(names.ca_file, m))?;
                let mut roots = RootCertStore::empty();
                for (i, cert) in certs.into_iter().enumerate() {
                    roots.add(cert).map_err(|e| {
                        issue(
                            names.ca_file,
                            format!(
                                "certificate {} in {} is not a usable CA certificate ({e})",
                                i + 1,
                                path.display()
                            ),
                        )
                    })?;
                }
                roots
            }
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| {
                issue(
                    names.ca_file,
                    format!("cannot build a verifier from these CAs: {e}"),
                )
            })?;
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            TlsMode::VerifyFull => webpki,
            TlsMode::VerifyCa => Arc::new(ChainOnly(webpki)),
            _ => Arc::new(NoVerification(provider.clone())),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                issue(
                    names.mode,
                    format!("no TLS protocol version available: {e}"),
                )
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert).map_err(|m| issue(names.cert_file, m))?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    issue(
                        names.key_file,
                        format!("cannot read a PEM private key from {}: {e}", key.display()),
                    )
                })?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    issue(
                        names.cert_file,
                        format!(
                            "cannot use the client certificate in {} with the key in {}: {e}",
                            cert.display(),
                            key.display()
                        ),
                    )
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(issue(
                    names.key_file,
                    format!("`{}` needs `{}` too", names.cert_file, names.key_file),
                ))
            }
            (None, Some(_)) => {
                return Err(issue(
                    names.cert_file,
                    format!("`{}` needs `{}` too", names.key_file, names.cert_file),
                ))
            }
        };
        Ok(Some(Tls {
            mode,
            config: Arc::new(config),
            server_name: self.server_name.clone(),
        }))
    }
}

/// A password from a file (a mounted secret): the first line, so a trailing
/// newline is not part of it. Never echoed in messages.
pub fn read_password_file(path: &Path) -> Result<String, ConfigIssue> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigIssue::at(
            "password_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(ConfigIssue::at(
            "password_file",
            format!(
                "{} is empty; expected the password on its first line",
                path.display()
            ),
        ));
    }
    Ok(line.to_string())
}

/// The certificates in a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
/// webpki checks the chain before the name, so a name mismatch means the
/// chain passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encryption without any certificate check. The
/// handshake signatures are still checked, so the session key is bound to
/// the certificate presented, whoever presented it.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in `e`'s chain (directly or inside an
/// `io::Error`, as tokio-rustls and rustls' blocking stream report it).
pub fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(cur) = next {
        if let Some(t) = cur.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(t) = cur
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(t);
        }
        next = cur.source();
    }
    None
}

/// A failed handshake with `target` (verifying `name`) as the cause and the fix.
pub fn explain(e: &rustls::Error, target: &str, name: &str) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the TLS certificate of {target} is not signed by a trusted CA ({e}). Fix: set `tls.ca_file` (libpq: sslrootcert) to the CA certificate that issued the server's certificate"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "the TLS certificate of {target} is not valid for the host name `{name}` ({e}). Fix: connect by a name the certificate lists, or set `tls.server_name` to one of them (or use `mode: verify-ca` to check only the CA)"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "the TLS certificate of {target} has expired ({e}). Fix: renew the server's certificate (and check this machine's clock)"
        ),
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "the TLS certificate of {target} is not valid yet ({e}). Fix: check this machine's clock and the certificate's dates"
        ),
        rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::HandshakeFailure,
        ) => format!(
            "{target} refused the TLS handshake ({e}); it may want a client certificate it trusts. Fix: set `tls.cert_file` and `tls.key_file`"
        ),
        other => format!("TLS handshake with {target} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(v: serde_json::Value) -> TlsOptions {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn modes_parse_in_both_spellings() {
        assert_eq!(TlsMode::parse("verify-full"), Some(TlsMode::VerifyFull));
        assert_eq!(TlsMode::parse("verify_ca"), Some(TlsMode::VerifyCa));
        assert_eq!(TlsMode::parse("sometimes"), None);
        let o = options(serde_json::json!({"mode": "verify-ca"}));
        assert_eq!(o.mode, Some(TlsMode::VerifyCa));
        let err = serde_json::from_value::<TlsOptions>(serde_json::json!({"mode": "on"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown variant `on`"), "{err}");
        let err = serde_json::from_value::<TlsOptions>(serde_json::json!({"ca": "x"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `ca`"), "{err}");
    }

    #[test]
    fn bad_files_name_their_field() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = options(
            serde_json::json!({"mode": "verify-full", "ca_file": dir.path().join("nope.pem")}),
        );
        let e = missing
            .build(TlsMode::Disable, TLS_FIELDS)
            .err()
            .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("tls.ca_file"));

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap_or_else(|e| panic!("{e}"));
        let o = options(serde_json::json!({"mode": "verify-full", "ca_file": junk}));
        let issue = o.build(TlsMode::Disable, TLS_FIELDS).err();
        assert_eq!(
            issue.as_ref().map(|i| i.field.as_str()),
            Some("tls.ca_file")
        );
        assert!(issue
            .map(|i| i.message)
            .unwrap_or_default()
            .contains("no PEM certificate"));

        let o = options(serde_json::json!({"mode": "require", "cert_file": junk}));
        let e = o.build(TlsMode::Disable, TLS_FIELDS).err().map(|i| i.field);
        assert_eq!(e.as_deref(), Some("tls.key_file"));
    }

    #[test]
    fn a_key_password_is_for_kafka_only_and_never_printed() {
        // Unset, the printed form is the one checkpoints fingerprinted before
        // the password fields existed.
        let plain = options(serde_json::json!({"mode": "verify-full", "server_name": "db"}));
        assert_eq!(
            format!("{plain:?}"),
            r#"TlsOptions { mode: Some(VerifyFull), ca_file: None, cert_file: None, key_file: None, server_name: Some("db") }"#
        );
        let o = options(serde_json::json!({"mode": "verify-full", "key_password": "pw-4-key"}));
        assert!(!format!("{o:?}").contains("pw-4-key"));
        let e = o.build(TlsMode::Disable, TLS_FIELDS).err();
        assert_eq!(
            e.as_ref().map(|i| i.field.as_str()),
            Some("tls.key_password")
        );
        assert!(e
            .map(|i| i.message)
            .unwrap_or_default()
            .contains("Kafka connectors only"));
    }

    #[test]
    fn disable_with_files_is_a_mistake() {
        let o = options(serde_json::json!({"mode": "disable", "server_name": "db"}));
        let e = o.build(TlsMode::Disable, TLS_FIELDS).err().map(|i| i.field);
        assert_eq!(e.as_deref(), Some("tls.server_name"));
        let none = TlsOptions::default().build(TlsMode::Disable, TLS_FIELDS);
        assert!(matches!(none, Ok(None)));
    }

    #[test]
    fn verify_full_without_a_ca_file_trusts_the_public_roots() {
        let o =
            options(serde_json::json!({"mode": "verify-full", "server_name": "db.example.com"}));
        let tls = o
            .build(TlsMode::Disable, TLS_FIELDS)
            .unwrap_or_else(|e| panic!("{e}"));
        let tls = tls.unwrap_or_else(|| panic!("TLS expected"));
        assert_eq!(tls.mode, TlsMode::VerifyFull);
        assert!(tls.name_for("127.0.0.1").is_ok());
    }

    #[test]
    fn conflicting_values_are_refused() {
        let a = options(serde_json::json!({"mode": "verify-full"}));
        let b = options(serde_json::json!({"mode": "require", "server_name": "x"}));
        let issue = a.merged_with(&b, TLS_FIELDS).expect_err("two modes");
        assert_eq!(issue.field, TLS_FIELDS.mode);
        assert_eq!(
            issue.message,
            "set to VerifyFull here and to Require in the URL; keep one"
        );
        let c = options(serde_json::json!({"server_name": "x"}));
        let m = a
            .merged_with(&c, TLS_FIELDS)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.mode, Some(TlsMode::VerifyFull));
        assert_eq!(m.server_name.as_deref(), Some("x"));
    }
}
