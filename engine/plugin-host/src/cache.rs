//! Compiled components, cached on disk by component digest and engine
//! compatibility hash, so that a restart does not recompile.
//!
//! Loading compiled code is `unsafe` in wasmtime (a crafted artifact is
//! native code), so an entry is trusted only if it is the host's own: it
//! lives in a host-owned directory, and it starts with the SHA-256 of the
//! rest, checked before wasmtime sees it. A missing, truncated or corrupt
//! entry is recompiled and rewritten, never loaded.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use crate::error::LoadError;

/// The start of every entry: format and version.
const MAGIC: &[u8; 8] = b"CORDONC1";

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now, no cache configured.
    Compiled,
    /// Compiled now and written to the cache.
    Stored,
    /// Loaded from the cache.
    Hit,
    /// A cache entry was corrupt: recompiled and rewritten.
    Replaced,
}

#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: Option<PathBuf>,
    /// Hex of the engine's compatibility hash (wasmtime version, target,
    /// compiler settings): a different engine never reads another's entries.
    engine: String,
}

/// Feeds `Hash` output into SHA-256 (stable across processes, unlike
/// `DefaultHasher`'s seed-free but unspecified algorithm).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

impl CompiledCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &Engine) -> Result<CompiledCache, String> {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        if let Some(dir) = &dir {
            create_private_dir(dir)
                .map_err(|e| format!("cache directory {}: {e}", dir.display()))?;
        }
        Ok(CompiledCache {
            dir,
            engine: engine_hash,
        })
    }

    fn path(&self, digest_hex: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest_hex}-{}.cwasm", self.engine)))
    }

    /// The compiled component for `bytes` (whose digest is `digest_hex`,
    /// already verified).
    pub(crate) fn component(
        &self,
        engine: &Engine,
        digest_hex: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let Some(path) = self.path(digest_hex) else {
            return Ok((compile(engine, bytes)?, CacheOutcome::Compiled));
        };
        let mut outcome = CacheOutcome::Stored;
        match std::fs::read(&path) {
            Ok(entry) => match self.load(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(why) => {
                    tracing::warn!(path = %path.display(), "compiled cache entry refused, recompiling: {why}");
                    outcome = CacheOutcome::Replaced;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read compiled cache entry: {e}")
            }
        }
        let component = compile(engine, bytes)?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot write compiled cache entry: {e}");
            outcome = CacheOutcome::Compiled;
        }
        Ok((component, outcome))
    }

    fn load(&self, engine: &Engine, entry: &[u8]) -> Result<Component, String> {
        let rest = entry
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a cache entry")?;
        if rest.len() < 32 {
            return Err("truncated".into());
        }
        let (sum, code) = rest.split_at(32);
        if Sha256::digest(code).as_slice() != sum {
            return Err("checksum mismatch".into());
        }
        if Engine::detect_precompiled(code) != Some(Precompiled::Component) {
            return Err("not a compiled component".into());
        }
        // SAFETY: `code` is an artifact this host serialised itself (it sits
        // in the host-owned cache directory and its checksum matches), made
        // by an engine with the same compatibility hash (part of the file
        // name); wasmtime additionally checks version and settings and fails
        // safely on a mismatch.
        #[allow(unsafe_code, reason = "loading the host's own compiled code")]
        let component = unsafe { Component::deserialize(engine, code) };
        component.map_err(|e| format!("{e:#}"))
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::from_binary(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

/// Writes an entry atomically (temporary file, then rename).
fn store(path: &std::path::Path, component: &Component) -> Result<(), String> {
    let code = component.serialize().map_err(|e| format!("{e:#}"))?;
    let mut entry = Vec::with_capacity(MAGIC.len() + 32 + code.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&Sha256::digest(&code));
    entry.extend_from_slice(&code);
    // Unique per process and call: two loads of one component may race.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, &entry).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
