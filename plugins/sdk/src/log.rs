//! Structured logging into the run's record (WIT interface `log`). Needs no
//! capability. The host sanitises entries and bounds their size and number;
//! logging never fails.
//!
//! ```no_run
//! cordon_plugin_sdk::log::info("role assigned", &[("device", "plc-7"), ("role", "quarantine")]);
//! ```

use crate::bindings::cordon::plugin::log as wit;

/// How much an entry matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail, normally not kept.
    Trace,
    /// Detail for someone debugging the plugin.
    Debug,
    /// A normal event worth keeping.
    Info,
    /// Something unexpected that the plugin worked around.
    Warn,
    /// A failure.
    Error,
}

/// Appends an entry with `fields` (key/value pairs, keys short and
/// lowercase) to the attempt's log.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    let fields: Vec<wit::Field> = fields
        .iter()
        .map(|&(key, value)| wit::Field {
            key: key.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    wit::write(level, message, &fields);
}

/// [`write`] at [`Level::Trace`].
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    write(Level::Trace, message, fields);
}

/// [`write`] at [`Level::Debug`].
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

/// [`write`] at [`Level::Info`].
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// [`write`] at [`Level::Warn`].
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// [`write`] at [`Level::Error`].
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}
