//! Immutable playbook versions: publish once, read forever.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cordon_playbook::Playbook;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connect::Store;
use crate::entity::playbook_version::{self, Entity as Versions};
use crate::error::StorageError;

/// The exact plugin a published version runs for one `uses: name@major`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginPin {
    /// The plugin version the catalog resolved at publish time.
    pub version: String,
    /// The component's SHA-256, once plugins are signed components (the
    /// plugin sandbox fills this in; descriptors alone have no digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A version ready to be published.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The playbook's name.
    pub name: String,
    /// Its semantic version.
    pub version: String,
    /// `sha256:<hex>` of `canonical`.
    pub digest: String,
    /// The YAML as written.
    pub source: String,
    /// RFC 8785 canonical JSON of the typed playbook.
    pub canonical: String,
    /// Plugin pins by `name@major`.
    pub plugins: BTreeMap<String, PluginPin>,
    /// When it is published (from the caller's clock).
    pub published_at: DateTime<Utc>,
    /// Who publishes it.
    pub published_by: String,
}

impl NewVersion {
    /// Prepares `playbook` for publishing. The digest covers the canonical
    /// JSON of the typed model, so comments, key order and YAML style do not
    /// change it, while any change of meaning does.
    pub fn new(
        playbook: &Playbook,
        source: String,
        plugins: BTreeMap<String, PluginPin>,
        published_at: DateTime<Utc>,
        published_by: String,
    ) -> Result<NewVersion, StorageError> {
        let canonical = serde_jcs::to_string(playbook)
            .map_err(|e| StorageError::Corrupt(format!("cannot canonicalise: {e}")))?;
        Ok(NewVersion {
            name: playbook.name.clone(),
            version: playbook.version.clone(),
            digest: digest(canonical.as_bytes()),
            source,
            canonical,
            plugins,
            published_at,
            published_by,
        })
    }
}

/// `sha256:<lowercase hex>`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A published version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    /// The playbook's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `sha256:<hex>` of the canonical content.
    pub digest: String,
    /// The YAML as published.
    pub source: String,
    /// The typed playbook, decoded from the canonical content.
    pub playbook: Playbook,
    /// Plugin pins.
    pub plugins: BTreeMap<String, PluginPin>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Who published it.
    pub published_by: String,
}

/// One line of `cordon versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    /// The version.
    pub version: String,
    /// Its digest.
    pub digest: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Who published it.
    pub published_by: String,
}

/// One published playbook: its name and newest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaybookSummary {
    /// The playbook's name.
    pub name: String,
    /// Its highest version (semantic-version order).
    pub latest: String,
    /// That version's digest.
    pub digest: String,
    /// When that version was published.
    pub published_at: DateTime<Utc>,
    /// How many versions are published.
    pub versions: usize,
}

/// What `publish` did.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishOutcome {
    /// A new version was stored.
    Published(StoredVersion),
    /// The same name, version and content were already stored: nothing changed.
    AlreadyPublished(StoredVersion),
}

impl TryFrom<playbook_version::Model> for StoredVersion {
    type Error = StorageError;

    fn try_from(row: playbook_version::Model) -> Result<Self, StorageError> {
        let corrupt = |what: &str, e: serde_json::Error| {
            StorageError::Corrupt(format!("{}@{}: {what}: {e}", row.name, row.version))
        };
        Ok(StoredVersion {
            playbook: serde_json::from_str(&row.canonical)
                .map_err(|e| corrupt("canonical content", e))?,
            plugins: serde_json::from_str(&row.plugins).map_err(|e| corrupt("plugin pins", e))?,
            name: row.name,
            version: row.version,
            digest: row.digest,
            source: row.source,
            published_at: row.published_at,
            published_by: row.published_by,
        })
    }
}

