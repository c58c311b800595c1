//! Why a Kafka client cannot get in, as a cause and a fix.
//!
//! librdkafka retries a refused TLS handshake or SASL login forever, and
//! reports it only as log lines and error events, which do not reach the
//! metadata request Sluice waits on at start. The client contexts feed
//! those lines to [`Refusals`]; the start-up probe
//! ([`super::kafka::wait_for_brokers`]) asks it after each failed attempt
//! and stops at the first refusal it recognises, with a message naming the
//! cause and the fix, as the PostgreSQL checks do.
//!
//! OpenSSL says only "certificate verify failed", for a wrong CA and for a
//! wrong host name alike. To tell them apart, the same `tls:` options are
//! tried once with rustls against the refusing broker, which names the
//! problem (unknown issuer, name mismatch, expiry).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::{ClientConfig as KafkaConfig, RDKafkaLogLevel};
use rustls::{CertificateError, ClientConfig, ClientConnection};

use super::kafka_security::{KafkaSecurity, Protocol};
use crate::clients::tls::{self, TlsMode, TlsOptions, TLS_FIELDS};

/// How long the rustls diagnosis may take to connect and handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What librdkafka reported that means "you will never get in like this".
/// Only the first line of each kind is kept, so it stays small however
/// long the client retries.
#[derive(Default)]
pub struct Refusals {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    auth: Option<String>,
    cert_verify: Option<String>,
    client_cert: Option<String>,
    not_tls: Option<String>,
    not_tls_count: u32,
    /// A broker that closed a plaintext connection at its first request
    /// (what a TLS or SASL listener does).
    closed_early: Option<String>,
    /// The plaintext probe already ran (it connects once, not per attempt).
    probed: bool,
}

/// The kinds of line [`Refusals::note`] keeps.
fn kind_of(line: &str) -> Option<Kind> {
    if line.contains("SASL authentication error")
        || line.contains("Authentication failed")
        || line.contains("Unsupported SASL mechanism")
    {
        Some(Kind::Auth)
    } else if line.contains("certificate verify failed")
        || line.contains("Failed to verify broker certificate")
    {
        Some(Kind::CertVerify)
    } else if line.contains("certificate required")
        || line.contains("alert bad certificate")
        || line.contains("alert unknown ca")
        || line.contains("client SSL authentication might be required")
    {
        Some(Kind::ClientCert)
    } else if line.contains("connecting to a PLAINTEXT broker listener?") {
        Some(Kind::NotTls)
    } else if line.contains("Disconnected") && line.contains("in state APIVERSION_QUERY") {
        Some(Kind::ClosedEarly)
    } else {
        None
    }
}

enum Kind {
    Auth,
    CertVerify,
    ClientCert,
    NotTls,
    ClosedEarly,
}

impl Refusals {
    /// Remembers `line` (a librdkafka log line or error reason) if it
    /// explains a refusal.
    pub fn note(&self, line: &str) {
        let Some(kind) = kind_of(line) else { return };
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let slot = match kind {
            Kind::Auth => &mut seen.auth,
            Kind::CertVerify => &mut seen.cert_verify,
            Kind::ClientCert => &mut seen.client_cert,
            Kind::NotTls => {
                seen.not_tls_count = seen.not_tls_count.saturating_add(1);
                &mut seen.not_tls
            }
            Kind::ClosedEarly => &mut seen.closed_early,
        };
        if slot.is_none() {
            *slot = Some(line.to_string());
        }
    }

    /// The fatal explanation, if what was seen is a refusal that retrying
    /// cannot fix.
    pub fn verdict(&self, security: &KafkaSecurity) -> Option<String> {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some(line) = &seen.auth {
            return Some(auth_message(line, security));
        }
        if let Some(line) = &seen.client_cert {
            let addr = broker_addr(line).unwrap_or_else(|| "?".into());
            return Some(format!(
                "the Kafka broker at {addr} refused the TLS handshake; it wants a client certificate it trusts ({}). Fix: set `tls.cert_file` and `tls.key_file`",
                reason(line)
            ));
        }
        if let Some(line) = &seen.cert_verify {
            return Some(verify_message(line, security));
        }
        // One closed handshake can be a broker restarting; librdkafka
        // retries within milliseconds, so two mean a plaintext listener.
        if seen.not_tls_count >= 2 {
            let line = seen.not_tls.as_deref().unwrap_or_default();
            let addr = broker_addr(line).unwrap_or_else(|| "?".into());
            return Some(format!(
                "the Kafka broker at {addr} does not speak TLS on this port: it closed the TLS handshake ({}). The port is a PLAINTEXT or SASL_PLAINTEXT listener. Fix: list the brokers' SSL (or SASL_SSL) listener in `brokers`, or, for a plaintext listener, remove `tls:` (or set `tls.mode: disable`)",
                reason(line)
            ));
        }
        if !security.protocol.tls() && !seen.probed {
            if let Some(addr) = seen.closed_early.as_deref().and_then(broker_addr) {
                seen.probed = true;
                drop(seen);
                if speaks_tls(&addr) {
                    let sasl = if security.protocol == Protocol::SaslPlaintext {
                        ""
                    } else {
                        " (and `sasl:` if the listener is SASL_SSL)"
                    };
                    return Some(format!(
                        "the Kafka broker at {addr} expects TLS on this port (an SSL or SASL_SSL listener), and the client spoke plaintext (security.protocol {}). Fix: add `tls: {{mode: verify-full, ca_file: <the CA that issued the broker's certificate>}}`{sasl}, or list the brokers' plaintext listener",
                        security.protocol.as_str()
                    ));
                }
            }
        }
        None
    }
}

