//! Webhook and schedule bindings.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::playbook::{is_default, is_false};
use super::{Condition, PlaybookRef, Template};

/// How runs of this playbook start besides by hand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Alerts from configured monitoring sources that start a run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookBinding>,
    /// Cron schedules, typically continuity drills.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleBinding>,
}

impl Triggers {
    /// True when the playbook starts only by hand.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.schedules.is_empty()
    }
}

/// Binds a webhook source's alerts to this playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBinding {
    /// The name of a webhook source in the operator's configuration (`POST /hooks/<source>`).
    #[schemars(regex(pattern = super::patterns::NAME))]
    pub source: String,
    /// A CEL condition over each `alert`; only matching alerts start a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// The run's inputs, computed from the alert (`${{ alert.labels.device }}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Template>,
    /// Whether each firing alert starts its own run, or each alert group one run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub start: StartMode,
    /// A follow-up playbook started when the alert resolves (otherwise the resolution is only recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_resolved: Option<ResolvedAction>,
}

/// How alerts map to runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// One run per firing alert (deduplicated by fingerprint).
    #[default]
    PerAlert,
    /// One run per alert group (deduplicated by group key).
    PerGroup,
}

/// The playbook started when an alert resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolvedAction {
    /// The follow-up playbook, pinned to one version.
    pub playbook: PlaybookRef,
    /// Its inputs, computed from the resolved `alert`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Template>,
}

/// Starts runs on a cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBinding {
    /// A cron expression in the `cron` crate's syntax, seconds first (`0 0 3 * * Mon`).
    pub cron: String,
    /// The IANA time zone the expression is read in (`Europe/Berlin`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Runs in drill mode: only against designated drill devices, with recovery time measured.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drill: bool,
    /// The run's inputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// What to do about firings missed while Cordon was down.
    #[serde(default, skip_serializing_if = "is_default")]
    pub catch_up: CatchUp,
    /// The most missed firings run by `catch_up: all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_catch_up: Option<u32>,
}

/// What a schedule does about firings missed during downtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Skips them.
    #[default]
    Skip,
    /// Runs once for all of them.
    Once,
    /// Runs each of them, up to `max_catch_up`.
    All,
}
