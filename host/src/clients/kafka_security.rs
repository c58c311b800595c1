//! TLS and SASL for the `kafka` source and sink, as librdkafka properties.
//!
//! Both connectors take the `tls:` block every connector takes (see
//! [`crate::clients::tls`]) and a `sasl:` block:
//!
//! ```yaml
//! tls: {mode: verify-full, ca_file: certs/ca.pem}
//! sasl: {mechanism: SCRAM-SHA-512, username: etl, password_file: /run/secrets/kafka}
//! ```
//!
//! They become `security.protocol` (SSL, SASL_SSL or SASL_PLAINTEXT),
//! `ssl.*` and `sasl.*`. librdkafka's own spelling in `properties:` is
//! accepted too, but an entry that says something else than the blocks is
//! refused at validation. librdkafka speaks TLS through OpenSSL (built from
//! source, `rdkafka/ssl-vendored`), not rustls; the files are still read and
//! parsed with rustls when the pipeline is validated, so a bad path or PEM
//! fails there with the field's name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::clients::tls::{read_password_file, Tls, TlsMode, TlsOptions, TLS_FIELDS};
use crate::connector::ConfigIssue;

/// A SASL mechanism librdkafka is built with (no GSSAPI: that needs
/// cyrus-sasl, which the build leaves out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// Username and password in the clear (use it over TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka and librdkafka use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The `sasl:` block.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslOptions {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The SASL user.
    pub username: String,
    /// The password (e.g. `${KAFKA_PASSWORD}`); or `password_file`.
    pub password: Option<String>,
    /// A file whose first line is the password (a mounted secret).
    pub password_file: Option<PathBuf>,
}

impl fmt::Debug for SaslOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslOptions")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// `properties:`, librdkafka's own settings. Its `Debug` form (what
/// fingerprints and any logged configuration show) leaves out the values of
/// keys that hold secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties(pub BTreeMap<String, String>);

/// librdkafka takes every value as text, but a YAML user writes
/// `fetch.min.bytes: 1000000` and `enable.idempotence: true`: numbers and
/// booleans are taken as the text they are written as.
impl<'de> Deserialize<'de> for KafkaProperties {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::Value;
        BTreeMap::<String, Value>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                Value::Null => Err(D::Error::custom(format!(
                    "`{k}` has no value; expected text, a number or true/false"
                ))),
                Value::Array(_) | Value::Object(_) => Err(D::Error::custom(format!(
                    "`{k}` is a list or a map; expected text, a number or true/false (librdkafka lists are comma-separated text)"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(KafkaProperties)
    }
}

impl std::ops::Deref for KafkaProperties {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k, shown)
            }))
            .finish()
    }
}

