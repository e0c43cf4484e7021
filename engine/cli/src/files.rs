//! Files Cordon keeps for itself: its data directory and private key files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Cordon's data directory: `$CORDON_HOME`, else `cordon` in the user's data directory.
pub fn data_dir() -> Option<PathBuf> {
    std::env::var_os("CORDON_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("cordon")))
}

/// Creates `path` readable by its owner only (0600) and writes `text`;
/// never overwrites an existing file (a key is never replaced by accident).
#[cfg(unix)]
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Creates `path` and writes `text`; never overwrites an existing file.
#[cfg(not(unix))]
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
