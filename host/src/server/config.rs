//! `server.toml`: where the server listens and keeps its data, the admin
//! token, and what each tenant is granted (connector types, quotas).
//!
//! ```toml
//! listen = "127.0.0.1:7070"
//! data_dir = "/var/lib/sluice"
//! admin_token_file = "/etc/sluice/admin.token"   # else $SLUICE_ADMIN_TOKEN
//! secrets_key_file = "/etc/sluice/secrets.key"   # else DATA_DIR/secrets.key, made at first start
//! tls_cert_file = "/etc/sluice/server.crt"       # HTTPS: the chain (PEM), with ...
//! tls_key_file = "/etc/sluice/server.key"        # ... its key; plain HTTP without them
//!
//! [defaults]                      # every tenant, unless overridden below
//! connectors = ["datagen", "file"]
//! hosts = []                      # hosts its connectors may reach: "db.internal:5432",
//!                                 # "*.kafka.internal" (any port), "*" (every host)
//! cpu_weight = 100                # its CPU share beside other active tenants
//! max_pipelines = 10
//! max_plugin_bytes = 67108864     # all of a tenant's plugins together
//! max_request_bytes = 1048576     # one request body (plugin uploads included)
//! api_requests_per_s = 50         # API rate of all its tokens together ...
//! api_burst = 100                 # ... with bursts of up to this many
//! max_state_bytes = 1073741824    # checkpoints and state of all its pipelines
//! max_dead_letter_bytes = 1073741824  # their default dead-letter files
//! max_named_connections = 50      # named connections (hosts, credentials)
//! max_memory_mb = 4096            # memory its running pipelines' bounds add up to
//! max_file_bytes = 1073741824     # its file area: uploads and what its file sinks write
//!
//! [tap]                           # live taps, GET /v1/pipelines/NAME/tap
//! max_rate = 100                  # events a second one tap may ask for
//! max_per_tenant = 4              # taps open at once, per tenant ...
//! max_total = 32                  # ... and on the whole server
//! max_seconds = 100               # a tap stream ends after this long
//!
//! [catalog]                       # several servers sharing one catalog (else DATA_DIR/catalog.redb)
//! url_env = "SLUICE_CATALOG_URL"  # the env variable holding postgres://... (or `url = "..."`)
//! server_id = "sluice-1"          # unique per server; default HOSTNAME-PID
//! lease_seconds = 10              # a dead server's single-run pipelines move after this
//!
//! [tenants.acme]                  # fields left out come from [defaults]
//! connectors = ["datagen", "file", "kafka"]
//! hosts = ["kafka-1.internal:9092", "kafka-2.internal:9092"]
//! max_pipelines = 50
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The environment variable holding the admin token when no file is named.
pub const ADMIN_TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";
/// Shortest admin token accepted.
const MIN_TOKEN_CHARS: usize = 16;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: String,
    data_dir: PathBuf,
    admin_token_file: Option<PathBuf>,
    secrets_key_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    #[serde(default)]
    defaults: Grant,
    #[serde(default)]
    tenants: BTreeMap<String, Grant>,
    #[serde(default = "default_connections")]
    max_connections: usize,
    #[serde(default)]
    tap: TapLimits,
    catalog: Option<CatalogFile>,
}

/// `[catalog]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    url: Option<String>,
    url_env: Option<String>,
    server_id: Option<String>,
    #[serde(default = "default_lease_seconds")]
    lease_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    10
}

/// A catalog in PostgreSQL that several servers share.
#[derive(Clone)]
pub struct SharedCatalog {
    /// `postgres://...` (never logged: it may hold a password).
    pub url: String,
    /// This server's name among those sharing the catalog.
    pub server_id: String,
    /// How long a server's lease on a pipeline that runs once lasts
    /// without being renewed.
    pub lease: std::time::Duration,
}

impl std::fmt::Debug for SharedCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCatalog")
            .field("server_id", &self.server_id)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// `HOSTNAME-PID`: unique among processes on one machine and across machines.
fn default_server_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "server".into());
    format!("{host}-{}", std::process::id())
}

