//! On-disk cache of precompiled components, keyed by the component's content
//! hash and the engine's configuration. A Cranelift compile takes 0.1 s to
//! tens of seconds; loading a precompiled artifact takes under a millisecond.
//!
//! A precompiled artifact is native code that wasmtime maps and runs without
//! checking it, so whoever can put a file in the cache can run code inside
//! `sluice`. Three things keep that closed:
//! - the directory must be the user's own and writable by no one else
//!   ([`secure_dir`]), and there is no shared `/tmp` fallback;
//! - every artifact carries an HMAC-SHA256 under a per-host random key kept
//!   0600 beside it ([`CacheKey`]), over the source's hash, the engine's
//!   configuration and the artifact bytes — so another component's valid
//!   artifact copied under this one's name fails, as does a forged one;
//! - the bytes that were checked are the bytes deserialized (read once into
//!   memory, never mapped from a path that could be swapped in between).
//!
//! An artifact that fails the check is deleted with a warning naming it, and
//! the component is compiled again.
//!
//! A component loaded once is kept in memory for the cache's life (a few,
//! [`LOADED_MAX`], the oldest dropped first): `sluice run` loads every plugin
//! to check the pipeline and again to run it, and reading, authenticating and
//! deserializing the artifact twice was a quarter of its start-up. The kept
//! one is found by the hash of the bytes just read from the plugin's file and
//! by engine, so a changed file is loaded afresh. The price: a long-lived
//! process (`sluice serve`, `run --watch`) holds up to that many components
//! (their compiled code, a few MiB each) after their pipelines let go.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

type HmacSha256 = Hmac<Sha256>;

/// Leads every artifact file; bump it when the layout changes.
const MAGIC: &[u8; 8] = b"SLUICEC1";
const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;
const KEY_FILE: &str = "cache.key";
/// Larger artifacts are not read (a planted FIFO or huge file must not hang or
/// exhaust the host); real ones are a few MiB.
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// Most components kept loaded in memory; beyond, the oldest goes.
pub const LOADED_MAX: usize = 16;

/// Where compiled artifacts live.
#[derive(Clone)]
pub struct ComponentCache {
    /// `None`: no usable directory, every load compiles.
    dir: Option<PathBuf>,
    /// The directory check and key, established on first use.
    ready: Arc<OnceLock<Option<CacheKey>>>,
    /// Components loaded already, oldest first.
    loaded: Arc<Mutex<Vec<Loaded>>>,
}

/// A component loaded already: its source's hash and the engine it is for.
struct Loaded {
    source: [u8; 32],
    engine: Engine,
    component: Component,
}

