//! Validating and publishing playbooks against what this node knows: its
//! plugin catalog, the components it loaded, and the playbooks already
//! published (sub-playbooks resolve against them). The CLI's `publish`
//! and the API's `POST /playbooks` both come here, so both pin the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cordon_playbook::{Context, Diagnostic, PlaybookIndex, PluginCatalog, Validation, validate};
use cordon_storage::{NewVersion, PluginPin, PublishOutcome, StorageError, Store};

/// What publishing needs to know about plugins.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Every plugin descriptor the validator knows.
    pub plugins: Arc<PluginCatalog>,
    /// `(name, major)` → (version, digest) of each loaded signed component:
    /// what a published version pins.
    pub components: BTreeMap<(String, u64), (String, String)>,
}

/// Why a playbook was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// It does not validate; every diagnostic is here.
    #[error("the playbook does not validate")]
    Invalid(Vec<Diagnostic>),
    /// Storage refused it (a [`StorageError::VersionConflict`] among others).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A playbook published (or already published with the same content).
#[derive(Debug)]
pub struct Publication {
    /// What storage did.
    pub outcome: PublishOutcome,
    /// The warnings the validator had (errors prevent publishing).
    pub diagnostics: Vec<Diagnostic>,
}

/// Validates `bytes` as the playbook file `file`, with the published
/// playbooks as the sub-playbook index.
pub async fn validate_source(
    store: &Store,
    catalog: &Catalog,
    file: &str,
    bytes: &[u8],
) -> Result<Validation, StorageError> {
    let mut index = PlaybookIndex::default();
    for stored in store.all_versions().await? {
        if let Ok(version) = semver::Version::parse(&stored.version) {
            index.insert(&stored.name, version, stored.playbook.inputs.clone());
        }
    }
    let ctx = Context {
        playbooks: Some(&index),
        ..Context::new(&catalog.plugins)
    };
    Ok(validate(file, bytes, &ctx))
}

/// Validates and publishes a playbook as `by`, pinning each `uses:` to the
/// loaded component (its digest) or, without one, to the descriptor's version.
pub async fn publish(
    store: &Store,
    catalog: &Catalog,
    file: &str,
    bytes: &[u8],
    by: &str,
    now: DateTime<Utc>,
) -> Result<Publication, PublishError> {
    let validation = validate_source(store, catalog, file, bytes).await?;
    let diagnostics = validation.diagnostics.clone();
    let (Some(valid), Ok(source)) = (validation.into_valid(), std::str::from_utf8(bytes)) else {
        return Err(PublishError::Invalid(diagnostics));
    };
    let playbook = valid.playbook();
    let mut pins = BTreeMap::new();
    for uses in playbook.steps.iter().filter_map(|s| s.uses.as_ref()) {
        if let Some((version, digest)) = catalog.components.get(&(uses.name.clone(), uses.major)) {
            pins.insert(
                uses.to_string(),
                PluginPin {
                    version: version.clone(),
                    digest: Some(digest.clone()),
                },
            );
        } else if let Some(descriptor) = catalog.plugins.get(&uses.name, uses.major) {
            pins.insert(
                uses.to_string(),
                PluginPin {
                    version: descriptor.version.to_string(),
                    digest: None,
                },
            );
        }
    }
    let new = NewVersion::new(playbook, source.to_string(), pins, now, by.to_string())?;
    let outcome = store.publish(new).await?;
    Ok(Publication {
        outcome,
        diagnostics,
    })
}
