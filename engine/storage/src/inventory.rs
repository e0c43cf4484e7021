//! The asset inventory: the devices playbooks act on. (Importing it from
//! YAML or CSV and the `cordon inventory` commands arrive with the fleet;
//! this is the storage side the engine reads.)

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, QueryOrder, Set};

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

impl Store {
    /// Inserts the devices, or replaces those whose id exists, in one transaction.
    pub async fn upsert_devices(
        &self,
        devices: &[DeviceRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
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
                .exec_without_returning(&txn)
                .await?;
        }
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
