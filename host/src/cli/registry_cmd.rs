//! `sluice registry`: the embedded Confluent-compatible Schema Registry.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::format::registry::server::{Options, Registry};

/// The environment variable that may hold the registry's token.
pub const TOKEN_ENV: &str = "SLUICE_REGISTRY_TOKEN";

/// The exposure flags of `sluice registry`.
#[derive(Debug)]
pub struct Exposure {
    /// `--max-body-bytes`.
    pub max_body_bytes: u64,
    /// `--auth-token-file`.
    pub auth_token_file: Option<PathBuf>,
    /// `--public-reads`.
    pub public_reads: bool,
}

/// The token from `file` (first line), else from [`TOKEN_ENV`].
fn token(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(file) = file {
        let meta = std::fs::metadata(file)
            .with_context(|| format!("reading the token file {}", file.display()))?;
        if meta.mode() & 0o077 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{:04o}", meta.mode() & 0o7777), "the registry token file is readable by other users; chmod 600 it");
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the token file {}", file.display()))?;
        let line = text.lines().next().unwrap_or("").trim();
        if line.is_empty() {
            bail!("the token file {} is empty", file.display());
        }
        return Ok(Some(line.to_string()));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Serves the registry on `listen` with state in `data` until killed.
pub fn run(listen: &str, data: &Path, threads: usize, exposure: Exposure) -> Result<ExitCode> {
    let token = token(exposure.auth_token_file.as_deref())?;
    if exposure.public_reads && token.is_none() {
        bail!("--public-reads only makes sense with a token (--auth-token-file or {TOKEN_ENV})");
    }
    let authenticated = token.is_some();
    let options = Options {
        max_body_bytes: exposure.max_body_bytes,
        token,
        public_reads: exposure.public_reads,
    };
    let registry = Registry::bind_with(listen, data, options)?;
    // One line on stdout, so scripts can read the address (port 0 picks one).
    println!("SLUICE_SCHEMA_REGISTRY_URL=http://{}", registry.addr);
    tracing::info!(addr = %registry.addr, data = %data.display(), authenticated, "schema registry listening");
    registry.serve(threads)?;
    Ok(ExitCode::SUCCESS)
}
