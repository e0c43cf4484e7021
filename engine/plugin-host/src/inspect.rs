//! What an author's tools need: a component's digest, imports and
//! descriptor, without a signature (to sign it, or to show what it is).

use cordon_playbook::PluginDescriptor;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::sandbox::Sandbox;
use crate::signing;

/// What a component is, by its own account.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Every interface it imports, such as `cordon:plugin/mqtt@0.1.0`.
    pub imports: Vec<String>,
    /// Its `describe`.
    pub descriptor: PluginDescriptor,
}

impl Sandbox {
    /// Compiles a component and calls its `describe` (every Cordon import
    /// traps). For authors' tools only: nothing is verified, so only
    /// inspect components you are about to sign or already trust.
    pub async fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        let size = bytes.len() as u64;
        if size > self.config.max_component_bytes {
            return Err(LoadError::TooLarge {
                bytes: size,
                limit: self.config.max_component_bytes,
            });
        }
        let component = Component::from_binary(&self.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let (descriptor, _) = self.describe(&component).await?;
        Ok(Inspection {
            digest: signing::digest(bytes),
            size,
            imports,
            descriptor,
        })
    }
}