impl Loaded {
    fn is(&self, source: &[u8; 32], engine: &Engine) -> bool {
        self.source == *source && Engine::same(&self.engine, engine)
    }
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How a component was obtained, for logs and `plugin inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Loaded already by this process (and kept in memory).
    Kept,
    /// Compiled and stored for next time.
    Compiled,
    /// Compiled; there is no usable cache directory to store it in.
    Uncached,
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

/// Why the cache directory or its key cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum UnsafeCache {
    /// Someone else owns it.
    #[error("{path} is owned by uid {owner}, not by this user (uid {me})")]
    NotOwned {
        /// The directory or file.
        path: String,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        me: u32,
    },
    /// Others may write (directory) or read (key) it.
    #[error("{path} has mode {mode:04o}: {why}")]
    Mode {
        /// The directory or file.
        path: String,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with them.
        why: &'static str,
    },
    /// Not a directory / not a regular file / wrong size.
    #[error("{path}: {why}")]
    Kind {
        /// The path.
        path: String,
        /// What is wrong.
        why: String,
    },
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks that `meta` (of `path`) is owned by this user and that `forbidden`
/// permission bits are clear.
fn check_owner_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    forbidden: u32,
    why: &'static str,
) -> Result<(), UnsafeCache> {
    let me = euid();
    if meta.uid() != me {
        return Err(UnsafeCache::NotOwned {
            path: path.display().to_string(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(UnsafeCache::Mode {
            path: path.display().to_string(),
            mode,
            why,
        });
    }
    Ok(())
}

/// Creates `dir` 0700 if missing, then checks it is a directory owned by
/// this user that no one else can write to.
pub fn secure_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    if !meta.is_dir() {
        return Err(UnsafeCache::Kind {
            path: dir.display().to_string(),
            why: "not a directory".into(),
        }
        .into());
    }
    check_owner_mode(dir, &meta, 0o022, "group or others may write to it")?;
    Ok(())
}

/// The per-host secret that authenticates artifacts.
#[derive(Clone)]
pub struct CacheKey([u8; KEY_LEN]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

impl CacheKey {
    /// Reads the key in `dir`, creating it (0600, exclusively) on first use.
    /// A key that others can read, that someone else owns, or that is not
    /// exactly 32 bytes is refused.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        Self::open_or_create_file(&dir.join(KEY_FILE))
    }

    /// [`CacheKey::open_or_create`] for a key file named in full (the
    /// server's secrets key is made and checked the same way).
    pub fn open_or_create_file(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let dir = path.parent().unwrap_or(Path::new("."));
        match Self::read(&path) {
            Ok(k) => return Ok(k),
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("random cache key: {e}"))?;
        // Written to a private temp file, then linked into place only if no
        // key exists: two processes starting together agree on one key.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        tmp.write_all(&key)?;
        tmp.as_file().sync_all()?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(Self(key)),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Self::read(&path),
            Err(e) => Err(e.error).with_context(|| format!("creating {}", path.display())),
        }
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn read(path: &Path) -> Result<Self> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)?;
        let meta = f.metadata()?;
        if !meta.is_file() || meta.len() != KEY_LEN as u64 {
            return Err(UnsafeCache::Kind {
                path: path.display().to_string(),
                why: format!("not a regular file of {KEY_LEN} bytes"),
            }
            .into());
        }
        check_owner_mode(path, &meta, 0o077, "group or others may read or write it")?;
        let mut key = [0u8; KEY_LEN];
        f.read_exact(&mut key)?;
        Ok(Self(key))
    }

    fn mac(&self, source: &[u8; 32], engine: &[u8], artifact: &[u8]) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm cannot run.
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(MAGIC);
        mac.update(source);
        mac.update(&(engine.len() as u64).to_le_bytes());
        mac.update(engine);
        mac.update(artifact);
        mac
    }
}

/// Why a cached artifact was not used.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("it failed authentication (forged, tampered with, or written under another key)")]
    Forged,
    #[error("{0}")]
    Unreadable(String),
}

impl ComponentCache {
    /// A cache in `dir` (created 0700 on first use).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir: Some(dir),
            ready: Default::default(),
            loaded: Default::default(),
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        Self {
            dir: None,
            ready: Arc::new(OnceLock::from(None)),
            loaded: Default::default(),
        }
    }

    /// The cache in [`ComponentCache::default_dir`], or none (with a warning)
    /// when there is no such directory.
    pub fn from_env() -> Self {
        match Self::default_dir() {
            Some(d) => Self::new(d),
            None => {
                tracing::warn!("no compile cache: HOME, XDG_CACHE_HOME and SLUICE_CACHE_DIR are all unset, so every plugin is compiled on each start; set SLUICE_CACHE_DIR to a private directory to cache them");
                Self::disabled()
            }
        }
    }

    /// The default: `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else
    /// `~/.cache/sluice`. There is deliberately no fallback under the shared
    /// temp directory, where another user could create it first.
    pub fn default_dir() -> Option<PathBuf> {
        let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = non_empty("SLUICE_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        if let Some(d) = non_empty("XDG_CACHE_HOME") {
            return Some(PathBuf::from(d).join("sluice"));
        }
        non_empty("HOME").map(|h| PathBuf::from(h).join(".cache").join("sluice"))
    }

