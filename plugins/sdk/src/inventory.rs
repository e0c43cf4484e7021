//! Read access to the device inventory (WIT interface `inventory`). Needs
//! [`Capability::InventoryRead`](crate::Capability::InventoryRead). Reads are
//! performed in dry runs too.

use serde_json::Value;

use crate::bindings::cordon::plugin::inventory as wit;
use crate::{Error, HostError};

/// The inventory record of one device (a JSON object with at least `id`),
/// or `None` if there is no such device.
pub fn device(device_id: &str) -> Result<Option<Value>, Error> {
    let Some(record) = wit::get(device_id).map_err(HostError::from)? else {
        return Ok(None);
    };
    let record: Value = serde_json::from_str(&record).map_err(|error| {
        Error::permanent(format!(
            "the inventory record of {device_id} is not JSON: {error}"
        ))
    })?;
    Ok(Some(record))
}

/// The ids of the devices matching `selector` (playbook selector grammar,
/// such as `tag=line-3,type!=gateway`; `*` for all), sorted.
pub fn select(selector: &str) -> Result<Vec<String>, HostError> {
    Ok(wit::select(selector)?)
}
