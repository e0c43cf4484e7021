//! The host side of the contract: the state of one attempt's `Store`, and
//! the implementation of every host interface a plugin may import.
//!
//! Every function here treats its arguments as hostile: sizes are bounded,
//! connection names are checked against the effective grants, and in a dry
//! run nothing with a side effect is performed.

mod connections;
mod http;
mod intent;
mod inventory;
mod log;
mod mqtt;
mod scratch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use connections::{Connections, HostFailure, HttpRequest, HttpResponse, MqttMessage, MqttQos};
pub use inventory::DeviceDirectory;
pub use scratch::ScratchStore;

use crate::bindings::HostError;
use crate::capability::Effective;
use crate::config::Limits;
use crate::limits::AttemptLimiter;

/// What the host interfaces reach: each is optional, and a plugin granted a
/// capability whose service is missing gets `unavailable`.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Device records (`inventory`).
    pub inventory: Option<Arc<dyn DeviceDirectory>>,
    /// Per-run scratch state (`scratch`).
    pub scratch: Option<Arc<dyn ScratchStore>>,
    /// Named MQTT and HTTP connections (`mqtt`, `http`).
    pub connections: Option<Arc<dyn Connections>>,
}

/// One log entry a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// `trace` … `error`.
    pub level: &'static str,
    /// The message, control characters removed, cut to the limit.
    pub message: String,
    /// Key/value pairs, sanitised likewise.
    pub fields: Vec<(String, String)>,
}

/// A side effect a plugin declared (or the host recorded in a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intent {
    /// Such as `broker.quarantine` or `mqtt.publish`.
    pub kind: String,
    /// What it acts on.
    pub target: String,
    /// Parameters that matter to a reviewer.
    pub detail: serde_json::Value,
    /// Recorded by the host because it refused a call in a dry run (rather
    /// than declared by the plugin).
    pub by_host: bool,
}

/// What one attempt left behind besides its output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// Its log entries, in order.
    pub logs: Vec<LogEntry>,
    /// Entries dropped past the per-attempt bound.
    pub logs_dropped: u64,
    /// Its intents, in order.
    pub intents: Vec<Intent>,
    /// The first call the sandbox refused: a denial ends the attempt with
    /// `denied` whatever the plugin returns afterwards.
    pub denied: Option<String>,
    /// What the plugin wrote to stderr (a panic message), sanitised.
    pub stderr: String,
}

/// Who is calling: the context of this attempt.
#[derive(Debug, Clone)]
pub(crate) struct AttemptContext {
    pub(crate) plugin: String,
    pub(crate) run: String,
    pub(crate) dry_run: bool,
    pub(crate) deadline: Instant,
    pub(crate) grants: Effective,
    pub(crate) services: Services,
    pub(crate) limits: Limits,
}

/// The data of one attempt's `Store`.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: AttemptLimiter,
    /// The plugin's stderr (a panic message lands there), bounded.
    pub(crate) stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    pub(crate) context: AttemptContext,
    pub(crate) record: AttemptRecord,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::bindings::types::Host for HostState {}

impl HostState {
    /// Refuses a call: records the (sticky) denial and answers `denied`.
    pub(crate) fn deny(&mut self, why: String) -> HostError {
        tracing::warn!(plugin = %self.context.plugin, run = %self.context.run, "sandbox denied: {why}");
        if self.record.denied.is_none() {
            self.record.denied = Some(why.clone());
        }
        HostError::Denied(why)
    }

    /// In a dry run, records what the call would have done and answers
    /// `dry-run`; otherwise `None`.
    pub(crate) fn dry_run(
        &mut self,
        kind: &str,
        target: String,
        detail: serde_json::Value,
    ) -> Option<HostError> {
        if !self.context.dry_run {
            return None;
        }
        let message = format!("dry run: {kind} {target} not performed");
        self.record.intents.push(Intent {
            kind: kind.to_string(),
            target,
            detail,
            by_host: true,
        });
        Some(HostError::DryRun(message))
    }

    /// The time a host call may take: what it asks for, at most what is
    /// left of the attempt.
    pub(crate) fn budget(&self, asked: Option<Duration>) -> Duration {
        let left = self
            .context
            .deadline
            .saturating_duration_since(Instant::now());
        asked.map_or(left, |asked| asked.min(left))
    }
}

/// Text a plugin hands the host, made safe for logs and consoles: control
/// characters (terminal escapes, newlines that would forge log lines)
/// become spaces, and it is cut at `max` bytes on a character boundary.
pub(crate) fn sanitise(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

impl From<HostFailure> for HostError {
    fn from(failure: HostFailure) -> HostError {
        match failure {
            HostFailure::Unavailable(m) => HostError::Unavailable(m),
            HostFailure::Timeout(m) => HostError::Timeout(m),
            HostFailure::Invalid(m) => HostError::Invalid(m),
            HostFailure::Rejected(m) => HostError::Rejected(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise;

    #[test]
    fn sanitising_removes_control_characters_and_bounds_length() {
        assert_eq!(sanitise("a\nb\x1b[31mc", 100), "a b [31mc");
        assert_eq!(sanitise("ééé", 4), "éé…");
    }
}