    /// The directory and key, checked once; `None` (after a warning) when
    /// the directory cannot be trusted.
    fn ready(&self) -> Option<(&Path, &CacheKey)> {
        let dir = self.dir.as_deref()?;
        let key = self.ready.get_or_init(|| {
            let checked = secure_dir(dir).and_then(|()| CacheKey::open_or_create(dir));
            match checked {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %format!("{e:#}"), "not using the compile cache: the directory is not safe to load native code from; compiling every plugin instead");
                    None
                }
            }
        });
        key.as_ref().map(|k| (dir, k))
    }

    fn engine_hash(engine: &Engine) -> Vec<u8> {
        let mut h = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.finalize().to_vec()
    }

    fn file_name(source: &[u8; 32], engine_hash: &[u8]) -> String {
        format!(
            "{}-{}.cwasm",
            hex::encode(&source[..16]),
            hex::encode(&engine_hash[..8])
        )
    }

    /// The compiled component for `wasm`, from the cache or compiled now.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, CacheOutcome)> {
        self.load_named(engine, wasm, "component")
    }

    /// [`ComponentCache::load`], naming the plugin in the notice printed
    /// while it compiles (which can take tens of seconds).
    pub fn load_named(
        &self,
        engine: &Engine,
        wasm: &[u8],
        name: &str,
    ) -> Result<(Component, CacheOutcome)> {
        self.load_hashed(engine, wasm, Sha256::digest(wasm).into(), name)
    }

    /// [`ComponentCache::load_named`] for a caller that has hashed `wasm`
    /// already (`source`: its SHA-256), which spares hashing it again. The
    /// hash names the artifact and finds the kept component, so it must be
    /// `wasm`'s: crate-private, and checked in debug builds.
    pub(crate) fn load_hashed(
        &self,
        engine: &Engine,
        wasm: &[u8],
        source: [u8; 32],
        name: &str,
    ) -> Result<(Component, CacheOutcome)> {
        debug_assert_eq!(<[u8; 32]>::from(Sha256::digest(wasm)), source);
        if let Some(c) = self.kept(engine, &source) {
            return Ok((c, CacheOutcome::Kept));
        }
        let (component, outcome) = self.load_uncached(engine, wasm, source, name)?;
        self.keep(engine, source, &component);
        Ok((component, outcome))
    }

    fn kept(&self, engine: &Engine, source: &[u8; 32]) -> Option<Component> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .iter()
            .find(|l| l.is(source, engine))
            .map(|l| l.component.clone())
    }

    fn keep(&self, engine: &Engine, source: [u8; 32], component: &Component) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        // Two threads that loaded the same plugin at once keep it once.
        if loaded.iter().any(|l| l.is(&source, engine)) {
            return;
        }
        if loaded.len() >= LOADED_MAX {
            loaded.remove(0);
        }
        loaded.push(Loaded {
            source,
            engine: engine.clone(),
            component: component.clone(),
        });
    }

    fn load_uncached(
        &self,
        engine: &Engine,
        wasm: &[u8],
        source: [u8; 32],
        name: &str,
    ) -> Result<(Component, CacheOutcome)> {
        let engine_hash = Self::engine_hash(engine);
        let ready = self.ready();
        if let Some((dir, key)) = ready {
            let path = dir.join(Self::file_name(&source, &engine_hash));
            match read_verified(&path, key, &source, &engine_hash) {
                Ok(Some(artifact)) => {
                    // SAFETY: the bytes carry a valid HMAC under this host's
                    // private key over this component's hash and this engine's
                    // configuration, so `store` below wrote them from
                    // `precompile_component` output; they are deserialized
                    // from memory, not re-read from the path. wasmtime also
                    // refuses a header from another engine configuration.
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(c) => return Ok((c, CacheOutcome::Hit)),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached component; recompiling")
                        }
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(path = %path.display(), "deleting cached component {}: {why}; recompiling", path.display());
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "could not delete the rejected artifact");
                    }
                }
            }
        }
        let notice = CompileNotice::start(name, wasm.len(), ready.is_some());
        let bytes = engine
            .precompile_component(wasm)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        drop(notice);
        let mut outcome = CacheOutcome::Uncached;
        if let Some((dir, key)) = ready {
            let path = dir.join(Self::file_name(&source, &engine_hash));
            match store(dir, &path, key, &source, &engine_hash, &bytes) {
                Ok(()) => outcome = CacheOutcome::Compiled,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "could not cache compiled component")
                }
            }
        }
        // SAFETY: `bytes` was produced by `precompile_component` on this engine just now.
        let component = unsafe { Component::deserialize(engine, &bytes) }
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((component, outcome))
    }
}

/// Says a plugin is compiling, so a long compile is not a silent hang: one
/// log line, and on a terminal a spinner until the compile ends.
struct CompileNotice(Option<indicatif::ProgressBar>);

impl CompileNotice {
    fn start(name: &str, bytes: usize, cached: bool) -> Self {
        let mib = bytes as f64 / (1024.0 * 1024.0);
        let then = if cached {
            "cached for later runs"
        } else {
            "no compile cache, so again on every start"
        };
        tracing::info!("compiling plugin {name} ({mib:.1} MiB) once; {then}");
        let spinner = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(format!("compiling plugin {name}"));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self(spinner)
    }
}

impl Drop for CompileNotice {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// The artifact inside `path` if its MAC holds; `Ok(None)` if there is no
/// file.
fn read_verified(
    path: &Path,
    key: &CacheKey,
    source: &[u8; 32],
    engine_hash: &[u8],
) -> Result<Option<Vec<u8>>, Rejected> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Rejected::Unreadable(format!("cannot open it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Rejected::Unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(Rejected::Unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(Rejected::Unreadable(format!(
            "{} bytes is larger than any artifact",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_ARTIFACT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| Rejected::Unreadable(e.to_string()))?;
    let header = MAGIC.len() + MAC_LEN;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Rejected::Forged);
    }
    let artifact = bytes.split_off(header);
    key.mac(source, engine_hash, &artifact)
        .verify_slice(&bytes[MAGIC.len()..header])
        .map_err(|_| Rejected::Forged)?;
    Ok(Some(artifact))
}