fn shared_catalog(
    c: &CatalogFile,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedCatalog> {
    let url = match (&c.url, &c.url_env) {
        (Some(u), None) => u.clone(),
        (None, Some(var)) => env(var).filter(|v| !v.is_empty()).with_context(|| {
            format!(
                "{}: catalog.url_env: the environment variable `{var}` is not set",
                path.display()
            )
        })?,
        _ => bail!(
            "{}: catalog: give exactly one of `url` and `url_env`",
            path.display()
        ),
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!(
            "{}: catalog: the url must be postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            path.display()
        );
    }
    let server_id = c.server_id.clone().unwrap_or_else(default_server_id);
    if !super::policy::is_name(&server_id) {
        bail!(
            "{}: catalog.server_id `{}`: 1-64 letters, digits, `_`, `-`, `.`",
            path.display(),
            server_id.escape_debug()
        );
    }
    if !(2..=3600).contains(&c.lease_seconds) {
        bail!(
            "{}: catalog.lease_seconds must be 2 to 3600",
            path.display()
        );
    }
    Ok(SharedCatalog {
        url,
        server_id,
        lease: std::time::Duration::from_secs(c.lease_seconds),
    })
}

/// `[tap]`: bounds on live taps (`GET /v1/pipelines/NAME/tap`), so that
/// watching pipelines cannot take the server's threads or connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TapLimits {
    /// Most events a second one tap gets; a larger `rate` is cut to it.
    pub max_rate: u64,
    /// Taps one tenant may have open at once.
    pub max_per_tenant: u64,
    /// Taps open at once on the whole server.
    pub max_total: u64,
    /// A tap stream ends (cleanly, with an `end` event) after this many
    /// seconds; under the 120 s a connection may live.
    pub max_seconds: u64,
}

impl Default for TapLimits {
    fn default() -> Self {
        Self {
            max_rate: 100,
            max_per_tenant: 4,
            max_total: 32,
            max_seconds: 100,
        }
    }
}

fn default_connections() -> usize {
    256
}

/// One tenant's grant as written; unset fields fall back to `[defaults]`,
/// then to [`Policy::default`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    connectors: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    cpu_weight: Option<u32>,
    max_pipelines: Option<u64>,
    max_plugin_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    api_requests_per_s: Option<u64>,
    api_burst: Option<u64>,
    max_state_bytes: Option<u64>,
    max_dead_letter_bytes: Option<u64>,
    max_named_connections: Option<u64>,
    max_memory_mb: Option<u64>,
    max_file_bytes: Option<u64>,
}

/// What a tenant may do: its connector types and quotas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// Source and sink types its pipelines may name.
    pub connectors: Vec<String>,
    /// Hosts its connectors may reach (see [`host_granted`]); none by default.
    pub hosts: Vec<String>,
    /// Its weight in sharing the CPU with the other active tenants
    /// (1..=10000; see [`crate::pipeline::fair`]).
    pub cpu_weight: u32,
    /// Most pipelines it may have.
    pub max_pipelines: u64,
    /// Most bytes of plugins it may store, all together.
    pub max_plugin_bytes: u64,
    /// Largest request body it may send.
    pub max_request_bytes: u64,
    /// API requests per second its tokens may make together, on average.
    pub api_requests_per_s: u64,
    /// API requests it may make at once above that rate (the bucket's size).
    pub api_burst: u64,
    /// Bytes of checkpoints, keyed state and table snapshots of all its
    /// pipelines together (`tenants/T/pipelines`, dead letters not counted).
    pub max_state_bytes: u64,
    /// Bytes of its pipelines' default dead-letter files, all together.
    pub max_dead_letter_bytes: u64,
    /// Most named connections it may have.
    pub max_named_connections: u64,
    /// Most memory, in MiB, its running pipelines' bounds may add up to
    /// (plugin memory, keyed state and tables; see
    /// [`crate::pipeline::Footprint`]). Checked when a run starts.
    pub max_memory_mb: u64,
    /// Bytes of its file area (`tenants/T/files`), uploads and what its
    /// pipelines write there together.
    pub max_file_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            // Types that read or write nothing outside the tenant's own area.
            connectors: vec!["datagen".into(), "file".into()],
            hosts: Vec::new(),
            cpu_weight: 100,
            max_pipelines: 10,
            max_plugin_bytes: 64 << 20,
            max_request_bytes: 16 << 20,
            api_requests_per_s: 50,
            api_burst: 100,
            max_state_bytes: 1 << 30,
            max_dead_letter_bytes: 1 << 30,
            max_named_connections: 50,
            max_memory_mb: 4096,
            max_file_bytes: 1 << 30,
        }
    }
}

