//! The stable diagnostic codes.
//!
//! A code is never reused or renumbered: tools and runbooks match on them.
//! `docs/errors.md` is generated from this table (`cordon errors --markdown`)
//! and a test fails when the committed page is stale.

use std::fmt;

use serde::{Serialize, Serializer};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The playbook cannot be published or run.
    Error,
    /// The playbook is valid but probably not what its author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $title:literal, $explain:literal, $hint:literal; )*) => {
        /// A stable diagnostic code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $title]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as printed: a letter for the family and three digits.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity diagnostics with this code carry.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// A short title.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }

            /// What the code means and why Cordon refuses (or warns about) it.
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $explain,)* }
            }

            /// The default hint, used when a check has nothing more specific to say.
            pub fn hint(self) -> &'static str {
                match self { $(Code::$variant => $hint,)* }
            }
        }
    };
}

codes! {
    // P: reading the file.
    YamlSyntax = "P001", Error, "YAML syntax error",
        "The file is not well-formed YAML, so nothing else in it can be checked.",
        "fix the YAML syntax at this position (indentation, quotes, `:` followed by a space)";
    EmptyFile = "P002", Error, "empty playbook",
        "The file holds no YAML document (it is empty or only comments).",
        "start the file with `cordon: v1`, a `name`, a `version` and a list of `steps`";
    NotAMapping = "P003", Error, "playbook is not a mapping",
        "A playbook is a YAML mapping of fields (`cordon`, `name`, `steps`, …); this file holds a list or a single value.",
        "write the playbook as `key: value` lines starting with `cordon: v1`";
    FileTooLarge = "P004", Error, "file too large",
        "Playbooks larger than 1 MiB are refused before they are parsed, so a hostile file cannot exhaust memory.",
        "split the playbook into sub-playbooks (`playbook: name@version`)";
    NestingTooDeep = "P005", Error, "nesting too deep",
        "Sequences and mappings may nest at most 64 levels; deeper documents are refused to protect the parser.",
        "flatten the structure; no playbook field needs this depth";
    DuplicateKey = "P006", Error, "duplicate key",
        "A mapping repeats a key. YAML forbids it and silently keeping one value would hide a mistake.",
        "remove one of the two entries or rename it";
    UnsupportedYaml = "P007", Error, "unsupported YAML feature",
        "The file uses a YAML feature playbooks do not accept: custom tags, complex keys, or a core tag whose value does not parse.",
        "use plain values; quote strings instead of tagging them";
    MultipleDocuments = "P008", Error, "more than one document",
        "A playbook file holds exactly one YAML document; a second `---` starts another that would be ignored.",
        "put each playbook in its own file";
    NotUtf8 = "P009", Error, "not UTF-8",
        "Playbooks are UTF-8 text; this file holds bytes that are not.",
        "re-save the file as UTF-8";
    TooManyNodes = "P010", Error, "document too large after aliases",
        "Anchors and aliases expand to more than 200,000 nodes; the file is refused to protect memory (a \"billion laughs\" document).",
        "use fewer aliases, or sub-playbooks";

    // S: the JSON Schema (`schemas/playbook.schema.json`).
    UnknownField = "S101", Error, "unknown field",
        "The field is not part of the playbook format at this place. Unknown fields are refused so that a typo never silently disables a setting.",
        "check the spelling against `cordon schema`";
    MissingField = "S102", Error, "missing required field",
        "A field the format requires at this place is absent.",
        "add the field";
    WrongType = "S103", Error, "wrong type",
        "The value has the wrong type (for example a list where a mapping is expected).",
        "change the value to the expected type";
    InvalidChoice = "S104", Error, "value not among the allowed choices",
        "The field accepts only a fixed set of values.",
        "use one of the listed values";
    InvalidFormat = "S105", Error, "value has the wrong format",
        "The value is a string of the right type but does not have the required form (a duration, an id, a reference…).",
        "write the value in the form described in the message";
    OutOfRange = "S106", Error, "value out of range",
        "The number, string or list is smaller or larger than the field allows.",
        "use a value inside the allowed range";
    NoMatchingForm = "S107", Error, "value not accepted",
        "The value breaks a rule of the schema that no more specific code covers, or matches none of several forms of the same type. (Wrong types, choices, formats and ranges have their own codes.)",
        "change the value as the message describes";
    InvalidVersion = "S108", Error, "invalid semantic version",
        "`version` must be a semantic version (`MAJOR.MINOR.PATCH`); published versions are compared and pinned by it.",
        "write the version as `1.0.0`";

    // G: the step graph.
    DuplicateStepId = "G201", Error, "duplicate step id",
        "Two steps share an id. Ids name steps in `needs`, in expressions and in the audit log, so they must be unique.",
        "rename one of the steps";
    UnknownDependency = "G202", Error, "unknown step in `needs`",
        "`needs` names a step that does not exist in this playbook.",
        "use the id of a step defined in `steps`";
    DependencyCycle = "G203", Error, "dependency cycle",
        "Steps wait for each other in a circle, so none of them could ever start.",
        "remove one of the `needs` entries in the cycle";
    StepKind = "G204", Error, "step must do exactly one thing",
        "Each step has exactly one of `uses`, `approval`, `playbook`, `wait` or `notify`.",
        "keep one of them and move the others into their own steps";
    NeverRuns = "G205", Warning, "step never runs",
        "The step can never run: its condition is always false, it needs a step that never runs, or it is a handler no `on_failure` names.",
        "remove the step, or fix what keeps it from running";
    FieldNotForKind = "G206", Error, "field does not apply to this kind of step",
        "The field has no meaning for this kind of step (for example `with` on an approval gate).",
        "remove the field or move it to a step where it applies";
    InvalidHandler = "G207", Error, "invalid failure handler",
        "`on_failure.handlers` names a step that is not a handler (`handler: true`), or a normal step depends on a handler step, or a handler depends on a normal step.",
        "declare handler steps with `handler: true` and let only handlers need each other";
    InvalidRollout = "G208", Error, "invalid rollout",
        "The `foreach` rollout is inconsistent: waves must grow and end at 100%, and no wave may be empty.",
        "write waves as growing cumulative sizes ending in `100%`, such as `[1, 10%, 100%]`";
    UnknownDrillStep = "G209", Error, "drill objective names an unknown or misordered step",
        "`drill.start` and `drill.end` must name steps of this playbook, and the end must come after the start.",
        "name the first containment step in `start` and the verified-healthy step in `end`";
    DuplicateDependency = "G210", Warning, "step listed twice in `needs`",
        "The same step appears twice in `needs`.",
        "remove the duplicate";

    // X: expressions.
    ExpressionSyntax = "X301", Error, "expression does not parse",
        "The CEL expression has a syntax error.",
        "fix the expression; CEL uses `&&`, `||`, `==` and double-quoted strings";
    UnknownVariable = "X302", Error, "unknown name in expression",
        "The expression uses a name that is not available here. Available names depend on the place: `inputs`, `steps`, `trigger`, `run` and `inventory` in steps, `item` inside `foreach`, `alert` in webhook bindings.",
        "use one of the names available at this place";
    UndeclaredInput = "X303", Error, "input not declared",
        "The expression reads `inputs.<name>` but the playbook declares no such input.",
        "declare the input under `inputs:` or fix the name";
    StepNotUpstream = "X304", Error, "step is not upstream",
        "The expression reads the result of a step that does not always finish before this one, so the value might not exist yet.",
        "add the step to `needs` (directly or through another step)";
    UnknownStepReference = "X305", Error, "unknown step in expression",
        "The expression reads `steps.<id>` but no step has that id.",
        "use the id of a step defined in `steps`";
    UnterminatedTemplate = "X306", Error, "unterminated `${{`",
        "A `${{` opens an expression that is never closed with `}}`.",
        "close the expression with `}}`";
    InvalidSelector = "X307", Error, "invalid inventory selector",
        "An inventory selector is a comma-separated list of conditions: `tag=line-3`, `site=plant-a`, `type!=gateway`, `criticality>=high`.",
        "write conditions as `field=value`, `field!=value` or `criticality>=low|medium|high|critical`";
    UnknownOutput = "X308", Error, "unknown step output",
        "The expression reads an output the step's plugin does not declare in its output schema.",
        "use one of the outputs the plugin declares (`cordon plugin inspect`)";

    // U: plugins and sub-playbooks.
    UnknownPlugin = "U401", Error, "unknown plugin",
        "`uses` names a plugin that is not in the plugin catalog.",
        "check the name against the catalog (`cordon plugins`)";
    UnknownPluginVersion = "U402", Error, "unknown plugin version",
        "The plugin exists, but not with this major version.",
        "use a major version the catalog has";
    MissingPluginInput = "U403", Error, "missing input",
        "The plugin (or sub-playbook) requires an input that `with` does not give.",
        "add the input under `with:`";
    UnknownPluginInput = "U404", Error, "unknown input",
        "`with` gives an input that the plugin (or sub-playbook) does not declare.",
        "remove the input or fix its name";
    PluginInputType = "U405", Error, "input has the wrong type",
        "A literal value under `with` does not match the plugin's (or sub-playbook's) input schema.",
        "change the value to what the input schema expects";
    UnknownPlaybook = "U406", Error, "unknown sub-playbook",
        "`playbook` names a playbook that is not known.",
        "validate the sub-playbook alongside this one, or publish it first";
    UnknownPlaybookVersion = "U407", Error, "unknown sub-playbook version",
        "The sub-playbook exists, but not at this version. Sub-playbooks are pinned to exact versions.",
        "use one of the known versions";

    // A: approval gates and safety.
    IrreversibleWithoutApproval = "A501", Error, "irreversible action without an approval gate",
        "An irreversible action (such as revoking a certificate) must sit downstream of an approval gate, so a person confirms it before it happens.",
        "add an `approval` step to this step's `needs` chain, or opt out with `waive_approval: {reason: …}`";
    GateAutoApproves = "A502", Error, "gate approves itself on timeout",
        "The only approval gates upstream of an irreversible action approve on timeout, so the action could run without any person deciding.",
        "use `on_timeout: reject` or `escalate` on a gate that protects an irreversible action";
    MissingEscalation = "A503", Error, "escalation misconfigured",
        "`on_timeout: escalate` needs an `escalate` block with approvers and a timeout, and an `escalate` block is used only with `on_timeout: escalate`.",
        "add `escalate: {approvers: …, timeout: …}` or change `on_timeout`";
    NoApprovers = "A504", Error, "nobody can approve",
        "The gate lists no users, groups or roles, so it could never open.",
        "list approvers under `approvers: {users, groups, roles}`";
    UnusedWaiver = "A505", Warning, "approval waiver has no effect",
        "`waive_approval` is set on a step whose action is not irreversible.",
        "remove `waive_approval`";
    QuorumUnreachable = "A506", Error, "quorum cannot be reached",
        "`min` asks for more distinct approvers than the gate's named users can provide.",
        "lower `min` or add approvers (groups or roles)";

    // T: inputs and triggers.
    InvalidCron = "T601", Error, "invalid cron expression",
        "The schedule is not a valid cron expression. Cordon uses the `cron` crate's syntax: seconds first, six or seven fields.",
        "write it as `sec min hour day-of-month month day-of-week [year]`, such as `0 0 3 * * Mon`";
    UnknownTimezone = "T602", Error, "unknown time zone",
        "The time zone is not an IANA time-zone name.",
        "use a name such as `Europe/Berlin` or `UTC`";
    UndeclaredTriggerInput = "T603", Error, "trigger sets an undeclared input",
        "The trigger maps a value to an input the playbook does not declare.",
        "declare the input under `inputs:` or remove the mapping";
    MissingTriggerInput = "T604", Error, "trigger leaves a required input unset",
        "The playbook requires an input (it has no default) that this trigger does not provide, so every run it starts would be refused.",
        "map the input in the trigger's `inputs`, or give the input a default";
    InputValueType = "T605", Error, "input value has the wrong type",
        "A default or trigger value does not match the input's declared type or choices.",
        "change the value to the declared type";
    DrillWithoutObjective = "T606", Warning, "drill schedule without an objective",
        "A schedule runs the playbook as a drill, but the playbook has no `drill` objective, so recovery time cannot be judged.",
        "add `drill: {rto: …, start: …, end: …}`";
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error-code reference page (`docs/errors.md`).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Playbook diagnostic codes\n\n\
         Generated from `engine/playbook/src/codes.rs` by `cordon errors --markdown`; a test fails when this page is stale.\n\
         Codes are stable: they are never renumbered or reused.\n\n\
         | family | meaning |\n|---|---|\n\
         | P | reading the file (YAML) |\n| S | the JSON Schema of the format |\n| G | the step graph |\n\
         | X | expressions |\n| U | plugins and sub-playbooks |\n| A | approval gates and safety |\n| T | inputs and triggers |\n\n",
    );
    for code in Code::ALL {
        out.push_str(&format!(
            "## {} — {}\n\n*{}.* {}\n\n**Hint:** {}.\n\n",
            code.as_str(),
            code.title(),
            code.severity(),
            code.explanation(),
            code.hint()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} used twice");
            assert_eq!(s.len(), 4, "{s}");
            assert!("PSGXUAT".contains(&s[..1]), "{s}");
            assert!(s[1..].chars().all(|c| c.is_ascii_digit()), "{s}");
        }
    }
}
