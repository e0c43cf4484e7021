//! The top level of a playbook.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, InputSpec, Step, Template, Triggers};

/// A Cordon playbook: a named, versioned graph of steps that responds to an
/// incident or exercises a continuity plan (format `cordon: v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Cordon playbook")]
pub struct Playbook {
    /// The format of this document. Only `v1` exists.
    pub cordon: FormatVersion,
    /// The playbook's name, unique in a Cordon installation: lowercase letters, digits and `-`.
    #[schemars(regex(pattern = super::patterns::NAME))]
    pub name: String,
    /// The semantic version of this revision. A published version never changes.
    #[schemars(regex(pattern = super::patterns::SEMVER))]
    pub version: String,
    /// A one-line title shown to responders and approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the playbook is for and when to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form labels (`severity: high`) for search and routing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The typed inputs a run takes, by name (`inputs.<name>` in expressions).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputSpec>,
    /// How runs start besides by hand: monitoring webhooks and cron schedules.
    #[serde(default, skip_serializing_if = "Triggers::is_empty")]
    pub triggers: Triggers,
    /// The steps. They form a directed acyclic graph through `needs`.
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
    /// The longest a whole run may take before it is failed (and compensated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How many runs of this playbook may be active at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<RunConcurrency>,
    /// What happens when the run fails or is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<RunFailurePolicy>,
    /// The recovery objective measured when the playbook runs as a continuity drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillObjective>,
}

/// The playbook format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FormatVersion {
    /// The first (and current) format.
    #[serde(rename = "v1")]
    V1,
}

/// Limits on concurrent runs of one playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunConcurrency {
    /// The most runs active at once (per `key` when one is given).
    #[schemars(range(min = 1))]
    pub limit: u32,
    /// Groups runs: runs with the same key value count against one limit
    /// (`${{ inputs.device }}` keeps two runs off one device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Template>,
    /// What a run does when the limit is reached.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_conflict: ConflictPolicy,
}

/// What a run that exceeds the concurrency limit does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Waits in `queued` until a slot frees.
    #[default]
    Queue,
    /// Is refused at once.
    Reject,
}

/// What happens when a run fails or is cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFailurePolicy {
    /// Undo completed compensable steps, newest first (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub compensate: bool,
    /// Handler steps (declared with `handler: true`) to run after the run failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
}

/// The recovery-time objective a continuity drill is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillObjective {
    /// The recovery-time objective: the drill fails if recovery takes longer.
    pub rto: Duration,
    /// The step whose start begins the recovery clock (the first containment step).
    pub start: String,
    /// The step whose success stops the clock (the verified-healthy step).
    pub end: String,
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}