impl Policy {
    fn over(mut self, g: &Grant) -> Self {
        if let Some(c) = &g.connectors {
            self.connectors = c.clone();
        }
        if let Some(h) = &g.hosts {
            self.hosts = h.clone();
        }
        if let Some(w) = g.cpu_weight {
            self.cpu_weight = w;
        }
        if let Some(v) = g.max_pipelines {
            self.max_pipelines = v;
        }
        if let Some(v) = g.max_plugin_bytes {
            self.max_plugin_bytes = v;
        }
        if let Some(v) = g.max_request_bytes {
            self.max_request_bytes = v;
        }
        if let Some(v) = g.api_requests_per_s {
            self.api_requests_per_s = v;
        }
        if let Some(v) = g.api_burst {
            self.api_burst = v;
        }
        if let Some(v) = g.max_state_bytes {
            self.max_state_bytes = v;
        }
        if let Some(v) = g.max_dead_letter_bytes {
            self.max_dead_letter_bytes = v;
        }
        if let Some(v) = g.max_named_connections {
            self.max_named_connections = v;
        }
        if let Some(v) = g.max_memory_mb {
            self.max_memory_mb = v;
        }
        if let Some(v) = g.max_file_bytes {
            self.max_file_bytes = v;
        }
        self
    }
}

/// The listener's TLS: the certificate chain and key of `cert` and `key`
/// (PEM), TLS 1.2 and 1.3 with ring, HTTP/1.1.
fn tls_config(cert: &Path, key: &Path) -> Result<std::sync::Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate (PEM)", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the key does not fit the certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// One entry of a `hosts` grant, split: (host pattern, port if one).
fn split_grant(entry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (entry, None),
    }
}

fn check_host_grant(entry: &str) -> Result<(), &'static str> {
    if entry == "*" {
        return Ok(());
    }
    let (host, port) = split_grant(entry);
    if let Some(p) = port {
        p.parse::<u16>().map_err(|_| "has no valid port")?;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() || name.contains(['*', '/', '@', ' ']) {
        return Err("is not a host name");
    }
    Ok(())
}

/// True when `grants` let a connector reach `e`: `*`; the same host (names
/// compared without case) with the same port, or any port when the grant
/// names none; `*.DOMAIN` for names ending in `.DOMAIN`. An endpoint whose
/// port is unknown (a `mongodb+srv://` name) needs a grant without a port.
pub fn host_granted(grants: &[String], e: &crate::connector::endpoint::Endpoint) -> bool {
    grants.iter().any(|g| {
        if g == "*" {
            return true;
        }
        let (host, port) = split_grant(g);
        let port_ok = match (port, e.port) {
            (None, _) => true,
            (Some(p), Some(q)) => p.parse::<u16>() == Ok(q),
            (Some(_), None) => false,
        };
        let host = host.to_ascii_lowercase();
        let host_ok = match host.strip_prefix("*.") {
            Some(domain) => e
                .host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == e.host,
        };
        port_ok && host_ok
    })
}

/// The server's configuration, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Catalog, plugins and tenants' data.
    pub data_dir: PathBuf,
    /// The operator's token.
    pub admin_token: String,
    /// Open connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// The key that seals named connections' secrets; `None`:
    /// `DATA_DIR/secrets.key`, made at first start.
    pub secrets_key_file: Option<PathBuf>,
    /// Bounds on live taps.
    pub tap: TapLimits,
    /// HTTPS on the listener, when the certificate and key are given.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The PostgreSQL catalog several servers share; `None`: the redb file.
    pub catalog: Option<SharedCatalog>,
    defaults: Policy,
    tenants: BTreeMap<String, Policy>,
}

