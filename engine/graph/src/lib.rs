//! Compiles a validated playbook into an immutable [`ExecutionPlan`] and
//! renders it as Mermaid or Graphviz DOT.
//!
//! petgraph is an implementation detail of this crate: the plan exposes
//! steps, stages and gate scopes as plain data, so the run engine and the
//! approval screens never depend on a graph library.

mod compile;
mod plan;
mod render;

pub use compile::compile;
pub use plan::{ExecutionPlan, FanOut, GateInfo, PlanNode, PlanStepKind};
pub use render::{to_dot, to_mermaid};
