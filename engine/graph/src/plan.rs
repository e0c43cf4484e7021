//! The execution plan: what the run engine schedules.

use std::collections::BTreeMap;

use serde::Serialize;

/// A compiled playbook: its steps in a topological order, grouped into
/// stages that can run in parallel, with gates and fan-outs made explicit.
/// Built only by [`crate::compile`]; immutable afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionPlan {
    pub(crate) playbook: String,
    pub(crate) version: String,
    pub(crate) nodes: Vec<PlanNode>,
    pub(crate) stages: Vec<Vec<String>>,
    pub(crate) handlers: Vec<String>,
    pub(crate) gates: BTreeMap<String, GateInfo>,
    pub(crate) timeout: Option<String>,
    pub(crate) compensate: bool,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanNode {
    /// The step id.
    pub id: String,
    /// What the step does.
    pub kind: PlanStepKind,
    /// The steps it waits for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// The stage (0-based) it belongs to: 1 + the latest stage among `needs`.
    pub stage: usize,
    /// Its `if:` condition, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The fan-out, if it runs once per item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
    /// Its effect cannot be undone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
    /// It is undone (compensated) when the run fails or is cancelled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compensable: bool,
    /// The approval gates upstream of it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guarded_by: Vec<String>,
    /// It runs only on failure, when an `on_failure.handlers` list names it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub handler: bool,
}

/// The kinds of step, with what the engine needs of each.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanStepKind {
    /// A plugin action.
    Action {
        /// `name@major`.
        plugin: String,
        /// The exact plugin version the catalog resolved.
        version: String,
    },
    /// A human approval gate.
    Approval {
        /// Approvals needed.
        min: u32,
        /// Who may approve, as `users:`, `groups:`, `roles:` lists.
        approvers: Vec<String>,
    },
    /// A sub-playbook.
    Playbook {
        /// `name@version`.
        reference: String,
    },
    /// A durable timer or condition poll.
    Wait {
        /// `30s`, or `until <condition>`.
        what: String,
    },
    /// An email.
    Notify {
        /// Recipients.
        to: Vec<String>,
    },
}

/// How a fan-out step rolls out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FanOut {
    /// The items, as written (a list or an expression).
    pub items: String,
    /// Items in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Cumulative wave sizes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<String>,
    /// Failures that abort the rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<String>,
    /// Pause between waves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
}

/// What an approval gate decides about: the exact plan an approver sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateInfo {
    /// Every step downstream of the gate, in plan order.
    pub downstream: Vec<String>,
    /// The irreversible steps among them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub irreversible: Vec<String>,
}

impl ExecutionPlan {
    /// The playbook's name.
    pub fn playbook(&self) -> &str {
        &self.playbook
    }

    /// The playbook's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every step in a topological order (ties keep document order); handlers are flagged.
    pub fn nodes(&self) -> &[PlanNode] {
        &self.nodes
    }

    /// A step by id (handlers included).
    pub fn node(&self, id: &str) -> Option<&PlanNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Stages: each holds steps whose needs all sit in earlier stages, so a
    /// stage's steps can run in parallel.
    pub fn stages(&self) -> &[Vec<String>] {
        &self.stages
    }

    /// The failure-handler steps.
    pub fn handlers(&self) -> &[String] {
        &self.handlers
    }

    /// The approval gates with what each one decides about.
    pub fn gates(&self) -> &BTreeMap<String, GateInfo> {
        &self.gates
    }

    /// The run-level timeout, as written.
    pub fn timeout(&self) -> Option<&str> {
        self.timeout.as_deref()
    }

    /// Whether completed compensable steps are undone when the run fails or is cancelled.
    pub fn compensates(&self) -> bool {
        self.compensate
    }
}
