//! `sluice serve`: one long-running process hosting many tenants' pipelines
//! with the same runner, pipeline files and guarantees as `sluice run`,
//! behind an HTTP API (`/v1`, JSON).
//!
//! - [`config`]: `server.toml` (listen address, data dir, admin token,
//!   per-tenant grants and quotas);
//! - [`store`]: the catalog (redb, or PostgreSQL through [`pgstore`] when
//!   several servers share it) of tenants, token hashes, plugins and
//!   pipeline specs with their desired status;
//! - [`cluster`]: several servers on one catalog: each follows the
//!   catalog's changes and decides which pipelines it runs;
//! - [`auth`]: tokens and who a request comes from;
//! - [`policy`]: what a tenant's pipeline file may not do;
//! - [`connections`], [`secrets`]: named connections, their secrets sealed
//!   with the server key;
//! - [`ratelimit`]: each tenant's API rate;
//! - [`tenants`], [`plugins`], [`pipelines`]: what the API does, as plain
//!   functions over [`Server`];
//! - [`supervisor`]: the running pipelines, one thread each;
//! - [`logs`]: each pipeline's own log lines;
//! - [`tap`]: the live tap of a running pipeline's source or stage (SSE);
//! - [`history`]: each pipeline's last hour of rates and lag, for charts;
//! - [`usage`]: the state, dead-letter and file-area byte quotas;
//! - [`files`]: a tenant's file area through the API;
//! - [`metrics`]: `/metrics` in the Prometheus text format;
//! - [`openapi`]: the OpenAPI document at `/v1/openapi.json`;
//! - [`console`]: the web console's embedded files and the DAG it draws;
//! - [`api`]: routes, request bounds and the connection loop.
//!
//! The data dir holds `catalog.redb`, `secrets.key` (unless
//! `secrets_key_file` is set), `plugins/SHA256.wasm` (content addressed,
//! read-only), `cache/` (compiled plugins, unless `SLUICE_CACHE_DIR` is
//! set) and `tenants/NAME/{plugins,files,pipelines,connections}`.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod console;
pub mod dead_letters;
pub mod error;
pub mod files;
pub mod history;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod pgstore;
pub mod pipelines;
pub mod plugins;
pub mod policy;
pub mod ratelimit;
pub mod reach;
pub mod secrets;
pub mod store;
pub mod supervisor;
pub mod tap;
pub mod tenants;
pub mod usage;

use std::collections::HashSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::plugin::{ComponentCache, WasmEngine};
use config::ServerConfig;
use store::Store;
use supervisor::Supervisor;

/// Everything a request handler needs.
pub struct Server {
    /// The configuration.
    pub config: ServerConfig,
    /// The catalog.
    pub store: Store,
    /// Running pipelines.
    pub supervisor: Supervisor,
    /// Plugins are checked and compiled with it.
    pub engine: WasmEngine,
    /// Compiled plugins.
    pub cache: ComponentCache,
    /// One lock per tenant: its changes happen one at a time, so a quota
    /// check and the change it allows cannot interleave with another.
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
    /// Held while content-addressed blobs are added or removed.
    pub blobs: Mutex<()>,
    /// Each tenant's API rate.
    pub rate: ratelimit::RateLimiter,
    /// Seals named connections' secrets.
    pub secret_key: secrets::SecretKey,
    /// Live taps open now.
    pub taps: tap::Taps,
    /// With a shared catalog: which catalog version of each pipeline this
    /// server has applied, and the pipelines it holds leases on.
    pub cluster: cluster::Cluster,
}

/// Holds a tenant's lock (see [`Server::lock_tenant`]) until dropped.
pub struct TenantGuard<'a> {
    server: &'a Server,
    tenant: String,
}

impl Drop for TenantGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.server.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.tenant);
        self.server.freed.notify_all();
    }
}

/// Creates `dir` (and parents) private to this user.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl Server {
    /// Opens the data dir and catalog.
    pub fn open(mut config: ServerConfig) -> Result<Self> {
        private_dir(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        // Absolute, so plugin links and pipeline paths do not depend on the
        // working directory.
        config.data_dir = config
            .data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", config.data_dir.display()))?;
        private_dir(&config.data_dir.join("plugins"))?;
        let store = match &config.catalog {
            None => Store::open(&config.data_dir.join("catalog.redb"))?,
            Some(shared) => Store::open_pg(&shared.url)?,
        };
        let key_file = config
            .secrets_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("secrets.key"));
        let secret_key = secrets::SecretKey::open_or_create(&key_file)?;
        if let Some(pg) = store.pg() {
            secrets::check_shared_key(pg, &secret_key, &key_file)?;
        }
        let engine = WasmEngine::new()?;
        // The operator's SLUICE_CACHE_DIR when set, else one inside the data dir.
        let cache = if std::env::var_os("SLUICE_CACHE_DIR").is_some_and(|v| !v.is_empty()) {
            ComponentCache::from_env()
        } else {
            ComponentCache::new(config.data_dir.join("cache"))
        };
        Ok(Self {
            supervisor: Supervisor::new(engine.clone(), cache.clone()),
            config,
            store,
            engine,
            cache,
            busy: Mutex::default(),
            freed: Condvar::new(),
            blobs: Mutex::default(),
            rate: ratelimit::RateLimiter::default(),
            secret_key,
            taps: tap::Taps::default(),
            cluster: cluster::Cluster::default(),
        })
    }

    /// Serializes `tenant`'s changes; other tenants are not held up.
    pub fn lock_tenant(&self, tenant: &str) -> TenantGuard<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(tenant) {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(tenant.to_string());
        TenantGuard {
            server: self,
            tenant: tenant.to_string(),
        }
    }

    /// `data/tenants/NAME`.
    pub fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.config.data_dir.join("tenants").join(tenant)
    }

    /// Where a blob with this hash lives.
    pub fn blob(&self, sha256: &str) -> PathBuf {
        self.config
            .data_dir
            .join("plugins")
            .join(format!("{sha256}.wasm"))
    }
}

/// `sluice serve --config FILE`.
pub fn serve(config_path: &Path) -> Result<ExitCode> {
    let config = ServerConfig::load(config_path)?;
    let server = std::sync::Arc::new(Server::open(config)?);
    if server.config.catalog.is_some() {
        // The first reconcile starts what this server should run; later
        // ones (every second) follow the other servers' changes.
        cluster::reconcile(&server);
        cluster::spawn(server.clone());
    } else {
        pipelines::resume_all(&server);
    }
    usage::spawn_watch(server.clone());
    history::spawn(server.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let outcome = runtime.block_on(api::listen(server.clone()));
    // Every pipeline drains and checkpoints; their desired state is kept,
    // so the next start resumes them.
    tracing::info!("stopping pipelines");
    server.supervisor.shutdown(Duration::from_secs(30));
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome?;
    Ok(ExitCode::SUCCESS)
}