/// Writes `MAGIC || MAC || artifact` to a fresh, exclusively created,
/// randomly named 0600 file in `dir`, then renames it over `path`, so a
/// reader never sees half an artifact and nothing can be redirected through
/// a planted symlink.
fn store(
    dir: &Path,
    path: &Path,
    key: &CacheKey,
    source: &[u8; 32],
    engine_hash: &[u8],
    artifact: &[u8],
) -> Result<()> {
    let mac = key
        .mac(source, engine_hash, artifact)
        .finalize()
        .into_bytes();
    let mut tmp = tempfile::Builder::new()
        .prefix(".artifact-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let f: &mut File = tmp.as_file_mut();
    f.write_all(MAGIC)?;
    f.write_all(&mac)?;
    f.write_all(artifact)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_new_cache_directory_is_created_private() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("a").join("cache");
        secure_dir(&dir).expect("a fresh directory is accepted");
        let mode = std::fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        for mode in [0o777, 0o770, 0o702, 0o1777] {
            chmod(t.path(), mode);
            let e = secure_dir(t.path()).expect_err("writable by others");
            assert!(
                format!("{e:#}").contains("may write"),
                "mode {mode:o}: {e:#}"
            );
        }
        chmod(t.path(), 0o755);
        secure_dir(t.path()).expect("read-only for others is fine");
    }

    #[test]
    fn a_directory_owned_by_someone_else_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = if euid() == 0 {
            // As root, make one; as anyone else, `/` is someone else's.
            let d = t.path().join("theirs");
            std::fs::create_dir(&d).expect("mkdir");
            std::os::unix::fs::chown(&d, Some(4242), Some(4242)).expect("chown");
            chmod(&d, 0o700);
            d
        } else {
            PathBuf::from("/")
        };
        let e = secure_dir(&dir).expect_err("someone else's directory");
        assert!(format!("{e:#}").contains("not by this user"), "{e:#}");
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let f = t.path().join("file");
        std::fs::write(&f, b"x").expect("write");
        assert!(secure_dir(&f).is_err());
    }

    #[test]
    fn the_key_is_created_0600_and_read_back_the_same() {
        let t = tempfile::tempdir().expect("tempdir");
        let k1 = CacheKey::open_or_create(t.path()).expect("create");
        let meta = std::fs::metadata(t.path().join(KEY_FILE)).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let k2 = CacheKey::open_or_create(t.path()).expect("reopen");
        assert_eq!(k1.0, k2.0);
    }

    #[test]
    fn a_key_others_can_read_or_of_the_wrong_size_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        CacheKey::open_or_create(t.path()).expect("create");
        let key = t.path().join(KEY_FILE);
        chmod(&key, 0o640);
        let e = CacheKey::open_or_create(t.path()).expect_err("group-readable key");
        assert!(format!("{e:#}").contains("may read"), "{e:#}");
        chmod(&key, 0o600);
        std::fs::write(&key, b"short").expect("write");
        assert!(CacheKey::open_or_create(t.path()).is_err());
    }

    #[test]
    fn a_symlinked_key_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let elsewhere = t.path().join("elsewhere");
        std::fs::write(&elsewhere, [7u8; KEY_LEN]).expect("write");
        chmod(&elsewhere, 0o600);
        std::os::unix::fs::symlink(&elsewhere, t.path().join(KEY_FILE)).expect("symlink");
        assert!(CacheKey::open_or_create(t.path()).is_err());
    }

    #[test]
    fn an_artifact_verifies_only_for_its_own_source_and_key() {
        let t = tempfile::tempdir().expect("tempdir");
        let key = CacheKey::open_or_create(t.path()).expect("key");
        let path = t.path().join("x.cwasm");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        store(t.path(), &path, &key, &a, b"engine", b"native code").expect("store");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o777,
            0o600
        );
        let got = read_verified(&path, &key, &a, b"engine").expect("verifies");
        assert_eq!(got.as_deref(), Some(&b"native code"[..]));
        // Same bytes presented as another component's artifact.
        assert!(matches!(
            read_verified(&path, &key, &b, b"engine"),
            Err(Rejected::Forged)
        ));
        // Another engine configuration.
        assert!(read_verified(&path, &key, &a, b"other").is_err());
        // Another host's key.
        let other = CacheKey([9u8; KEY_LEN]);
        assert!(read_verified(&path, &other, &a, b"engine").is_err());
        // One flipped byte in the code.
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            read_verified(&path, &key, &a, b"engine"),
            Err(Rejected::Forged)
        ));
        assert!(matches!(
            read_verified(&t.path().join("absent.cwasm"), &key, &a, b"engine"),
            Ok(None)
        ));
    }
}
