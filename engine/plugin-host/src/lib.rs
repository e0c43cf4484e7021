//! Cordon's plugin sandbox: the only crate that knows wasmtime.
//!
//! A plugin is a signed WebAssembly component implementing the
//! `cordon:plugin` contract (`plugins/wit/`). The [`Sandbox`] verifies it
//! (size, digest, pin, signature, release counter, expiry — before
//! compiling), compiles it once (cached on disk by digest and engine), checks
//! its imports against what the operator granted, asks it to `describe`
//! itself, and keeps a pre-linked instance. Each attempt then runs in a fresh
//! `Store` with memory, CPU, wall-clock and output limits, and every failure
//! becomes a typed [`cordon_runtime::attempt_state::AttemptError`].

mod bindings;
mod cache;
pub mod capability;
mod config;
mod connections;
mod descriptor;
mod error;
mod executor;
mod host;
mod inspect;
mod invoke;
mod limits;
mod load;
mod sandbox;
pub mod signing;

pub use cache::CacheOutcome;
pub use capability::{Capability, Effective};
pub use config::{Grants, Limits, SandboxConfig};
pub use connections::{
    ConnectionConfig, ConnectionHub, ConnectionsConfig, ConnectionsError, HttpTlsConfig,
    MqttTlsConfig, Secret,
};
pub use error::LoadError;
pub use executor::{AuditSink, PluginExecutor};
pub use host::{
    AttemptRecord, Connections, DeviceDirectory, HostFailure, HttpRequest, HttpResponse, Intent,
    LogEntry, MqttMessage, MqttQos, ScratchStore, Services,
};
pub use inspect::Inspection;
pub use invoke::{Invocation, Outcome};
pub use load::{LoadedPlugin, MemoryFloors, PluginFile, ReleaseFloors, signature_path};
pub use sandbox::{Sandbox, SetupError};
