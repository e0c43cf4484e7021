//! The Cordon playbook language: the model (SPEC §3.1), a YAML reader that
//! keeps every position, and a validator that reports every problem in one
//! pass with a stable code, a position and a hint (SPEC §3.2).
//!
//! This crate does no IO and knows nothing of async, storage or HTTP: it
//! takes bytes and a [`Context`] (the plugin catalog and known playbooks)
//! and returns [`Diagnostic`]s and, when valid, a [`ValidPlaybook`].

pub mod catalog;
pub mod codes;
pub mod diagnostic;
pub mod diff;
pub mod expr;
pub mod inputs;
pub mod model;
pub mod schema;
mod validate;
pub mod yaml;

pub use catalog::{CatalogError, PlaybookIndex, PluginCatalog, PluginDescriptor};
pub use codes::{Code, Severity};
pub use diagnostic::Diagnostic;
pub use model::Playbook;
pub use validate::{Context, ValidPlaybook, Validation, validate};
