//! `cordon:plugin/scratch`: per-run, per-plugin key/value state.

use cordon_runtime::executor::BoxFuture;

use crate::bindings::HostError;
use crate::bindings::scratch::Host;
use crate::capability::Interface;
use crate::host::HostState;

/// The largest value.
const VALUE_BYTES: usize = 64 << 10;

/// Durable scratch state, keyed by run, plugin and key.
pub trait ScratchStore: Send + Sync + std::fmt::Debug {
    /// The value under a key.
    fn get(
        &self,
        run: String,
        plugin: String,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, String>>;
    /// Stores a value (durable when the future resolves).
    fn set(
        &self,
        run: String,
        plugin: String,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<Result<(), String>>;
    /// Removes a key.
    fn delete(&self, run: String, plugin: String, key: String) -> BoxFuture<Result<(), String>>;
}

impl HostState {
    fn scratch(&mut self, key: &str) -> Result<std::sync::Arc<dyn ScratchStore>, HostError> {
        if !self
            .context
            .grants
            .interfaces()
            .contains(&Interface::Scratch)
        {
            return Err(self.deny("state:run is not granted".into()));
        }
        if key.is_empty() || key.len() > 256 {
            return Err(HostError::Invalid("a scratch key is 1 to 256 bytes".into()));
        }
        self.context
            .services
            .scratch
            .clone()
            .ok_or_else(|| HostError::Unavailable("this node has no scratch store".into()))
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, HostError>> {
        let store = match self.scratch(&key) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let (run, plugin) = (self.context.run.clone(), self.context.plugin.clone());
        Ok(store
            .get(run, plugin, key)
            .await
            .map_err(HostError::Unavailable))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        let store = match self.scratch(&key) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if value.len() > VALUE_BYTES {
            return Ok(Err(HostError::Invalid(format!(
                "a scratch value is at most {VALUE_BYTES} bytes"
            ))));
        }
        let (run, plugin) = (self.context.run.clone(), self.context.plugin.clone());
        Ok(store
            .set(run, plugin, key, value)
            .await
            .map_err(HostError::Unavailable))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), HostError>> {
        let store = match self.scratch(&key) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let (run, plugin) = (self.context.run.clone(), self.context.plugin.clone());
        Ok(store
            .delete(run, plugin, key)
            .await
            .map_err(HostError::Unavailable))
    }
}
