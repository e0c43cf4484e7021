//! The mails Cordon writes: pure functions from plain data to a [`Mail`],
//! with a plain-text body and, for the system's own mails, an HTML
//! alternative in which every interpolated value is escaped.
//!
//! Nothing here reads a clock or the configuration, so the same data
//! always gives the same mail (the snapshot tests rely on it).

mod approval;
mod html;
mod notify;
mod run_failed;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use approval::{approval_escalated, approval_reminder, approval_request};
pub use notify::notify_step;
pub use run_failed::run_failed;

#[cfg(doc)]
use crate::Mail;

/// What an approver must see to decide a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalMail {
    /// The approvers' addresses.
    pub to: Vec<String>,
    /// The run waiting at the gate.
    pub run_id: String,
    /// `name@version` of the run's playbook.
    pub playbook: String,
    /// The gate's step id.
    pub gate: String,
    /// The gate's question, rendered.
    pub message: String,
    /// Who started the run.
    pub initiator: String,
    /// How many distinct approvals the gate needs.
    pub min_approvals: u32,
    /// How many it has.
    pub approvals_so_far: u32,
    /// When the gate times out, if it does.
    pub deadline: Option<DateTime<Utc>>,
    /// What runs if the gate is approved: the steps downstream of it.
    pub plan: Vec<PlanLine>,
    /// The digest of that plan, which the decision is bound to.
    pub plan_digest: String,
    /// The one-time link to the confirmation page. Opening it decides
    /// nothing (mail scanners follow links); the page does.
    pub link: String,
}

/// One step of the plan an approver decides about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    /// The step id.
    pub step: String,
    /// What it does: `revoke-cert@1`, `notify`, `playbook x@1.0.0`.
    pub action: String,
    /// The devices it touches.
    pub devices: Vec<String>,
}

/// A run that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunFailedMail {
    /// Who is told.
    pub to: Vec<String>,
    /// The run.
    pub run_id: String,
    /// `name@version` of its playbook.
    pub playbook: String,
    /// Why the run failed.
    pub error: String,
    /// `(step, error)` for each failed step.
    pub failed_steps: Vec<(String, String)>,
    /// Where to see the run, if a web page serves it.
    pub run_url: Option<String>,
}

/// A playbook's own `notify:` step, its fields rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyMail {
    /// The rendered recipients.
    pub to: Vec<String>,
    /// The rendered subject; `[cordon]` is put in front of it.
    pub subject: String,
    /// The rendered body (plain text; may be empty).
    pub body: String,
    /// The run the step belongs to.
    pub run_id: String,
    /// The step key.
    pub step: String,
}

/// What every subject starts with, so people can filter Cordon's mail.
const SUBJECT_TAG: &str = "[cordon]";

/// A value on one line, for a subject: a control character (a line break
/// in a playbook name or run id would be header injection) becomes a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// How deadlines are written: absolute and in UTC, because the mail is
/// read later and anywhere.
fn format_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// At most this many devices are named per plan line; the confirmation
/// page lists them all (a fan-out can touch thousands).
const DEVICES_SHOWN: usize = 20;

/// The devices of a plan line as one phrase, shortened past
/// [`DEVICES_SHOWN`].
fn device_list(devices: &[String]) -> String {
    if devices.is_empty() {
        return "no devices".into();
    }
    let shown = devices
        .iter()
        .take(DEVICES_SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match devices.len().checked_sub(DEVICES_SHOWN) {
        Some(more) if more > 0 => format!("{shown} and {more} more"),
        _ => shown,
    }
}

/// Indents every line of `text` by `prefix`.
fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
