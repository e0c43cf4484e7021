//! The inventory as the engine reads it: stored devices matched against
//! selectors (`tag=line-3,site=plant-a,criticality>=high`).

use cordon_playbook::expr::{Criticality, Selector, SelectorField, SelectorOp, SelectorTerm};
use cordon_storage::DeviceRecord;

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

impl Inventory for StoredInventory {
    fn select(&self, selector: &str) -> Result<Vec<String>, String> {
        let selector: Selector = selector.parse().map_err(|e| format!("{e}"))?;
        let mut ids: Vec<String> = self
            .devices
            .iter()
            .filter(|d| selector.terms.iter().all(|t| holds(t, d)))
            .map(|d| d.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }
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
        let pick = |s: &str| inventory.select(s).expect(s);
        assert_eq!(pick("tag=line-3"), ["plc-1", "plc-2"], "sorted by id");
        assert_eq!(pick("tag=line-3,criticality>=high"), ["plc-2"]);
        assert_eq!(pick("criticality>high"), ["plc-3"]);
        assert_eq!(pick("criticality<=low"), ["plc-1"]);
        assert_eq!(pick("site!=plant-a"), ["plc-3"]);
        assert_eq!(pick("tag!=canary,site=plant-a"), ["plc-2"]);
        assert_eq!(pick("*").len(), 3);
        assert!(pick("site=nowhere").is_empty());
        assert!(inventory.select("colour=red").is_err());
    }
}