/// A hint for the start-up timeout, when nothing was recognised.
pub fn timeout_hint(security: &KafkaSecurity) -> String {
    format!(
        "Check `brokers`, that the broker is running, and that the listener on that port speaks {} (a SASL listener closes plaintext connections without a word: set `sasl:`; a TLS listener needs `tls:`)",
        security.protocol.as_str()
    )
}

fn auth_message(line: &str, security: &KafkaSecurity) -> String {
    let addr = broker_addr(line).unwrap_or_else(|| "?".into());
    let (user, mechanism) = security
        .sasl
        .clone()
        .unwrap_or_else(|| ("(sasl.username)".into(), "(sasl.mechanism)".into()));
    if line.contains("Unsupported SASL mechanism") {
        return format!(
            "the Kafka broker at {addr} does not accept SASL mechanism {mechanism} on this listener ({}). Fix: set `sasl.mechanism` to one the broker lists in `sasl.enabled.mechanisms`",
            reason(line)
        );
    }
    format!(
        "the Kafka broker at {addr} refused the SASL login of user `{user}` with {mechanism} ({}). Fix: check `sasl.username` and the password (`sasl.password` or `sasl.password_file`); SCRAM credentials exist per mechanism on the broker (kafka-configs --alter --entity-type users --entity-name {user} --add-config '{mechanism}=[password=...]'), PLAIN users are in the listener's JAAS configuration",
        reason(line)
    )
}

fn verify_message(line: &str, security: &KafkaSecurity) -> String {
    let addr = broker_addr(line).unwrap_or_else(|| "?".into());
    let host = host_of(&addr);
    // The same options through rustls, to name what OpenSSL did not.
    if let Some(t) = &security.tls {
        if let Err(ProbeError::Tls(e)) = handshake(&addr, &host, t.config.clone()) {
            return explain(&e, &addr, &host);
        }
    }
    let ca = security
        .tls_options
        .as_ref()
        .and_then(|o| o.ca_file.as_ref())
        .map_or_else(
            || "the system's CAs".to_string(),
            |p| p.display().to_string(),
        );
    format!(
        "the TLS certificate of the Kafka broker at {addr} failed verification against {ca} ({}). Fix: set `tls.ca_file` to the CA certificate that issued the broker's certificate, and list the brokers by a name their certificates hold",
        reason(line)
    )
}

/// A certificate rustls refused, as cause and fix for a Kafka broker.
fn explain(e: &rustls::Error, addr: &str, host: &str) -> String {
    use CertificateError as C;
    let target = format!("the Kafka broker at {addr}");
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the TLS certificate of {target} is not signed by a trusted CA ({e}). Fix: set `tls.ca_file` to the CA certificate that issued the broker's certificate"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "the TLS certificate of {target} is not valid for the host name `{host}` ({e}). Fix: list the brokers by a name their certificates hold (the host name each broker advertises must be in its certificate too), or set `tls.mode: verify-ca` to check the CA only"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "the TLS certificate of {target} has expired ({e}). Fix: renew the broker's certificate (and check this machine's clock)"
        ),
        other => tls::explain(other, &target, host),
    }
}

/// The text after librdkafka's `[thrd:…]: ` and `addr/id: ` prefixes.
fn reason(line: &str) -> &str {
    let rest = line.rsplit_once("]: ").map_or(line, |(_, r)| r);
    match rest.split_once(": ") {
        Some((head, tail)) if head.contains(':') && !head.contains(' ') => tail,
        _ => rest,
    }
}

/// `host:port` of the broker a librdkafka line is about, from its
/// `[scheme://]host:port/id: ` prefix.
fn broker_addr(line: &str) -> Option<String> {
    let rest = line.rsplit_once("]: ").map_or(line, |(_, r)| r);
    let head = rest.split_once(": ")?.0;
    let head = head.split_once("://").map_or(head, |(_, h)| h);
    let addr = head.split('/').next()?;
    (addr.contains(':') && !addr.contains(' ')).then(|| addr.to_string())
}

fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