fn by_semver(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

impl Store {
    /// Publishes a version. Publishing the same name, version and content
    /// again changes nothing; the same name and version with other content
    /// is [`StorageError::VersionConflict`].
    pub async fn publish(&self, new: NewVersion) -> Result<PublishOutcome, StorageError> {
        let txn = self.begin_write().await?;
        if let Some(existing) = self.find(&txn, &new.name, &new.version).await? {
            txn.commit().await?;
            return same_or_conflict(existing, &new);
        }
        let row = playbook_version::ActiveModel {
            name: Set(new.name.clone()),
            version: Set(new.version.clone()),
            digest: Set(new.digest.clone()),
            source: Set(new.source.clone()),
            canonical: Set(new.canonical.clone()),
            plugins: Set(serde_json::to_string(&new.plugins)
                .map_err(|e| StorageError::Corrupt(e.to_string()))?),
            published_at: Set(new.published_at),
            published_by: Set(new.published_by.clone()),
            ..Default::default()
        };
        match row.insert(&txn).await {
            Ok(inserted) => {
                // Who published what, in the transaction that stores it.
                let event = crate::audit::NewEvent {
                    actor: format!("user:{}", new.published_by),
                    kind: "playbook.published".into(),
                    run: None,
                    step: None,
                    device: None,
                    data: serde_json::json!({
                        "playbook": new.name, "version": new.version, "digest": new.digest,
                        "plugins": new.plugins,
                    }),
                };
                crate::audit::append(&txn, self.backend(), &[event], new.published_at).await?;
                txn.commit().await?;
                Ok(PublishOutcome::Published(inserted.try_into()?))
            }
            // Another publisher won the race between our read and our insert.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                drop(txn);
                let existing = self
                    .find(&self.db, &new.name, &new.version)
                    .await?
                    .ok_or(StorageError::Database(e))?;
                same_or_conflict(existing, &new)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn find<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        name: &str,
        version: &str,
    ) -> Result<Option<playbook_version::Model>, StorageError> {
        Ok(Versions::find()
            .filter(playbook_version::Column::Name.eq(name))
            .filter(playbook_version::Column::Version.eq(version))
            .one(conn)
            .await?)
    }

    /// One published version.
    pub async fn version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredVersion>, StorageError> {
        self.find(&self.db, name, version)
            .await?
            .map(StoredVersion::try_from)
            .transpose()
    }

    /// The highest published version of `name` (by semantic-version order).
    pub async fn latest(&self, name: &str) -> Result<Option<StoredVersion>, StorageError> {
        let Some(newest) = self.versions(name).await?.pop() else {
            return Ok(None);
        };
        self.version(name, &newest.version).await
    }

    /// Every version of `name`, oldest first by semantic-version order.
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionSummary>, StorageError> {
        let rows = Versions::find()
            .filter(playbook_version::Column::Name.eq(name))
            .order_by_asc(playbook_version::Column::Id)
            .all(&self.db)
            .await?;
        let mut out: Vec<VersionSummary> = rows
            .into_iter()
            .map(|r| VersionSummary {
                version: r.version,
                digest: r.digest,
                published_at: r.published_at,
                published_by: r.published_by,
            })
            .collect();
        out.sort_by(|a, b| by_semver(&a.version, &b.version));
        Ok(out)
    }

    /// Every published playbook, by name, with its newest version.
    pub async fn playbooks(&self) -> Result<Vec<PlaybookSummary>, StorageError> {
        let rows: Vec<(String, String, String, DateTime<Utc>)> = Versions::find()
            .select_only()
            .columns([
                playbook_version::Column::Name,
                playbook_version::Column::Version,
                playbook_version::Column::Digest,
                playbook_version::Column::PublishedAt,
            ])
            .order_by_asc(playbook_version::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut by_name: BTreeMap<String, PlaybookSummary> = BTreeMap::new();
        for (name, version, digest, published_at) in rows {
            let summary = by_name
                .entry(name.clone())
                .or_insert_with(|| PlaybookSummary {
                    name,
                    latest: version.clone(),
                    digest: digest.clone(),
                    published_at,
                    versions: 0,
                });
            summary.versions += 1;
            if by_semver(&version, &summary.latest).is_gt() {
                summary.latest = version;
                summary.digest = digest;
                summary.published_at = published_at;
            }
        }
        Ok(by_name.into_values().collect())
    }

    /// Every published version of every playbook, for the validator's sub-playbook index.
    pub async fn all_versions(&self) -> Result<Vec<StoredVersion>, StorageError> {
        Versions::find()
            .order_by_asc(playbook_version::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredVersion::try_from)
            .collect()
    }
}

fn same_or_conflict(
    existing: playbook_version::Model,
    new: &NewVersion,
) -> Result<PublishOutcome, StorageError> {
    if existing.digest == new.digest {
        Ok(PublishOutcome::AlreadyPublished(existing.try_into()?))
    } else {
        Err(StorageError::VersionConflict {
            name: new.name.clone(),
            version: new.version.clone(),
            existing: existing.digest,
            new: new.digest.clone(),
        })
    }
}
