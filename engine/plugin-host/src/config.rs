//! What the operator configures: limits, the compiled-code cache, trusted
//! keys and, per plugin, the capabilities it is granted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::capability::Capability;
use crate::signing::TrustedKeys;

/// Limits on every call of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance.
    pub memory_bytes: u64,
    /// Wall-clock time of the whole call (instantiation, guest code and
    /// host calls).
    pub timeout: Duration,
    /// An instruction budget per call (`None`: no fuel metering).
    pub fuel: Option<u64>,
    /// The largest output (JSON text) a call may return.
    pub output_bytes: usize,
    /// The largest input passed to a call.
    pub input_bytes: usize,
    /// Log entries kept per attempt (the rest are counted and dropped).
    pub log_entries: usize,
    /// The largest log message kept (longer ones are cut).
    pub log_entry_bytes: usize,
    /// Intents kept per attempt; past it, `declare` fails with `invalid`.
    pub intents: usize,
    /// What a plugin's stderr may hold (a panic message lands there).
    pub stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
            fuel: None,
            output_bytes: 1 << 20,
            input_bytes: 1 << 20,
            log_entries: 1000,
            log_entry_bytes: 4096,
            intents: 1000,
            stderr_bytes: 4096,
        }
    }
}

/// Capabilities the operator grants, per plugin name. A plugin gets the
/// intersection of these and what it declares; nothing is granted by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    by_plugin: BTreeMap<String, BTreeSet<Capability>>,
}

impl Grants {
    /// No grants at all.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// Grants `capability` to `plugin` (builder style).
    pub fn grant(mut self, plugin: &str, capability: Capability) -> Grants {
        self.by_plugin
            .entry(plugin.to_string())
            .or_default()
            .insert(capability);
        self
    }

    /// What `plugin` is granted.
    pub fn of(&self, plugin: &str) -> BTreeSet<Capability> {
        self.by_plugin.get(plugin).cloned().unwrap_or_default()
    }
}

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Limits on every call.
    pub limits: Limits,
    /// Where compiled components are cached (`None`: compile every time).
    /// Must be a directory only the host can write.
    pub cache_dir: Option<PathBuf>,
    /// The largest component file accepted (checked before hashing).
    pub max_component_bytes: u64,
    /// How many instances may exist at once (the pooling allocator's size).
    pub max_instances: u32,
    /// How often the epoch ticks (the granularity of CPU deadlines).
    pub epoch_tick: Duration,
    /// The keys whose plugin signatures are accepted.
    pub trusted_keys: TrustedKeys,
    /// What each plugin is granted.
    pub grants: Grants,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            limits: Limits::default(),
            cache_dir: None,
            max_component_bytes: 16 << 20,
            max_instances: 64,
            epoch_tick: Duration::from_millis(10),
            trusted_keys: TrustedKeys::default(),
            grants: Grants::none(),
        }
    }
}
