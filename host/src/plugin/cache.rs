//! On-disk cache of precompiled components, keyed by the component's content
//! hash and the engine's configuration. A Cranelift compile takes 0.1 s to
//! tens of seconds; loading a precompiled artifact takes under a millisecond.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled artifacts live.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// How a component was obtained, for logs and `plugin inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled and stored for next time.
    Compiled,
}

struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The default: `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else
    /// `~/.cache/sluice`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("SLUICE_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("sluice");
        }
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache").join("sluice"))
            .unwrap_or_else(|| std::env::temp_dir().join("sluice-cache"))
    }

    fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut h = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = h.0.finalize();
        let content = Sha256::digest(wasm);
        format!(
            "{}-{}",
            hex::encode(&content[..16]),
            hex::encode(&engine_hash[..8])
        )
    }

    /// The compiled component for `wasm`, from the cache or compiled now.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!("{}.cwasm", Self::key(engine, wasm)));
        if path.is_file() {
            // SAFETY: the artifact was written by `store` below from a component
            // this engine configuration compiled; wasmtime also checks the
            // header's engine compatibility and refuses a mismatch, which we
            // treat as a miss.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached component; recompiling")
                }
            }
        }
        let bytes = engine
            .precompile_component(wasm)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if let Err(e) = store(&path, &bytes) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
        }
        // SAFETY: `bytes` was produced by `precompile_component` on this engine just now.
        let component = unsafe { Component::deserialize(engine, &bytes) }
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((component, CacheOutcome::Compiled))
    }
}

fn store(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Write then rename so a concurrent reader never sees half an artifact.
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
