//! Atomic file replacement.
//!
//! Every file the authority owns is replaced by writing a temporary file in
//! the same directory, fsyncing it, renaming it over the old one and fsyncing
//! the directory: a crash leaves either the old or the new file, never a torn
//! one (a torn `crl.pem` would make Mosquitto fail open at its next reload).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Private files: keys, the registry.
pub const PRIVATE: u32 = 0o600;
/// Public files: certificates, the CRL, public keys.
pub const PUBLIC: u32 = 0o644;

/// Replaces `path` with `bytes` atomically, with permissions `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `path` only if it does not exist yet (idempotent `init`).
/// Returns whether it wrote.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    write_atomic(path, bytes, mode)?;
    Ok(true)
}
