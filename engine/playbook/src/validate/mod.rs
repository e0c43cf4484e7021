//! The validator: every problem of a playbook, in one pass (SPEC §3, §3.2).
//!
//! Stages, each reporting everything it finds and none stopping the next
//! unless it must: bytes (size, UTF-8) → YAML with positions → JSON Schema →
//! typed model, section by section → graph → expressions → plugins and
//! sub-playbooks → safety → inputs and triggers.

mod expressions;
mod graph_checks;
mod lower;
mod plugins;
mod report;
mod safety;
mod schema_check;
mod triggers;

use crate::catalog::{PlaybookIndex, PluginCatalog};
use crate::codes::Code;
use crate::diagnostic::{self, Diagnostic};
use crate::model::Playbook;
use crate::yaml::{NodeKind, Pos, ReadIssueKind, ReadLimits, read_document};
use report::{Report, describe};

/// What the validator may consult besides the file itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The plugins `uses` may name.
    pub plugins: &'a PluginCatalog,
    /// The playbooks `playbook:` may name; `None` skips sub-playbook resolution.
    pub playbooks: Option<&'a PlaybookIndex>,
    /// Reader limits.
    pub limits: ReadLimits,
}

impl<'a> Context<'a> {
    /// A context with default limits and no sub-playbook index.
    pub fn new(plugins: &'a PluginCatalog) -> Self {
        Context {
            plugins,
            playbooks: None,
            limits: ReadLimits::default(),
        }
    }
}

/// The outcome of validating one file.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Every problem, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// The typed playbook, when the file had no errors (warnings allowed).
    valid: Option<ValidPlaybook>,
}

impl Validation {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The validated playbook, when there were no errors.
    pub fn valid(&self) -> Option<&ValidPlaybook> {
        self.valid.as_ref()
    }

    /// Takes the validated playbook, when there were no errors.
    pub fn into_valid(self) -> Option<ValidPlaybook> {
        self.valid
    }
}

/// A playbook that passed validation: ids are unique, every `needs` names a
/// step, the graph is acyclic, every step has exactly one kind, every plugin
/// is in the catalog. Only [`validate`] makes one, so the graph compiler can
/// rely on all of that.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPlaybook {
    playbook: Playbook,
}

impl ValidPlaybook {
    /// The playbook.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }
}

/// Validates one playbook file. Never panics, whatever the bytes.
pub fn validate(file: &str, source: &[u8], ctx: &Context<'_>) -> Validation {
    let mut report = Report::new(file);
    let playbook = run(source, ctx, &mut report);
    let mut diagnostics = report.diagnostics;
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    Validation {
        valid: if has_errors {
            None
        } else {
            playbook.map(|playbook| ValidPlaybook { playbook })
        },
        diagnostics,
    }
}

