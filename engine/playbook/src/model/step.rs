//! Steps: the nodes of a playbook's graph.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::playbook::is_false;
use super::{
    Approval, Compensation, Condition, Duration, Foreach, PlaybookRef, PluginRef, Retry,
    StepFailurePolicy, Template,
};

/// One step. It has a unique `id` and exactly one of `uses` (a plugin
/// action), `approval` (a human gate), `playbook` (a sub-playbook), `wait`
/// (a durable timer or poll) or `notify` (an email).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's id, unique in the playbook (`steps.<id>` in expressions).
    #[schemars(regex(pattern = super::patterns::STEP_ID))]
    pub id: String,
    /// A short human name for the step, shown in progress views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The steps that must succeed before this one starts. A step without `needs` is a root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// A CEL condition; when false the step is skipped (and so are the steps that need it).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Runs the step once per item of a list or inventory selection, in waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<Foreach>,
    /// The plugin action this step runs, `name@major`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<PluginRef>,
    /// The inputs of the plugin action or sub-playbook; values may embed `${{ … }}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, Value>,
    /// Makes this step a human approval gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Runs another playbook, pinned to an exact version, as this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<PlaybookRef>,
    /// A durable timer (`30s`) or a poll until a condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// Sends an email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// Retries failed attempts whose error is transient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// The longest one attempt may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// What happens when this step fails for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<StepFailurePolicy>,
    /// How this step is undone when the run fails or is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<Compensation>,
    /// Marks a failure handler: it is not part of the normal graph and runs
    /// only when an `on_failure.handlers` list names it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub handler: bool,
    /// Lets an irreversible action run without an approval gate upstream; the reason is audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waive_approval: Option<ApprovalWaiver>,
}

/// What a step does, once the validator has checked that exactly one kind is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepKind<'a> {
    /// Runs a plugin action.
    Action(&'a PluginRef),
    /// Waits for people to approve.
    Approval(&'a Approval),
    /// Runs a sub-playbook.
    Playbook(&'a PlaybookRef),
    /// Waits for a time or a condition.
    Wait(&'a Wait),
    /// Sends an email.
    Notify(&'a Notify),
}

impl Step {
    /// The kinds this step declares (a valid step declares exactly one).
    pub fn kinds(&self) -> Vec<StepKind<'_>> {
        let mut kinds = Vec::with_capacity(1);
        if let Some(uses) = &self.uses {
            kinds.push(StepKind::Action(uses));
        }
        if let Some(approval) = &self.approval {
            kinds.push(StepKind::Approval(approval));
        }
        if let Some(playbook) = &self.playbook {
            kinds.push(StepKind::Playbook(playbook));
        }
        if let Some(wait) = &self.wait {
            kinds.push(StepKind::Wait(wait));
        }
        if let Some(notify) = &self.notify {
            kinds.push(StepKind::Notify(notify));
        }
        kinds
    }

    /// The step's single kind, when it has exactly one.
    pub fn kind(&self) -> Option<StepKind<'_>> {
        match self.kinds().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

impl StepKind<'_> {
    /// The field that declares this kind.
    pub fn field(&self) -> &'static str {
        match self {
            StepKind::Action(_) => "uses",
            StepKind::Approval(_) => "approval",
            StepKind::Playbook(_) => "playbook",
            StepKind::Wait(_) => "wait",
            StepKind::Notify(_) => "notify",
        }
    }
}

/// A `wait` step: a fixed durable timer, or a poll until a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Wait {
    /// Waits this long; a restart does not reset the timer.
    For(Duration),
    /// Polls a condition.
    Until(WaitUntil),
}

/// Polls a CEL condition until it holds or the timeout passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    /// The condition that ends the wait.
    pub until: Condition,
    /// How often the condition is evaluated.
    pub every: Duration,
    /// When the step fails if the condition never held.
    pub timeout: Duration,
}

/// A `notify` step: an email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Recipients: email addresses, or `group:<name>` / `role:<name>` from the configuration.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// The subject line; may embed `${{ … }}`.
    pub subject: Template,
    /// The body text; may embed `${{ … }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
}

/// An explicit, audited decision to run an irreversible action without an approval gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalWaiver {
    /// Why no human approval is needed (a change ticket, a standing order).
    #[schemars(length(min = 10))]
    pub reason: String,
}
