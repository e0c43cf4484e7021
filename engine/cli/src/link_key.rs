//! The key that signs mailed one-time approval links: `CORDON_LINK_KEY`
//! (a file), else `link.key` in Cordon's data directory, created (0600,
//! 32 random bytes as hex) on first use. Kept out of the database, so a
//! database reader cannot make working links.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use cordon_server::mail::links::LinkKeys;

fn key_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CORDON_LINK_KEY") {
        return Ok(PathBuf::from(path));
    }
    crate::files::data_dir()
        .map(|d| d.join("link.key"))
        .ok_or_else(|| anyhow!("no data directory: set CORDON_HOME or CORDON_LINK_KEY"))
}

/// The link key, created if there is none yet.
pub fn load() -> anyhow::Result<LinkKeys> {
    let path = key_path()?;
    let parse = |text: &str| -> anyhow::Result<LinkKeys> {
        let bytes = hex::decode(text.trim()).context("not hex")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow!("a link key is 32 bytes (64 hex digits)"))?;
        Ok(LinkKeys::new(key))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).with_context(|| format!("link key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| anyhow!("no randomness for the link key: {e}"))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::files::write_private(&path, &hex::encode(key))?;
            Ok(LinkKeys::new(key))
        }
        Err(e) => Err(anyhow!("cannot read link key {}: {e}", path.display())),
    }
}