enum ProbeError {
    /// The handshake failed with this TLS error.
    Tls(rustls::Error),
    /// Not a TLS answer, or no connection.
    Other,
}

/// One TLS handshake with `addr`, verifying `host` per `config`.
fn handshake(addr: &str, host: &str, config: Arc<ClientConfig>) -> Result<(), ProbeError> {
    let sock_addr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(ProbeError::Other)?;
    let mut sock =
        TcpStream::connect_timeout(&sock_addr, PROBE_TIMEOUT).map_err(|_| ProbeError::Other)?;
    sock.set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| sock.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|_| ProbeError::Other)?;
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| ProbeError::Other)?;
    let mut conn = ClientConnection::new(config, name).map_err(ProbeError::Tls)?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(match tls::find_tls_error(&e) {
                Some(t) => ProbeError::Tls(t.clone()),
                None => ProbeError::Other,
            });
        }
    }
    // Say goodbye; the broker would wait for a request otherwise.
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    let _ = sock.flush();
    Ok(())
}

/// Whether `addr` completes a TLS handshake (certificates not checked).
fn speaks_tls(addr: &str) -> bool {
    let anything = TlsOptions {
        mode: Some(TlsMode::Require),
        ..TlsOptions::default()
    };
    let Ok(Some(t)) = anything.build(TlsMode::Require, TLS_FIELDS) else {
        return false;
    };
    handshake(addr, &host_of(addr), t.config).is_ok()
}

/// An error creating a client, named when it is the client key: librdkafka
/// loads (and decrypts) it then, and OpenSSL says only "PEM lib" or "bad
/// decrypt". `doing` says what was being created, for the context.
pub fn creation_error(e: rdkafka::error::KafkaError, doing: String) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("ssl.key.location failed") {
        return anyhow::anyhow!(
            "{doing}: cannot load the client key in `tls.key_file` ({text}). Fix: if the key is encrypted, set `tls.key_password` or `tls.key_password_file` to its password (and check that it is the right one); otherwise check that the file is the PEM key of `tls.cert_file`"
        );
    }
    anyhow::Error::new(e).context(doing)
}

/// Makes librdkafka log at least at info level, whatever the host's log
/// filter: the lines [`Refusals`] reads include info ones (a listener that
/// closes a plaintext connection). Tracing still filters what is shown.
pub fn keep_info_lines(cfg: &mut KafkaConfig) {
    if !matches!(
        cfg.log_level,
        RDKafkaLogLevel::Debug | RDKafkaLogLevel::Info
    ) {
        cfg.set_log_level(RDKafkaLogLevel::Info);
    }
}

/// librdkafka's log line, where the rdkafka crate's default would put it
/// (target `librdkafka`), through tracing.
pub fn forward_log(level: RDKafkaLogLevel, fac: &str, line: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {fac} {line}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", "librdkafka: {fac} {line}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {fac} {line}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFY: &str = "[thrd:ssl://127.0.0.1:39194/bootstrap]: ssl://127.0.0.1:39194/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 49ms in state SSL_HANDSHAKE)";
    const NO_CLIENT_CERT: &str = "ssl://localhost:39197/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL alert number 42 (after 4ms in state APIVERSION_QUERY)";
    const AUTH: &str = "sasl_ssl://localhost:39195/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 351ms in state AUTH_REQ)";

    #[test]
    fn lines_name_their_broker_and_reason() {
        assert_eq!(broker_addr(VERIFY).as_deref(), Some("127.0.0.1:39194"));
        assert_eq!(broker_addr(AUTH).as_deref(), Some("localhost:39195"));
        assert_eq!(
            broker_addr("localhost:39194/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 3ms in state APIVERSION_QUERY)").as_deref(),
            Some("localhost:39194")
        );
        assert!(reason(AUTH).starts_with("SASL authentication error"));
        assert!(reason(VERIFY).starts_with("SSL handshake failed"));
        assert!(matches!(kind_of(NO_CLIENT_CERT), Some(Kind::ClientCert)));
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    #[test]
    fn only_the_first_line_of_each_kind_is_kept() {
        let r = Refusals::default();
        for _ in 0..10_000 {
            r.note(AUTH);
            r.note("unrelated");
        }
        let seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(seen.auth.as_deref(), Some(AUTH));
        assert!(seen.cert_verify.is_none());
    }

    #[test]
    fn bad_credentials_name_the_user_and_the_fix() {
        let sec = super::super::kafka_security::security(
            None,
            Some(
                &serde_json::from_value(serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "etl", "password": "zq-secret-91"}))
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = Refusals::default();
        assert!(r.verdict(&sec).is_none());
        r.note(AUTH);
        let m = r.verdict(&sec).unwrap_or_default();
        assert!(
            m.contains("user `etl` with SCRAM-SHA-512") && m.contains("Fix:"),
            "{m}"
        );
        assert!(!m.contains("zq-secret-91"), "{m}");
    }
}
