//! The node's audit signer: the Ed25519 key that signs checkpoints (created
//! on first use, kept beside the database in Cordon's data directory with
//! mode 0600) and the log's origin name.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use cordon_audit::{Checkpoint, NoteSigner, NoteVerifier};
use cordon_plugin_host::signing::{self, SigningKey};
use cordon_storage::{CheckpointRecord, Store};

/// The log's origin: the first line of every checkpoint, and the key's name.
/// `CORDON_AUDIT_ORIGIN` overrides it (one per deployment, so two logs'
/// checkpoints can never be confused).
pub fn origin() -> String {
    std::env::var("CORDON_AUDIT_ORIGIN").unwrap_or_else(|_| "cordon.audit".to_string())
}

/// Where the checkpoint-signing key lives: `CORDON_AUDIT_KEY`, else
/// `audit.key` in Cordon's data directory.
fn key_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CORDON_AUDIT_KEY") {
        return Ok(path.into());
    }
    crate::files::data_dir()
        .map(|d| d.join("audit.key"))
        .ok_or_else(|| anyhow!("no data directory: set CORDON_HOME or CORDON_AUDIT_KEY"))
}

/// The signing key, created (0600) if there is none yet.
fn key() -> anyhow::Result<SigningKey> {
    let path = key_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(signing::parse_secret_key(&text)
            .with_context(|| format!("audit key {}", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = signing::generate_key()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::files::write_private(&path, &signing::secret_key_text(&key))?;
            Ok(key)
        }
        Err(e) => Err(anyhow!("cannot read audit key {}: {e}", path.display())),
    }
}

/// Signs checkpoints of this node's log.
#[derive(Debug)]
pub struct Auditor {
    signer: NoteSigner,
    origin: String,
}

impl Auditor {
    /// The node's auditor (loading or creating its key).
    pub fn open() -> anyhow::Result<Auditor> {
        let origin = origin();
        Ok(Auditor {
            signer: NoteSigner::new(&origin, key()?).map_err(|e| anyhow!("{e}"))?,
            origin,
        })
    }

    /// The verifier key auditors keep (signed-note `vkey` format).
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Signs a checkpoint over the log as it is now, if it grew.
    pub async fn checkpoint(&self, store: &Store) -> anyhow::Result<Option<CheckpointRecord>> {
        let origin = self.origin.clone();
        let record = store
            .checkpoint(
                |size, root| {
                    Checkpoint {
                        origin,
                        size,
                        root: *root,
                    }
                    .sign(&self.signer)
                },
                chrono::Utc::now(),
            )
            .await?;
        Ok(record)
    }
}
