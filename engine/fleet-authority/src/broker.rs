//! Asking Mosquitto to re-read its CRL.
//!
//! Mosquitto reads `crlfile` at start-up and again only on SIGHUP, and then
//! only for new connections. The broker's PID comes from a file (its
//! supervisor or the test writes it), re-read on every reload because the
//! broker may have been restarted since the authority started.

use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Why the broker could not be asked to reload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The PID file is missing or does not hold a PID.
    #[error("broker PID file {path}: {message}")]
    PidFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The signal could not be delivered (no such process, no permission).
    #[error("cannot send SIGHUP to broker PID {pid}: {message}")]
    Signal {
        /// The PID.
        pid: i32,
        /// The error.
        message: String,
    },
}

/// Reads the broker's PID from `pid_file`.
pub fn read_pid(pid_file: &Path) -> Result<i32, ReloadError> {
    let err = |message: String| ReloadError::PidFile {
        path: pid_file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(pid_file).map_err(|e| err(e.to_string()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| err(format!("`{}` is not a PID", text.trim())))?;
    // 0, 1 and negative PIDs would signal a process group or init.
    if pid <= 1 {
        return Err(err(format!("refusing to signal PID {pid}")));
    }
    Ok(pid)
}

/// Sends SIGHUP to the broker. Returns its PID.
pub fn reload(pid_file: &Path) -> Result<i32, ReloadError> {
    let pid = read_pid(pid_file)?;
    kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| ReloadError::Signal {
        pid,
        message: e.to_string(),
    })?;
    Ok(pid)
}
