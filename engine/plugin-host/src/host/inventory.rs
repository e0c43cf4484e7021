//! `cordon:plugin/inventory`: read-only device records.

use cordon_runtime::executor::BoxFuture;

use crate::bindings::HostError;
use crate::bindings::inventory::Host;
use crate::capability::Interface;
use crate::host::HostState;

/// The largest selection returned to a plugin.
const MAX_SELECTED: usize = 100_000;

/// Where device records come from.
pub trait DeviceDirectory: Send + Sync + std::fmt::Debug {
    /// One device's record as a JSON object, without credentials.
    fn get(&self, id: String) -> BoxFuture<Result<Option<serde_json::Value>, String>>;
    /// The ids matching a selector, sorted; `Err` names a bad selector.
    fn select(&self, selector: String) -> BoxFuture<Result<Result<Vec<String>, String>, String>>;
}

impl HostState {
    fn directory(&mut self) -> Result<std::sync::Arc<dyn DeviceDirectory>, HostError> {
        if !self
            .context
            .grants
            .interfaces()
            .contains(&Interface::Inventory)
        {
            return Err(self.deny("inventory:read is not granted".into()));
        }
        self.context
            .services
            .inventory
            .clone()
            .ok_or_else(|| HostError::Unavailable("this node has no inventory".into()))
    }
}

impl Host for HostState {
    async fn get(
        &mut self,
        device_id: String,
    ) -> wasmtime::Result<Result<Option<String>, HostError>> {
        let directory = match self.directory() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match directory.get(device_id).await {
            Ok(record) => Ok(record.map(|r| r.to_string())),
            Err(e) => Err(HostError::Unavailable(e)),
        })
    }

    async fn select(
        &mut self,
        selector: String,
    ) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        let directory = match self.directory() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match directory.select(selector).await {
            Ok(Ok(ids)) if ids.len() > MAX_SELECTED => Err(HostError::Invalid(format!(
                "selection over {MAX_SELECTED} devices"
            ))),
            Ok(Ok(ids)) => Ok(ids),
            Ok(Err(bad)) => Err(HostError::Invalid(bad)),
            Err(e) => Err(HostError::Unavailable(e)),
        })
    }
}
