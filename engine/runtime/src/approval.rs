//! Human approval gates (SPEC §7): who may decide, what a decision must
//! carry, and why one is refused. The engine applies decisions
//! ([`crate::Engine::decide_approval`]); this module holds the rules.

use std::collections::BTreeMap;

use cordon_playbook::model::Approvers;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EngineError;

/// A person deciding, as the server's directory knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The user name.
    pub user: String,
    /// The groups they belong to.
    pub groups: Vec<String>,
    /// Their roles (API roles and the custom roles playbooks name).
    pub roles: Vec<String>,
}

impl Person {
    /// Whether `approvers` names this person, one of their groups or roles.
    pub fn is_named_by(&self, approvers: &Approvers) -> bool {
        approvers.users.contains(&self.user)
            || self.groups.iter().any(|g| approvers.groups.contains(g))
            || self.roles.iter().any(|r| approvers.roles.contains(r))
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let the run go on (counts towards `min`).
    Approve,
    /// Stop it: any deny rejects the gate.
    Deny,
}

impl Verdict {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

/// One decision as a channel (API, CLI, web page, mailed link) submits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ballot {
    /// The approval request.
    pub request: String,
    /// Approve or deny.
    pub verdict: Verdict,
    /// The comment (required where the gate says so).
    pub comment: Option<String>,
    /// Structured input the gate asks for (approvals only).
    pub input: BTreeMap<String, Value>,
    /// The plan digest the person was shown: a decision counts only for
    /// the plan it was made on.
    pub plan_digest: String,
    /// `api`, `cli`, `web` or `email`.
    pub channel: String,
    /// The one-time mailed link this decision spends, if it came by one.
    pub link: Option<String>,
}

/// Where a request stands after a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// Distinct approvals on the current plan.
    pub approvals: u32,
    /// Needed.
    pub min: u32,
}

/// Why a decision was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No such request.
    #[error("no approval request `{0}`")]
    NotFound(String),
    /// The request was already approved, rejected, expired or cancelled.
    #[error("the approval request is {status}: nothing more can be decided")]
    Closed {
        /// Its status.
        status: String,
    },
    /// The plan changed since the person saw it; earlier approvals no longer count.
    #[error(
        "the plan behind this gate changed (now {current}); review the new plan and decide again"
    )]
    PlanChanged {
        /// The digest of the plan as it is now.
        current: String,
    },
    /// The person is not among the gate's approvers (now: after an escalation, the new ones).
    #[error("{user} is not an approver of this gate")]
    NotAnApprover {
        /// Who tried.
        user: String,
    },
    /// The person started the run and the gate does not allow self-approval.
    #[error(
        "{user} started this run and cannot approve it (the gate does not set allow_initiator)"
    )]
    SelfApproval {
        /// Who tried.
        user: String,
    },
    /// The person already decided on this plan.
    #[error("{user} already decided on this plan")]
    AlreadyDecided {
        /// Who tried.
        user: String,
    },
    /// The gate requires a comment.
    #[error("this gate requires a comment with every decision")]
    CommentRequired,
    /// The structured input does not match the gate's declaration.
    #[error("invalid approval input: {0}")]
    InvalidInput(String),
    /// The mailed link is spent, expired or not this person's.
    #[error("this approval link is spent or expired; ask for a new one or decide on the web page")]
    LinkSpent,
    /// Storage or the run failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ApprovalError {
    /// The stable code the API and CLI report.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::NotFound(_) => "approval_not_found",
            ApprovalError::Closed { .. } => "approval_closed",
            ApprovalError::PlanChanged { .. } => "plan_changed",
            ApprovalError::NotAnApprover { .. } => "not_an_approver",
            ApprovalError::SelfApproval { .. } => "self_approval",
            ApprovalError::AlreadyDecided { .. } => "already_decided",
            ApprovalError::CommentRequired => "comment_required",
            ApprovalError::InvalidInput(_) => "invalid_input",
            ApprovalError::LinkSpent => "link_spent",
            ApprovalError::Engine(_) => "internal",
        }
    }
}

impl From<cordon_storage::StorageError> for ApprovalError {
    fn from(e: cordon_storage::StorageError) -> Self {
        ApprovalError::Engine(e.into())
    }
}

/// Structured input given as text (a web form's fields, `--input k=v` on
/// the command line), each value read as the type the gate declares
/// (`spec` is the request's input declaration). Names the gate does not
/// declare stay text: the engine refuses them with the other problems.
pub fn typed_input(spec: &Value, text: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let specs: BTreeMap<String, cordon_playbook::model::InputSpec> =
        serde_json::from_value(spec.clone()).unwrap_or_default();
    text.iter()
        .map(|(name, value)| {
            let typed = specs.get(name).map_or_else(
                || Value::String(value.clone()),
                |s| cordon_playbook::inputs::parse_text(s.kind, value),
            );
            (name.clone(), typed)
        })
        .collect()
}