/// Whether librdkafka property `key` holds a secret (a password, a private
/// key, a JAAS or OAuth configuration with credentials).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "oauthbearer.config",
        "key.pem",
        "token",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Neither TLS nor SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl Protocol {
    /// librdkafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    /// Whether connections start with a TLS handshake.
    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// The validated security of one Kafka client: the properties to set, and
/// what start-up diagnostics need to explain a refusal.
#[derive(Clone)]
pub struct KafkaSecurity {
    /// What the client speaks.
    pub protocol: Protocol,
    /// librdkafka properties from the `tls:` and `sasl:` blocks.
    settings: Vec<(&'static str, String)>,
    /// The `tls:` block built as rustls would connect, to tell a wrong CA
    /// from a wrong host name when OpenSSL only says "verify failed".
    pub tls: Option<Tls>,
    /// The options the block was built from (CA file, mode), for messages.
    pub tls_options: Option<TlsOptions>,
    /// SASL user and mechanism, for messages (never the password).
    pub sasl: Option<(String, String)>,
}

impl fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

impl KafkaSecurity {
    /// The properties to set on a librdkafka client (after `properties:`;
    /// validation made sure the two agree).
    pub fn settings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.settings.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// A Kafka connector's checkpoint fingerprint: its configuration without
/// `tls` and `sasl` (`clear` empties them). They say how to connect, not
/// what is read or written, so a checkpoint written before the blocks
/// existed, or with other credentials, still fits.
pub fn fingerprint_text<C: Clone + fmt::Debug>(config: &C, clear: impl Fn(&mut C)) -> String {
    let mut c = config.clone();
    clear(&mut c);
    let text = format!("{c:?}").replacen(", tls: None, sasl: None", "", 1);
    crate::connector::fingerprint::redacted(&text)
}

/// Makes the blocks' relative paths relative to the pipeline file.
pub fn resolve_paths(tls: Option<&mut TlsOptions>, sasl: Option<&mut SaslOptions>, base: &Path) {
    if let Some(t) = tls {
        t.resolve_paths(base);
    }
    if let Some(p) = sasl.and_then(|s| s.password_file.as_mut()) {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

/// Checks the `tls:` and `sasl:` blocks against each other and against
/// `properties`, reads their files, and returns what to configure.
pub fn security(
    tls: Option<&TlsOptions>,
    sasl: Option<&SaslOptions>,
    properties: &BTreeMap<String, String>,
) -> Result<KafkaSecurity, ConfigIssue> {
    let tls_issue = |field: &str, m: &str| ConfigIssue::anchored("tls", field, m);
    let mut settings: Vec<(&'static str, String)> = Vec::new();
    let mut built = None;
    if let Some(options) = tls {
        if options.mode == Some(TlsMode::Prefer) {
            return Err(tls_issue(
                "tls.mode",
                "`prefer` is not supported by Kafka (librdkafka cannot fall back from TLS to plaintext); use `verify-full`, `verify-ca` or `require`, or `disable`",
            ));
        }
        if options.server_name.is_some() {
            return Err(tls_issue(
                "tls.server_name",
                "is not supported by Kafka: librdkafka checks each broker's certificate against the host name the cluster advertises for that broker and cannot check another name; remove it (or use `mode: verify-ca`, which checks the CA only)",
            ));
        }
        // librdkafka decrypts an encrypted key itself; rustls (validation,
        // diagnostics) goes without the client certificate then.
        let (for_rustls, key_password) = options.split_key_password()?;
        built = for_rustls.build(TlsMode::Disable, TLS_FIELDS)?;
        if let Some(t) = &built {
            let (verify, identify) = match t.mode {
                TlsMode::VerifyFull => ("true", "https"),
                TlsMode::VerifyCa => ("true", "none"),
                _ => ("false", "none"),
            };
            settings.push(("enable.ssl.certificate.verification", verify.into()));
            settings.push(("ssl.endpoint.identification.algorithm", identify.into()));
            if let Some(ca) = &options.ca_file {
                settings.push(("ssl.ca.location", path_text(ca, "tls.ca_file")?));
            }
            if let (Some(cert), Some(key)) = (&options.cert_file, &options.key_file) {
                settings.push((
                    "ssl.certificate.location",
                    path_text(cert, "tls.cert_file")?,
                ));
                settings.push(("ssl.key.location", path_text(key, "tls.key_file")?));
            }
            if let Some(password) = key_password {
                settings.push(("ssl.key.password", password));
            }
        } else if key_password.is_some() {
            return Err(tls_issue(
                "tls.key_password",
                "has no effect with TLS disabled; set `tls.mode` to verify-full (or verify-ca, require)",
            ));
        }
    }
    let mut sasl_who = None;
    if let Some(s) = sasl {
        let issue = |field: &str, m: String| ConfigIssue::anchored("sasl", field, m);
        if s.username.is_empty() {
            return Err(issue("sasl.username", "expected the SASL user name".into()));
        }
        let password = match (&s.password, &s.password_file) {
            (Some(_), Some(_)) => {
                return Err(issue(
                    "sasl.password_file",
                    "set `password` or `password_file`, not both".into(),
                ))
            }
            (Some(p), None) => p.clone(),
            (None, Some(path)) => {
                read_password_file(path).map_err(|i| issue("sasl.password_file", i.message))?
            }
            (None, None) => {
                return Err(issue(
                    "sasl.password",
                    "expected `password` (e.g. `${KAFKA_PASSWORD}`) or `password_file`".into(),
                ))
            }
        };
        settings.push(("sasl.mechanism", s.mechanism.as_str().into()));
        settings.push(("sasl.username", s.username.clone()));
        settings.push(("sasl.password", password));
        sasl_who = Some((s.username.clone(), s.mechanism.as_str().to_string()));
    }
    let protocol = match (built.is_some(), sasl.is_some()) {
        (true, true) => Some(Protocol::SaslSsl),
        (true, false) => Some(Protocol::Ssl),
        (false, true) => Some(Protocol::SaslPlaintext),
        // `tls: {mode: disable}` says plaintext; no block says nothing.
        (false, false) => tls.map(|_| Protocol::Plaintext),
    };
    if let Some(p) = protocol {
        settings.insert(0, ("security.protocol", p.as_str().into()));
    }
    check_properties(&settings, properties)?;
    let protocol = match protocol {
        Some(p) => p,
        None => match properties.get("security.protocol") {
            Some(v) => Protocol::parse(v).ok_or_else(|| {
                ConfigIssue::at(
                    "properties.security.protocol",
                    format!("`{v}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                )
            })?,
            None => Protocol::Plaintext,
        },
    };
    // librdkafka is linked with its own OpenSSL, whose compiled-in CA path
    // is a build directory: without a CA given, look for the system's bundle.
    let ca_given = settings.iter().any(|(k, _)| *k == "ssl.ca.location")
        || ["ssl.ca.location", "ssl.ca.pem"]
            .iter()
            .any(|k| properties.contains_key(*k));
    if protocol.tls() && !ca_given {
        settings.push(("ssl.ca.location", "probe".into()));
    }
    Ok(KafkaSecurity {
        protocol,
        settings,
        tls: built,
        tls_options: tls.cloned(),
        sasl: sasl_who,
    })
}

/// A path as librdkafka takes it (UTF-8 text).
fn path_text(p: &Path, field: &str) -> Result<String, ConfigIssue> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| ConfigIssue::anchored("tls", field, format!("{} is not UTF-8", p.display())))
}

/// Which block field sets librdkafka property `key`, for messages.
fn block_field(key: &str) -> &'static str {
    match key {
        "security.protocol" => "the `tls:`/`sasl:` blocks",
        "enable.ssl.certificate.verification" | "ssl.endpoint.identification.algorithm" => {
            "`tls.mode`"
        }
        "ssl.ca.location" => "`tls.ca_file`",
        "ssl.certificate.location" => "`tls.cert_file`",
        "ssl.key.location" => "`tls.key_file`",
        "ssl.key.password" => "`tls.key_password`",
        "sasl.mechanism" => "`sasl.mechanism`",
        "sasl.username" => "`sasl.username`",
        "sasl.password" => "`sasl.password`",
        _ => "the `tls:`/`sasl:` blocks",
    }
}

/// The librdkafka properties a server's tenant may set: tuning only. The
/// rest reach the server itself: files (`ssl.*.location`,
/// `sasl.kerberos.keytab`), programs (`sasl.kerberos.kinit.cmd`,
/// `plugin.library.paths`, `ssl.engine.location`) or hosts other than
/// `brokers` (`bootstrap.servers`); a tenant says those with `brokers`,
/// `tls:` and `sasl:`, which the server checks.
const TENANT_PROPERTIES: &[&str] = &[
    "acks",
    "allow.auto.create.topics",
    "auto.offset.reset",
    "batch.num.messages",
    "batch.size",
    "check.crcs",
    "client.id",
    "compression.codec",
    "compression.level",
    "compression.type",
    "connections.max.idle.ms",
    "delivery.timeout.ms",
    "enable.idempotence",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.wait.max.ms",
    "group.instance.id",
    "heartbeat.interval.ms",
    "isolation.level",
    "linger.ms",
    "max.in.flight",
    "max.in.flight.requests.per.connection",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "message.max.bytes",
    "message.timeout.ms",
    "metadata.max.age.ms",
    "partition.assignment.strategy",
    "partitioner",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "receive.message.max.bytes",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "socket.timeout.ms",
    "sticky.partitioning.linger.ms",
    "topic.metadata.refresh.interval.ms",
    "transaction.timeout.ms",
];

/// Refuses a property a server's tenant may not set (see
/// [`TENANT_PROPERTIES`]), naming it.
pub fn tenant_may_set(properties: &BTreeMap<String, String>) -> Result<(), ConfigIssue> {
    match properties
        .keys()
        .find(|k| !TENANT_PROPERTIES.contains(&k.as_str()))
    {
        None => Ok(()),
        Some(k) => Err(ConfigIssue::at(
            &format!("properties.{k}"),
            "not allowed on a server: it can reach the server's files, programs or other hosts; \
             give brokers in `brokers` and TLS or SASL in the `tls:` and `sasl:` blocks \
             (tuning properties such as `linger.ms` or `fetch.max.bytes` are allowed)"
                .to_string(),
        )),
    }
}

/// The hosts a Kafka client reaches: each of `brokers` (port 9092 when
/// none is written) and the schema registry's. A broker learns of the
/// others from the cluster's metadata, which the granted brokers give.
pub fn endpoints(
    brokers: &str,
    schema_registry: Option<&str>,
) -> crate::connector::endpoint::Reach {
    use crate::connector::endpoint;
    endpoint::all([
        endpoint::list(brokers, Some(9092)),
        schema_registry.map_or(Some(vec![]), endpoint::from_http_url),
    ])
}

/// Refuses a `properties` entry that says something else than the blocks.
/// Secret values are never quoted.
fn check_properties(
    settings: &[(&'static str, String)],
    properties: &BTreeMap<String, String>,
) -> Result<(), ConfigIssue> {
    for (key, ours) in settings {
        // librdkafka takes `sasl.mechanisms` as another name of `sasl.mechanism`.
        let aliases: &[&str] = if *key == "sasl.mechanism" {
            &["sasl.mechanism", "sasl.mechanisms"]
        } else {
            std::slice::from_ref(key)
        };
        for alias in aliases {
            let Some(theirs) = properties.get(*alias) else {
                continue;
            };
            let exact = matches!(
                *key,
                "ssl.ca.location"
                    | "ssl.certificate.location"
                    | "ssl.key.location"
                    | "ssl.key.password"
                    | "sasl.username"
                    | "sasl.password"
            );
            let same = if exact {
                theirs == ours
            } else {
                theirs.eq_ignore_ascii_case(ours)
            };
            if !same {
                let says = if is_secret(alias) {
                    String::new()
                } else {
                    format!(" (`{theirs}`; {} means `{ours}`)", block_field(key))
                };
                return Err(ConfigIssue::at(
                    &format!("properties.{alias}"),
                    format!(
                        "contradicts {}{says}; remove it from `properties` and keep the block",
                        block_field(key)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tls(v: serde_json::Value) -> TlsOptions {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sasl(v: serde_json::Value) -> SaslOptions {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(s: &KafkaSecurity) -> BTreeMap<String, String> {
        s.settings()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A CA certificate that parses, made by the openssl command.
    fn ca_file(dir: &Path) -> PathBuf {
        let p = dir.join("ca.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=unit test CA", "-keyout"])
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&p)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        p
    }

    #[test]
    fn an_encrypted_key_gets_its_password_from_a_file_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cert = ca_file(dir.path());
        let pw = dir.path().join("key-pw");
        std::fs::write(&pw, "key-secret-77\n").unwrap_or_else(|e| panic!("{e}"));
        // The key is left to librdkafka: rustls never reads it (here it is
        // not even a key), so an encrypted PEM passes validation.
        let o = tls(json!({
            "mode": "verify-full", "ca_file": cert, "cert_file": cert,
            "key_file": dir.path().join("encrypted.key"), "key_password_file": pw,
        }));
        let s = security(Some(&o), None, &props(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings(&s)["ssl.key.password"], "key-secret-77");
        assert!(settings(&s).contains_key("ssl.key.location"));
        assert!(!format!("{s:?}{o:?}").contains("key-secret-77"));
        // A password without a key, two passwords, a password with TLS off,
        // and a contradicting property are refused, naming the field.
        let field = |v: serde_json::Value, p: &[(&str, &str)]| {
            security(Some(&tls(v)), None, &props(p))
                .err()
                .map(|i| i.field)
        };
        assert_eq!(
            field(json!({"mode": "verify-full", "key_password": "x"}), &[]).as_deref(),
            Some("tls.key_password")
        );
        assert_eq!(
            field(json!({"mode": "disable", "key_password": "x"}), &[]).as_deref(),
            Some("tls.key_password")
        );
        let both = json!({
            "mode": "verify-full", "cert_file": cert, "key_file": cert,
            "key_password": "x", "key_password_file": pw,
        });
        assert_eq!(field(both, &[]).as_deref(), Some("tls.key_password_file"));
        let e = security(
            Some(&o),
            None,
            &props(&[("ssl.key.password", "other-key-secret")]),
        )
        .err()
        .unwrap_or_else(|| panic!("a contradiction"));
        assert_eq!(e.field, "properties.ssl.key.password");
        assert!(!e.message.contains("other-key-secret") && !e.message.contains("key-secret-77"));
    }

    #[test]
    fn modes_map_onto_librdkafka() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca = ca_file(dir.path());
        let full = security(
            Some(&tls(json!({"mode": "verify-full", "ca_file": ca}))),
            None,
            &BTreeMap::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.protocol, Protocol::Ssl);
        let s = settings(&full);
        assert_eq!(s["security.protocol"], "SSL");
        assert_eq!(s["ssl.endpoint.identification.algorithm"], "https");
        assert_eq!(s["enable.ssl.certificate.verification"], "true");
        assert_eq!(s["ssl.ca.location"], ca.to_string_lossy());

        let ca_only = security(
            Some(&tls(json!({"mode": "verify-ca"}))),
            None,
            &BTreeMap::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = settings(&ca_only);
        assert_eq!(s["ssl.endpoint.identification.algorithm"], "none");
        assert_eq!(s["ssl.ca.location"], "probe");

        let require = security(
            Some(&tls(json!({"mode": "require"}))),
            None,
            &BTreeMap::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            settings(&require)["enable.ssl.certificate.verification"],
            "false"
        );

        let off = security(
            Some(&tls(json!({"mode": "disable"}))),
            None,
            &BTreeMap::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings(&off)["security.protocol"], "PLAINTEXT");
    }

    #[test]
    fn prefer_and_server_name_are_refused_with_the_reason() {
        let e = security(
            Some(&tls(json!({"mode": "prefer"}))),
            None,
            &BTreeMap::new(),
        )
        .err()
        .unwrap_or_else(|| panic!("prefer accepted"));
        assert_eq!(e.field, "tls.mode");
        assert!(e.message.contains("cannot fall back"), "{}", e.message);
        let e = security(
            Some(&tls(json!({"mode": "verify-full", "server_name": "k"}))),
            None,
            &BTreeMap::new(),
        )
        .err()
        .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("tls.server_name"));
        let e = security(
            Some(&tls(
                json!({"mode": "verify-full", "ca_file": "/nonexistent/ca.pem"}),
            )),
            None,
            &BTreeMap::new(),
        )
        .err()
        .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("tls.ca_file"));
    }

    #[test]
    fn sasl_takes_a_password_or_a_file_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-the-file\n").unwrap_or_else(|e| panic!("{e}"));
        let s = sasl(json!({"mechanism": "SCRAM-SHA-512", "username": "u", "password_file": file}));
        let sec = security(None, Some(&s), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sec.protocol, Protocol::SaslPlaintext);
        let set = settings(&sec);
        assert_eq!(set["sasl.password"], "from-the-file");
        assert_eq!(set["sasl.mechanism"], "SCRAM-SHA-512");
        assert!(!format!("{sec:?}").contains("from-the-file"));

        let inline = sasl(json!({"mechanism": "PLAIN", "username": "u", "password": "hunter2"}));
        assert!(!format!("{inline:?}").contains("hunter2"));
        let both = sasl(
            json!({"mechanism": "PLAIN", "username": "u", "password": "a", "password_file": file}),
        );
        let e = security(None, Some(&both), &BTreeMap::new())
            .err()
            .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("sasl.password_file"));
        let none = sasl(json!({"mechanism": "PLAIN", "username": "u"}));
        let e = security(None, Some(&none), &BTreeMap::new())
            .err()
            .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("sasl.password"));
        assert!(serde_json::from_value::<SaslOptions>(
            json!({"mechanism": "GSSAPI", "username": "u", "password": "p"})
        )
        .is_err());
    }

    #[test]
    fn properties_that_contradict_the_blocks_are_refused_without_their_secrets() {
        let s = sasl(json!({"mechanism": "SCRAM-SHA-256", "username": "u", "password": "right"}));
        let e = security(
            Some(&tls(json!({"mode": "require"}))),
            Some(&s),
            &props(&[("security.protocol", "SASL_PLAINTEXT")]),
        )
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.field, "properties.security.protocol");
        assert!(e.message.contains("SASL_SSL"), "{}", e.message);

        let e = security(None, Some(&s), &props(&[("sasl.password", "wrong-secret")]))
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.field, "properties.sasl.password");
        assert!(!e.message.contains("wrong-secret") && !e.message.contains("right"));

        let e = security(None, Some(&s), &props(&[("sasl.mechanisms", "PLAIN")]))
            .err()
            .map(|i| i.field);
        assert_eq!(e.as_deref(), Some("properties.sasl.mechanisms"));

        // The same thing said twice, in either spelling, is fine.
        let ok = security(
            None,
            Some(&s),
            &props(&[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
            ]),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn librdkafka_spelling_alone_is_accepted() {
        let p = props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]);
        let sec = security(None, None, &p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sec.protocol, Protocol::SaslSsl);
        assert_eq!(settings(&sec)["ssl.ca.location"], "probe");
        let bad = security(None, None, &props(&[("security.protocol", "TLS")]));
        assert_eq!(
            bad.err().map(|i| i.field).as_deref(),
            Some("properties.security.protocol")
        );
        let with_ca = security(
            None,
            None,
            &props(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/etc/ca.pem"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!settings(&with_ca).contains_key("ssl.ca.location"));
    }

    #[test]
    fn property_values_may_be_numbers_or_booleans_but_not_lists() {
        let p: KafkaProperties = serde_json::from_value(serde_json::json!({
            "fetch.min.bytes": 1_000_000,
            "enable.idempotence": true,
            "compression.type": "lz4",
            "socket.timeout.ms": 60_000.5,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.get("fetch.min.bytes").map(String::as_str),
            Some("1000000")
        );
        assert_eq!(
            p.get("enable.idempotence").map(String::as_str),
            Some("true")
        );
        assert_eq!(p.get("compression.type").map(String::as_str), Some("lz4"));
        assert_eq!(
            p.get("socket.timeout.ms").map(String::as_str),
            Some("60000.5")
        );
        for bad in [
            serde_json::json!({"a": [1]}),
            serde_json::json!({"a": null}),
        ] {
            let e = serde_json::from_value::<KafkaProperties>(bad)
                .map(|_| ())
                .expect_err("refused");
            assert!(e.to_string().contains("`a`"), "{e}");
        }
    }

    #[test]
    fn secret_properties_stay_out_of_debug() {
        let p = KafkaProperties(props(&[
            ("sasl.password", "s3cret"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.jaas.config", "password=\"x9\""),
            ("linger.ms", "5"),
        ]));
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("PRIVATE") && !shown.contains("x9"));
        assert!(shown.contains("\"linger.ms\": \"5\""), "{shown}");
    }
}
