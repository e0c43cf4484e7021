//! The playbook model: Rust types for every field of SPEC §3 / §3.1.
//!
//! These types are the single source of truth for the playbook format:
//! `schemas/playbook.schema.json` is generated from them (with the doc
//! comments as descriptions), and every later stage — the graph compiler, the
//! run engine — reads playbooks through them. All structs refuse unknown
//! fields. Values that hold an expression are plain strings here; the
//! validator parses them.

mod approval;
mod input;
mod playbook;
mod policy;
mod scalars;
mod step;
mod trigger;

pub use approval::{Approval, Approvers, Escalation, OnTimeout};
pub use input::{InputSpec, InputType};
pub use playbook::{
    ConflictPolicy, DrillObjective, FormatVersion, Playbook, RunConcurrency, RunFailurePolicy,
};
pub use policy::{Amount, Compensation, Foreach, ForeachItems, Retry, StepFailurePolicy};
pub use scalars::{Condition, Duration, PlaybookRef, PluginRef, Template};
pub use step::{ApprovalWaiver, Notify, Step, StepKind, Wait, WaitUntil};
pub use trigger::{CatchUp, ResolvedAction, ScheduleBinding, StartMode, Triggers, WebhookBinding};

/// Patterns shared by the schema and the validator, with the words used to
/// explain them when a value does not match.
pub mod patterns {
    /// A playbook or webhook-source name: lowercase words joined by `-`.
    pub const NAME: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
    /// A step id.
    pub const STEP_ID: &str = "^[a-z][a-z0-9_-]{0,62}$";
    /// An input name, usable as a CEL identifier (`inputs.device`).
    pub const INPUT_NAME: &str = "^[a-z_][a-z0-9_]{0,62}$";
    /// A duration: `500ms`, `30s`, `5m`, `2h`, `1d`.
    pub const DURATION: &str = "^[0-9]{1,9}(ms|s|m|h|d)$";
    /// A percentage of a fan-out: `10%`.
    pub const PERCENT: &str = "^(100|[1-9]?[0-9])%$";
    /// A plugin reference: `name@major`.
    pub const PLUGIN_REF: &str = "^[a-z][a-z0-9-]{0,62}@(0|[1-9][0-9]{0,5})$";
    /// A sub-playbook reference: `name@semver`.
    pub const PLAYBOOK_REF: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?@[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$";
    /// A semantic version.
    pub const SEMVER: &str = "^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$";

    /// What a pattern means, in words a responder understands.
    pub fn describe(pattern: &str) -> Option<&'static str> {
        Some(match pattern {
            NAME => {
                "a name of lowercase letters, digits and `-` (not at either end), at most 63 characters"
            }
            STEP_ID => {
                "an id that starts with a lowercase letter, followed by lowercase letters, digits, `-` or `_`"
            }
            INPUT_NAME => {
                "an input name of lowercase letters, digits and `_`, not starting with a digit"
            }
            DURATION => "a duration such as `500ms`, `30s`, `5m`, `2h` or `1d`",
            PERCENT => "a percentage from `0%` to `100%`",
            PLUGIN_REF => "a plugin reference `name@major`, such as `isolate@1`",
            PLAYBOOK_REF => "a playbook reference `name@version`, such as `restore-device@1.0.0`",
            SEMVER => "a semantic version such as `1.2.0`",
            _ => return None,
        })
    }
}
