//! `cordon:plugin/log`: entries go to the attempt's record (bounded) and to
//! the node's tracing output, tagged with the plugin and run.

use crate::bindings::log::{Field, Host, Level};
use crate::host::{HostState, LogEntry, sanitise};

impl Host for HostState {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<Field>,
    ) -> wasmtime::Result<()> {
        let limits = &self.context.limits;
        if self.record.logs.len() >= limits.log_entries {
            self.record.logs_dropped += 1;
            return Ok(());
        }
        let max = limits.log_entry_bytes;
        let entry = LogEntry {
            level: match level {
                Level::Trace => "trace",
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            },
            message: sanitise(&message, max),
            fields: fields
                .iter()
                .take(16)
                .map(|f| (sanitise(&f.key, 64), sanitise(&f.value, max)))
                .collect(),
        };
        let (plugin, run) = (&self.context.plugin, &self.context.run);
        match level {
            Level::Error => {
                tracing::error!(%plugin, %run, fields = ?entry.fields, "{}", entry.message)
            }
            Level::Warn => {
                tracing::warn!(%plugin, %run, fields = ?entry.fields, "{}", entry.message)
            }
            Level::Info => {
                tracing::info!(%plugin, %run, fields = ?entry.fields, "{}", entry.message)
            }
            Level::Debug => {
                tracing::debug!(%plugin, %run, fields = ?entry.fields, "{}", entry.message)
            }
            Level::Trace => {
                tracing::trace!(%plugin, %run, fields = ?entry.fields, "{}", entry.message)
            }
        }
        self.record.logs.push(entry);
        Ok(())
    }
}
