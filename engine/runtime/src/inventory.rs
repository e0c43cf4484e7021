//! The inventory as the engine reads it: stored devices matched against
//! selectors (`tag=line-3,site=plant-a,criticality>=high`).

use cordon_playbook::expr::{Criticality, Selector, SelectorField, SelectorOp, SelectorTerm};
use cordon_storage::DeviceRecord;

use serde_json::{Value, json};

use crate::evaluate::Inventory;

/// A snapshot of the stored inventory, taken when a fan-out resolves its
/// items: the devices a rollout covers are fixed when it starts.
#[derive(Debug, Clone, Default)]
pub struct StoredInventory {
    devices: Vec<DeviceRecord>,
}

impl StoredInventory {
    /// An inventory of these devices.
    pub fn new(devices: Vec<DeviceRecord>) -> StoredInventory {
        StoredInventory { devices }
    }
}

impl StoredInventory {
    /// The devices a selector picks, in id order; an error says why the
    /// selector is wrong.
    pub fn matching(&self, selector: &str) -> Result<Vec<&DeviceRecord>, String> {
        let selector: Selector = selector.parse().map_err(|e| format!("{e}"))?;
        let mut picked: Vec<&DeviceRecord> = self
            .devices
            .iter()
            .filter(|d| selector.terms.iter().all(|t| holds(t, d)))
            .collect();
        picked.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(picked)
    }

    /// The ids of the devices a selector picks, in order.
    pub fn ids(&self, selector: &str) -> Result<Vec<String>, String> {
        Ok(self
            .matching(selector)?
            .into_iter()
            .map(|d| d.id.clone())
            .collect())
    }
}

impl Inventory for StoredInventory {
    fn select(&self, selector: &str) -> Result<Vec<Value>, String> {
        Ok(self.matching(selector)?.into_iter().map(record).collect())
    }
}

/// A device as expressions see it: the inventory's fields, under the names
/// of the import format (`type`, not `device_type`).
fn record(device: &DeviceRecord) -> Value {
    json!({
        "id": device.id,
        "type": device.device_type,
        "site": device.site,
        "tags": device.tags,
        "criticality": device.criticality,
        "firmware": device.firmware,
        "cert_serial": device.cert_serial,
        "owner": device.owner,
        "drill": device.drill,
    })
}

/// Whether one term holds for a device.
fn holds(term: &SelectorTerm, device: &DeviceRecord) -> bool {
    let equal = |value: &str| match term.op {
        SelectorOp::Eq => value == term.value,
        SelectorOp::Ne => value != term.value,
        // The parser allows ordering only on criticality.
        _ => false,
    };
    match term.field {
        SelectorField::Id => equal(&device.id),
        SelectorField::Type => equal(&device.device_type),
        SelectorField::Site => equal(&device.site),
        SelectorField::Owner => equal(&device.owner),
        SelectorField::Firmware => equal(&device.firmware),
        SelectorField::Tag => {
            let has = device.tags.iter().any(|t| t == &term.value);
            match term.op {
                SelectorOp::Ne => !has,
                _ => has,
            }
        }
        SelectorField::Criticality => {
            let (Ok(have), Ok(want)) = (
                device.criticality.parse::<Criticality>(),
                term.value.parse::<Criticality>(),
            ) else {
                return false;
            };
            match term.op {
                SelectorOp::Eq => have == want,
                SelectorOp::Ne => have != want,
                SelectorOp::Ge => have >= want,
                SelectorOp::Gt => have > want,
                SelectorOp::Le => have <= want,
                SelectorOp::Lt => have < want,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, site: &str, tags: &[&str], criticality: &str) -> DeviceRecord {
        DeviceRecord {
            id: id.into(),
            device_type: "plc".into(),
            site: site.into(),
            tags: tags.iter().map(ToString::to_string).collect(),
            criticality: criticality.into(),
            firmware: "2.4.1".into(),
            cert_serial: None,
            owner: "ot-team".into(),
            drill: false,
        }
    }

    #[test]
    fn selectors_pick_devices_by_every_field() {
        let inventory = StoredInventory::new(vec![
            device("plc-2", "plant-a", &["line-3"], "high"),
            device("plc-1", "plant-a", &["line-3", "canary"], "low"),
            device("plc-3", "plant-b", &["line-4"], "critical"),
        ]);
        let pick = |s: &str| -> Vec<String> {
            let records = inventory.select(s).expect(s);
            records
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_string())
                .collect()
        };
        assert_eq!(pick("tag=line-3"), ["plc-1", "plc-2"], "sorted by id");
        assert_eq!(pick("tag=line-3,criticality>=high"), ["plc-2"]);
        assert_eq!(pick("criticality>high"), ["plc-3"]);
        assert_eq!(pick("criticality<=low"), ["plc-1"]);
        assert_eq!(pick("site!=plant-a"), ["plc-3"]);
        assert_eq!(pick("tag!=canary,site=plant-a"), ["plc-2"]);
        assert_eq!(pick("*").len(), 3);
        assert!(pick("site=nowhere").is_empty());
        let record = &inventory.select("id=plc-3").expect("select")[0];
        assert_eq!(record["type"], "plc");
        assert_eq!(record["tags"], json!(["line-4"]));
        assert_eq!(record["criticality"], "critical");
        assert!(inventory.select("colour=red").is_err());
    }
}