impl ServerConfig {
    /// Reads and checks `path`; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let env = std::env::var(ADMIN_TOKEN_ENV).ok();
        Self::parse(&text, path, env)
    }

    fn parse(text: &str, path: &Path, env_token: Option<String>) -> Result<Self> {
        let file: File = toml::from_str(text)
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let listen: SocketAddr = file.listen.parse().with_context(|| {
            format!(
                "{}: listen: expected HOST:PORT with an IP address",
                path.display()
            )
        })?;
        let admin_token = match (&file.admin_token_file, env_token) {
            (Some(f), _) => {
                let f = base.join(f);
                std::fs::read_to_string(&f)
                    .with_context(|| format!("reading admin_token_file {}", f.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            }
            (None, Some(t)) => t.trim().to_string(),
            (None, None) => bail!(
                "{}: no admin token: set admin_token_file or ${ADMIN_TOKEN_ENV}",
                path.display()
            ),
        };
        if admin_token.chars().count() < MIN_TOKEN_CHARS {
            bail!("the admin token is shorter than {MIN_TOKEN_CHARS} characters");
        }
        if file.max_connections == 0 {
            bail!("{}: max_connections must be at least 1", path.display());
        }
        let t = file.tap;
        if t.max_rate == 0 || t.max_per_tenant == 0 || t.max_total == 0 {
            bail!(
                "{}: tap: max_rate, max_per_tenant and max_total must be at least 1",
                path.display()
            );
        }
        if !(1..=110).contains(&t.max_seconds) {
            bail!(
                "{}: tap: max_seconds must be 1 to 110 (a connection lives at most 120 s)",
                path.display()
            );
        }
        let defaults = Policy::default().over(&file.defaults);
        let known: Vec<&str> = crate::sources::types()
            .into_iter()
            .chain(crate::sinks::types())
            .collect();
        let mut tenants = BTreeMap::new();
        for (name, grant) in &file.tenants {
            tenants.insert(name.clone(), defaults.clone().over(grant));
        }
        for (who, policy) in std::iter::once(("defaults", &defaults))
            .chain(tenants.iter().map(|(n, p)| (n.as_str(), p)))
        {
            if policy.api_requests_per_s == 0 || policy.api_burst == 0 {
                bail!(
                    "{}: {who}: api_requests_per_s and api_burst must be at least 1",
                    path.display()
                );
            }
            if !(1..=10_000).contains(&policy.cpu_weight) {
                bail!(
                    "{}: {who}: cpu_weight is {}; expected 1 to 10000",
                    path.display(),
                    policy.cpu_weight
                );
            }
            for h in &policy.hosts {
                check_host_grant(h).map_err(|why| {
                    anyhow::anyhow!(
                        "{}: {who}: hosts entry `{h}` {why}; expected `HOST:PORT`, `HOST` (any port), `*.DOMAIN[:PORT]` or `*`",
                        path.display()
                    )
                })?;
            }
            for c in &policy.connectors {
                if !known.contains(&c.as_str()) {
                    bail!(
                        "{}: {who}: unknown connector type `{c}`; expected any of {}",
                        path.display(),
                        known.join(", ")
                    );
                }
            }
        }
        let tls = match (&file.tls_cert_file, &file.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(
                tls_config(&base.join(cert), &base.join(key))
                    .with_context(|| format!("{}: tls_cert_file/tls_key_file", path.display()))?,
            ),
            _ => bail!(
                "{}: tls_cert_file and tls_key_file go together: give both for HTTPS, or neither",
                path.display()
            ),
        };
        let catalog = match &file.catalog {
            None => None,
            Some(c) => {
                let shared = shared_catalog(c, path, &|v| std::env::var(v).ok())?;
                // Every server must seal and open secrets with the same key;
                // one made in each data dir would differ.
                if file.secrets_key_file.is_none() {
                    bail!(
                        "{}: a shared catalog needs `secrets_key_file`: the same key file on every server (the key in DATA_DIR would differ between servers)",
                        path.display()
                    );
                }
                Some(shared)
            }
        };
        Ok(Self {
            tls,
            catalog,
            listen,
            data_dir: base.join(file.data_dir),
            admin_token,
            max_connections: file.max_connections,
            secrets_key_file: file.secrets_key_file.map(|f| base.join(f)),
            tap: file.tap,
            defaults,
            tenants,
        })
    }

    /// A tenant's grant and quotas.
    pub fn policy(&self, tenant: &str) -> Policy {
        self.tenants
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// The largest request body any tenant may send (the server-wide cap).
    pub fn max_request_bytes(&self) -> u64 {
        self.tenants
            .values()
            .map(|p| p.max_request_bytes)
            .chain(std::iter::once(self.defaults.max_request_bytes))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_inherit_defaults_field_by_field() -> Result<()> {
        let c = ServerConfig::parse(
            r#"
listen = "127.0.0.1:0"
data_dir = "data"
[defaults]
max_pipelines = 3
[tenants.acme]
connectors = ["datagen"]
"#,
            Path::new("/etc/sluice/server.toml"),
            Some("0123456789abcdef".into()),
        )?;
        assert_eq!(c.data_dir, Path::new("/etc/sluice/data"));
        let acme = c.policy("acme");
        assert_eq!(acme.connectors, ["datagen"]);
        assert_eq!(acme.max_pipelines, 3);
        assert_eq!(c.policy("other").connectors, ["datagen", "file"]);
        Ok(())
    }

    #[test]
    fn host_grants_match_host_port_and_subdomains_only() {
        use crate::connector::endpoint::Endpoint;
        let g: Vec<String> = [
            "db.internal:5432",
            "*.kafka.internal",
            "[::1]:9200",
            "10.0.0.7",
        ]
        .map(String::from)
        .to_vec();
        let ok = |h: &str, p: Option<u16>| host_granted(&g, &Endpoint::new(h, p));
        assert!(ok("DB.internal", Some(5432)));
        assert!(!ok("db.internal", Some(5433)));
        assert!(!ok("db.internal.evil.example", Some(5432)));
        assert!(ok("b1.kafka.internal", Some(9092)));
        assert!(ok("a.b.kafka.internal", Some(9093)));
        assert!(!ok("kafka.internal", Some(9092)), "`*.` needs a subdomain");
        assert!(!ok("evilkafka.internal", Some(9092)));
        assert!(ok("::1", Some(9200)));
        assert!(!ok("::1", Some(9201)));
        assert!(ok("10.0.0.7", Some(1)));
        assert!(
            !ok("db.internal", None),
            "a grant with a port needs the port known"
        );
        assert!(!ok("unix:/var/run/postgresql", None));
        assert!(host_granted(&["*".into()], &Endpoint::new("unix:/x", None)));
        assert!(!host_granted(
            &[],
            &Endpoint::new("db.internal", Some(5432))
        ));
    }

    #[test]
    fn a_bad_host_grant_is_refused_naming_it() {
        let text = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[tenants.a]\nhosts = [\"db:5432\", \"db:x\"]\n";
        let e = ServerConfig::parse(text, Path::new("s.toml"), Some("0123456789abcdef".into()))
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "s.toml: a: hosts entry `db:x` has no valid port; expected `HOST:PORT`, `HOST` (any port), `*.DOMAIN[:PORT]` or `*`"
        );
        for bad in ["*.", "a*b:1", "user@db:1"] {
            assert!(check_host_grant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_connectors_keys_and_short_tokens_are_refused() {
        let p = Path::new("s.toml");
        let t = || Some("0123456789abcdef".to_string());
        let bad_type =
            "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[tenants.a]\nconnectors = [\"nope\"]\n";
        let err = ServerConfig::parse(bad_type, p, t())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown connector type `nope`"), "{err}");
        let bad_key = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\nmax_pipeline = 1\n";
        let message = |text: &str, token: Option<String>| {
            ServerConfig::parse(text, p, token)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        let err = message(bad_key, t());
        assert!(err.contains("unknown field `max_pipeline`"), "{err}");
        let ok = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n";
        let err = message(ok, Some("short".into()));
        assert_eq!(
            err,
            format!("the admin token is shorter than {MIN_TOKEN_CHARS} characters")
        );
        let err = message(ok, None);
        assert!(err.contains("s.toml: no admin token"), "{err}");
    }

    #[test]
    fn tap_bounds_default_and_are_checked() -> Result<()> {
        let p = Path::new("s.toml");
        let t = || Some("0123456789abcdef".to_string());
        let base = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n";
        assert_eq!(ServerConfig::parse(base, p, t())?.tap, TapLimits::default());
        let c = ServerConfig::parse(&format!("{base}[tap]\nmax_rate = 5\n"), p, t())?;
        assert_eq!((c.tap.max_rate, c.tap.max_per_tenant), (5, 4));
        for (bad, expected) in [
            (
                "max_seconds = 111",
                "s.toml: tap: max_seconds must be 1 to 110 (a connection lives at most 120 s)",
            ),
            (
                "max_total = 0",
                "s.toml: tap: max_rate, max_per_tenant and max_total must be at least 1",
            ),
        ] {
            let err = ServerConfig::parse(&format!("{base}[tap]\n{bad}\n"), p, t())
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert_eq!(err, expected);
        }
        Ok(())
    }

    #[test]
    fn a_shared_catalog_needs_one_url_a_shared_key_and_sane_bounds() -> Result<()> {
        let p = Path::new("s.toml");
        let t = || Some("0123456789abcdef".to_string());
        let base = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n";
        let keyed = format!("{base}secrets_key_file = \"k\"\n");
        assert!(ServerConfig::parse(base, p, t())?.catalog.is_none());
        let c = ServerConfig::parse(
            &format!(
                "{keyed}[catalog]\nurl = \"postgres://u:pw@db:5432/cat\"\nserver_id = \"s1\"\n"
            ),
            p,
            t(),
        )?;
        let shared = c.catalog.expect("a shared catalog");
        assert_eq!(shared.server_id, "s1");
        assert_eq!(shared.lease, std::time::Duration::from_secs(10));
        // The URL (and its password) stays out of debug output.
        assert!(!format!("{shared:?}").contains("pw"));
        let c = ServerConfig::parse(
            &format!("{keyed}[catalog]\nurl = \"postgres://db/cat\"\n"),
            p,
            t(),
        )?;
        let id = c.catalog.map(|c| c.server_id).unwrap_or_default();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        for (text, expected) in [
            (
                format!("{base}[catalog]\nurl = \"postgres://db/cat\"\n"),
                "s.toml: a shared catalog needs `secrets_key_file`",
            ),
            (
                format!("{keyed}[catalog]\nurl = \"postgres://db/c\"\nurl_env = \"X\"\n"),
                "s.toml: catalog: give exactly one of `url` and `url_env`",
            ),
            (
                format!("{keyed}[catalog]\nurl_env = \"SLUICE_TEST_UNSET_CATALOG_VARIABLE\"\n"),
                "s.toml: catalog.url_env: the environment variable `SLUICE_TEST_UNSET_CATALOG_VARIABLE` is not set",
            ),
            (
                format!("{keyed}[catalog]\nurl = \"mysql://db/c\"\n"),
                "s.toml: catalog: the url must be postgres://",
            ),
            (
                format!("{keyed}[catalog]\nurl = \"postgres://db/c\"\nlease_seconds = 1\n"),
                "s.toml: catalog.lease_seconds must be 2 to 3600",
            ),
            (
                format!("{keyed}[catalog]\nurl = \"postgres://db/c\"\nserver_id = \"a b\"\n"),
                "s.toml: catalog.server_id `a b`",
            ),
        ] {
            let err = ServerConfig::parse(&text, p, t())
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(err.starts_with(expected), "{err}");
        }
        Ok(())
    }
}
