//! The asset inventory: the devices playbooks act on. What makes a device
//! importable is checked here once ([`device_problems`]) for every way in
//! (the CLI's files, the API); an import and its audit event are one
//! transaction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait as _, EntityTrait, PaginatorTrait as _, QueryFilter as _, QueryOrder, Set,
};

use crate::connect::Store;
use crate::entity::device;
use crate::error::StorageError;

/// One device of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The inventory id (what plugins receive as `device`).
    pub id: String,
    /// The device type (`plc`, `gateway`, `sensor`…).
    pub device_type: String,
    /// The site.
    pub site: String,
    /// Free-form tags (`line-3`, `canary`).
    pub tags: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// The firmware version it runs.
    pub firmware: String,
    /// The serial of its client certificate.
    pub cert_serial: Option<String>,
    /// Who is responsible for it.
    pub owner: String,
    /// Whether continuity drills may act on it.
    pub drill: bool,
}

/// One problem with a device about to be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProblem {
    /// The device's position in what was given (0-based).
    pub index: usize,
    /// A stable code: `inventory.id`, `inventory.duplicate`,
    /// `inventory.criticality`, `inventory.missing`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Every problem with `devices` (bad or repeated ids, unknown criticality,
/// empty type or site), checked before anything is written. The one
/// definition of an importable device, for the CLI's files and the API.
pub fn device_problems(devices: &[DeviceRecord]) -> Vec<DeviceProblem> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (index, d) in devices.iter().enumerate() {
        let mut problem = |code, message| {
            problems.push(DeviceProblem {
                index,
                code,
                message,
            });
        };
        let valid_id = !d.id.is_empty()
            && d.id.len() <= 128
            && d.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_id {
            problem(
                "inventory.id",
                format!("`{}` is not an id (1 to 128 of A-Z a-z 0-9 . _ -)", d.id),
            );
        } else if !seen.insert(d.id.as_str()) {
            problem(
                "inventory.duplicate",
                format!("device `{}` appears twice", d.id),
            );
        }
        if d.criticality
            .parse::<cordon_playbook::expr::Criticality>()
            .is_err()
        {
            problem(
                "inventory.criticality",
                format!("`{}` is not low, medium, high or critical", d.criticality),
            );
        }
        for (field, value) in [("type", &d.device_type), ("site", &d.site)] {
            if value.trim().is_empty() {
                problem("inventory.missing", format!("`{field}` is empty"));
            }
        }
    }
    problems
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Devices that were not in the inventory.
    pub new: usize,
    /// Devices that replaced a record with the same id.
    pub updated: usize,
}

impl Store {
    /// Inserts the devices, or replaces those whose id exists, and appends
    /// `event` (who imported what), all in one transaction.
    pub async fn import_devices(
        &self,
        devices: &[DeviceRecord],
        event: crate::audit::NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Imported, StorageError> {
        let txn = self.begin_write().await?;
        let mut known = 0;
        for chunk in devices.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
            known += device::Entity::find()
                .filter(device::Column::Id.is_in(ids))
                .count(&txn)
                .await?;
        }
        upsert(&txn, devices, now).await?;
        crate::audit::append(&txn, self.backend(), &[event], now).await?;
        txn.commit().await?;
        let updated = usize::try_from(known).unwrap_or(usize::MAX);
        Ok(Imported {
            new: devices.len().saturating_sub(updated),
            updated,
        })
    }

    /// Inserts the devices, or replaces those whose id exists, in one transaction.
    pub async fn upsert_devices(
        &self,
        devices: &[DeviceRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
        upsert(&txn, devices, now).await?;
        txn.commit().await?;
        Ok(())
    }

    /// One device, if the inventory has it.
    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        device::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(record)
            .transpose()
    }

    /// Every device, by id.
    pub async fn devices(&self) -> Result<Vec<DeviceRecord>, StorageError> {
        device::Entity::find()
            .order_by_asc(device::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(record)
            .collect()
    }
}

/// Inserts or replaces `devices` inside `txn`.
async fn upsert(
    txn: &sea_orm::DatabaseTransaction,
    devices: &[DeviceRecord],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // Chunks keep each statement under the backends' bind-parameter limits.
    for chunk in devices.chunks(500) {
        let rows = chunk
            .iter()
            .map(|d| {
                Ok(device::ActiveModel {
                    id: Set(d.id.clone()),
                    device_type: Set(d.device_type.clone()),
                    site: Set(d.site.clone()),
                    tags: Set(serde_json::to_string(&d.tags)
                        .map_err(|e| StorageError::Corrupt(e.to_string()))?),
                    criticality: Set(d.criticality.clone()),
                    firmware: Set(d.firmware.clone()),
                    cert_serial: Set(d.cert_serial.clone()),
                    owner: Set(d.owner.clone()),
                    drill: Set(d.drill),
                    updated_at: Set(now),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        device::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(device::Column::Id)
                    .update_columns([
                        device::Column::DeviceType,
                        device::Column::Site,
                        device::Column::Tags,
                        device::Column::Criticality,
                        device::Column::Firmware,
                        device::Column::CertSerial,
                        device::Column::Owner,
                        device::Column::Drill,
                        device::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// A stored row as a record.
fn record(row: device::Model) -> Result<DeviceRecord, StorageError> {
    Ok(DeviceRecord {
        tags: serde_json::from_str(&row.tags)
            .map_err(|e| StorageError::Corrupt(format!("tags of device {}: {e}", row.id)))?,
        id: row.id,
        device_type: row.device_type,
        site: row.site,
        criticality: row.criticality,
        firmware: row.firmware,
        cert_serial: row.cert_serial,
        owner: row.owner,
        drill: row.drill,
    })
}
