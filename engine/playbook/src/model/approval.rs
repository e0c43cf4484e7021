//! Human approval gates (SPEC §7).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::playbook::{is_default, is_false};
use super::{Duration, InputSpec, Template};

/// A gate: the run waits here until enough people approve, anyone denies, or the timeout passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who may decide.
    pub approvers: Approvers,
    /// How many approvals from distinct people open the gate (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 20))]
    pub min: u32,
    /// How long the gate waits for a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// What happens when the timeout passes without a decision.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_timeout: OnTimeout,
    /// Who decides after `on_timeout: escalate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalation>,
    /// The question put to approvers; may embed `${{ … }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Template>,
    /// Lets the person who started the run approve it (default `false`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_initiator: bool,
    /// Every decision must carry a comment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_comment: bool,
    /// Structured input the approver fills in (`steps.<gate>.outputs.<name>` downstream).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input: BTreeMap<String, InputSpec>,
    /// Reminds approvers this often while the gate waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<Duration>,
}

/// People who may decide, by user, group or role. Anyone matching any list counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// User names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Group names from the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Role names from the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Approvers {
    /// True when nobody could ever decide.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.roles.is_empty()
    }
}

/// What a gate does when its timeout passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The gate is rejected and the run fails (and compensates).
    #[default]
    Reject,
    /// The gate opens without a human decision. Never protects an irreversible step.
    Approve,
    /// The decision passes to the `escalate` approvers, with a new timeout.
    Escalate,
}

/// The second line of approvers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Who decides after the escalation.
    pub approvers: Approvers,
    /// How long they have; when it passes, the gate is rejected.
    pub timeout: Duration,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}