fn run(source: &[u8], ctx: &Context<'_>, report: &mut Report<'_>) -> Option<Playbook> {
    if source.len() > ctx.limits.max_bytes {
        report.at(
            Code::FileTooLarge,
            Pos::START,
            format!(
                "the file is {} bytes; playbooks may be at most {} bytes",
                source.len(),
                ctx.limits.max_bytes
            ),
        );
        return None;
    }
    let text = match std::str::from_utf8(source) {
        Ok(text) => text,
        Err(e) => {
            let valid = &source[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            let pos = Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                col: u32::try_from(col).unwrap_or(u32::MAX),
            };
            report.at(
                Code::NotUtf8,
                pos,
                format!("byte {} is not valid UTF-8", e.valid_up_to()),
            );
            return None;
        }
    };
    let outcome = read_document(text, ctx.limits);
    for issue in &outcome.issues {
        let (code, message) = match &issue.kind {
            ReadIssueKind::Syntax { message } => {
                (Code::YamlSyntax, format!("invalid YAML: {message}"))
            }
            ReadIssueKind::Empty => (Code::EmptyFile, "the file holds no playbook".to_string()),
            ReadIssueKind::TooLarge { size, limit } => (
                Code::FileTooLarge,
                format!("the file is {size} bytes; playbooks may be at most {limit} bytes"),
            ),
            ReadIssueKind::TooDeep { limit } => (
                Code::NestingTooDeep,
                format!("the document nests deeper than {limit} levels"),
            ),
            ReadIssueKind::TooManyNodes { limit } => (
                Code::TooManyNodes,
                format!("aliases expand the document past {limit} nodes"),
            ),
            ReadIssueKind::MultipleDocuments => (
                Code::MultipleDocuments,
                "a second YAML document starts here; a playbook file holds one".to_string(),
            ),
            ReadIssueKind::DuplicateKey { key, first } => (
                Code::DuplicateKey,
                format!("key `{key}` is repeated (first on line {})", first.line),
            ),
            ReadIssueKind::UnsupportedTag { tag } => (
                Code::UnsupportedYaml,
                format!("the tag `{tag}` is not supported"),
            ),
            ReadIssueKind::BadTaggedValue { tag } => (
                Code::UnsupportedYaml,
                format!("the value does not parse as `{tag}`"),
            ),
            ReadIssueKind::ComplexKey => (
                Code::UnsupportedYaml,
                "a mapping key must be a plain value, not a list or mapping".to_string(),
            ),
        };
        report.at(code, issue.pos, message);
    }
    let root = outcome.root.as_ref()?;
    if !matches!(root.kind, NodeKind::Map(_)) {
        let found = match root.kind {
            NodeKind::Seq(_) => "a list",
            NodeKind::Null => "nothing",
            _ => "a single value",
        };
        report.at(
            Code::NotAMapping,
            root.pos,
            format!("a playbook is a mapping of fields, but this file holds {found}"),
        );
        return None;
    }
    // Borrowing the root for the report's lifetime: the tree lives in this frame.
    let root: &crate::yaml::Node = root;
    let json = root.to_json();
    let mut scoped = Report::new(report_file(report));
    scoped.set_root(root);
    let broken = schema_check::check(&json, root, &mut scoped);
    let (doc, failures) = lower::lower_document(&json, &broken);
    for failure in failures {
        // The schema explains nearly every failure; report only what it missed.
        let explained = broken
            .iter()
            .any(|b| b.starts_with(&failure.section) || failure.section.starts_with(b));
        if !explained {
            let place = describe(Some(root), &failure.at);
            scoped.at_value(
                Code::NoMatchingForm,
                &failure.at,
                format!("{place} is not accepted: {}", failure.message),
            );
        }
    }
    let structure = graph_checks::check(&doc, &mut scoped);
    expressions::check(&doc, &structure, ctx.plugins, &mut scoped);
    plugins::check(&doc, ctx, &mut scoped);
    safety::check(&doc, &structure, ctx.plugins, &mut scoped);
    triggers::check(&doc, &mut scoped);
    if !broken
        .iter()
        .any(|p| p.first() == Some(&crate::yaml::PathSeg::Key("version".into())))
    {
        check_version(&json, &mut scoped);
    }
    let has_errors = scoped.has_errors() || report.has_errors();
    report.diagnostics.append(&mut scoped.diagnostics);
    if has_errors {
        return None;
    }
    serde_json::from_value(json).ok()
}

fn report_file<'a>(report: &Report<'a>) -> &'a str {
    report.file()
}

fn check_version(json: &serde_json::Value, report: &mut Report<'_>) {
    let Some(version) = json.get("version").and_then(serde_json::Value::as_str) else {
        return;
    };
    if let Err(e) = semver::Version::parse(version) {
        report
            .at_value(
                Code::InvalidVersion,
                &report::path!["version"],
                format!("`{version}` is not a semantic version: {e}"),
            )
            .hint("write the version as `MAJOR.MINOR.PATCH`, such as `1.0.0`");
    }
}
