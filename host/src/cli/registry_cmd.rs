//! `sluice registry`: the embedded Confluent-compatible Schema Registry.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::format::registry::server::Registry;

/// Serves the registry on `listen` with state in `data` until killed.
pub fn run(listen: &str, data: &Path, threads: usize) -> Result<ExitCode> {
    let registry = Registry::bind(listen, data)?;
    // One line on stdout, so scripts can read the address (port 0 picks one).
    println!("SLUICE_SCHEMA_REGISTRY_URL=http://{}", registry.addr);
    tracing::info!(addr = %registry.addr, data = %data.display(), "schema registry listening");
    registry.serve(threads)?;
    Ok(ExitCode::SUCCESS)
}
