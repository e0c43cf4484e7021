//! Checks every expression: `if`, `when`, `wait.until` and each `${{ … }}`
//! inside strings, against the names available where it stands.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::graph_checks::Structure;
use super::lower::Document;
use super::report::{Report, did_you_mean, path};
use crate::catalog::PluginCatalog;
use crate::codes::Code;
use crate::expr::{self, Finding, Scope, StepFacts};
use crate::model::{ForeachItems, Wait};
use crate::yaml::PathSeg;

const STEP_ROOTS: &[&str] = &["inputs", "steps", "trigger", "run", "inventory"];
const FOREACH_ROOTS: &[&str] = &["inputs", "steps", "trigger", "run", "inventory", "item"];
const RUN_ROOTS: &[&str] = &["inputs", "trigger", "run"];
const ALERT_ROOTS: &[&str] = &["alert"];

struct Checker<'r, 'a> {
    report: &'r mut Report<'a>,
    input_names: &'r HashSet<String>,
    steps: &'r HashMap<String, StepFacts>,
}

pub(crate) fn check(
    doc: &Document,
    structure: &Structure,
    plugins: &PluginCatalog,
    report: &mut Report<'_>,
) {
    let steps: HashMap<String, StepFacts> = doc
        .steps
        .iter()
        .filter_map(|e| {
            let id = e.id.clone()?;
            let outputs = e
                .step
                .as_ref()
                .and_then(|s| s.uses.as_ref())
                .and_then(|u| plugins.get(&u.name, u.major))
                .and_then(|d| d.output_names())
                .map(|names| names.into_iter().map(str::to_string).collect());
            Some((
                id,
                StepFacts {
                    index: e.index,
                    outputs,
                },
            ))
        })
        .collect();
    let mut checker = Checker {
        report,
        input_names: &doc.input_names,
        steps: &steps,
    };

    for entry in &doc.steps {
        let Some(step) = &entry.step else { continue };
        let i = entry.index;
        let upstream = &structure.ancestors[i];
        let base = Scope {
            roots: STEP_ROOTS,
            inputs: Some(&doc.input_names),
            steps: Some(&steps),
            // Handlers run after a failure and may read any step, whose result may be absent.
            upstream: (!step.handler).then_some(upstream),
        };
        // A `foreach` the schema rejected still makes `item` available, so one
        // mistake in it is not repeated at every use of `item`.
        let fans_out = step.foreach.is_some() || entry.pruned.contains("foreach");
        let per_item = Scope {
            roots: if fans_out { FOREACH_ROOTS } else { STEP_ROOTS },
            ..base.clone()
        };
        let label = format!("step `{}`", step.id);

        if let Some(condition) = &step.condition {
            checker.condition(&condition.0, &path!["steps", i, "if"], &per_item, &label);
        }
        for (key, value) in &step.with {
            checker.value(
                value,
                path!["steps", i, "with", key].to_vec(),
                &per_item,
                &label,
            );
        }
        if let Some(foreach) = &step.foreach
            && let ForeachItems::Expression(items) = &foreach.items
        {
            checker.template(
                &items.0,
                &path!["steps", i, "foreach", "items"],
                &base,
                &label,
            );
        }
        if let Some(message) = step.approval.as_ref().and_then(|a| a.message.as_ref()) {
            checker.template(
                &message.0,
                &path!["steps", i, "approval", "message"],
                &base,
                &label,
            );
        }
        if let Some(notify) = &step.notify {
            checker.template(
                &notify.subject.0,
                &path!["steps", i, "notify", "subject"],
                &per_item,
                &label,
            );
            if let Some(body) = &notify.body {
                checker.template(
                    &body.0,
                    &path!["steps", i, "notify", "body"],
                    &per_item,
                    &label,
                );
            }
            for (j, to) in notify.to.iter().enumerate() {
                checker.template(to, &path!["steps", i, "notify", "to", j], &per_item, &label);
            }
        }
        if let Some(Wait::Until(until)) = &step.wait {
            checker.condition(
                &until.until.0,
                &path!["steps", i, "wait", "until"],
                &base,
                &label,
            );
        }
    }

    let run_scope = Scope {
        roots: RUN_ROOTS,
        inputs: Some(&doc.input_names),
        steps: None,
        upstream: None,
    };
    if let Some(key) = doc.concurrency.as_ref().and_then(|c| c.key.as_ref()) {
        checker.template(
            &key.0,
            &path!["concurrency", "key"],
            &run_scope,
            "`concurrency.key`",
        );
    }

    let alert_scope = Scope {
        roots: ALERT_ROOTS,
        inputs: None,
        steps: None,
        upstream: None,
    };
    {
        for &(k, ref hook) in &doc.webhooks {
            let label = format!("webhook binding `{}`", hook.source);
            if let Some(when) = &hook.when {
                checker.condition(
                    &when.0,
                    &path!["triggers", "webhooks", k, "when"],
                    &alert_scope,
                    &label,
                );
            }
            for (name, value) in &hook.inputs {
                checker.template(
                    &value.0,
                    &path!["triggers", "webhooks", k, "inputs", name],
                    &alert_scope,
                    &label,
                );
            }
            if let Some(resolved) = &hook.on_resolved {
                for (name, value) in &resolved.inputs {
                    checker.template(
                        &value.0,
                        &path!["triggers", "webhooks", k, "on_resolved", "inputs", name],
                        &alert_scope,
                        &label,
                    );
                }
            }
        }
    }
}

impl Checker<'_, '_> {
    /// A bare or wrapped CEL condition.
    fn condition(&mut self, text: &str, at: &[PathSeg], scope: &Scope<'_>, label: &str) {
        let source = expr::condition_source(text);
        if source.contains("${{") {
            // A condition that mixes text and `${{ }}` is a template, not CEL.
            self.template(text, at, scope, label);
            return;
        }
        self.expression(source, at, scope, label);
    }

    /// Every string inside a JSON value, checked as a template.
    fn value(&mut self, value: &Value, at: Vec<PathSeg>, scope: &Scope<'_>, label: &str) {
        match value {
            Value::String(s) => self.template(s, &at, scope, label),
            Value::Array(items) => {
                for (j, item) in items.iter().enumerate() {
                    let mut next = at.clone();
                    next.push(j.into());
                    self.value(item, next, scope, label);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let mut next = at.clone();
                    next.push(key.into());
                    self.value(item, next, scope, label);
                }
            }
            _ => {}
        }
    }

    fn template(&mut self, text: &str, at: &[PathSeg], scope: &Scope<'_>, label: &str) {
        match expr::segments(text) {
            Ok(segments) => {
                for segment in segments {
                    self.expression(segment.source, at, scope, label);
                }
            }
            Err(_) => {
                self.report.at_value(
                    Code::UnterminatedTemplate,
                    at,
                    format!("`${{{{` in {label} is never closed with `}}}}`"),
                );
            }
        }
    }

    fn expression(&mut self, source: &str, at: &[PathSeg], scope: &Scope<'_>, label: &str) {
        for finding in expr::check(source, scope) {
            self.explain(finding, source, at, scope, label);
        }
    }

    fn explain(
        &mut self,
        finding: Finding,
        source: &str,
        at: &[PathSeg],
        scope: &Scope<'_>,
        label: &str,
    ) {
        match finding {
            Finding::Syntax { message } => {
                self.report.at_value(
                    Code::ExpressionSyntax,
                    at,
                    format!("cannot parse `{source}` in {label}: {message}"),
                );
            }
            Finding::UnknownVariable { name } => {
                let hint = match name.as_str() {
                    "item" => "`item` exists only in steps with `foreach`".to_string(),
                    "alert" => {
                        "`alert` exists only in webhook bindings (`triggers.webhooks`)".to_string()
                    }
                    _ => format!(
                        "available here: {}",
                        scope
                            .roots
                            .iter()
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.report
                    .at_value(
                        Code::UnknownVariable,
                        at,
                        format!("`{name}` is not available in {label}"),
                    )
                    .hint(hint);
            }
            Finding::UndeclaredInput { name } => {
                let hint =
                    did_you_mean(&name, self.input_names.iter().map(String::as_str), "inputs");
                self.report
                    .at_value(
                        Code::UndeclaredInput,
                        at,
                        format!("{label} reads `inputs.{name}`, which is not declared"),
                    )
                    .hint(hint);
            }
            Finding::UnknownStep { id } => {
                let hint = did_you_mean(&id, self.steps.keys().map(String::as_str), "steps");
                self.report
                    .at_value(
                        Code::UnknownStepReference,
                        at,
                        format!("{label} reads `steps.{id}`, but no step has that id"),
                    )
                    .hint(hint);
            }
            Finding::NotUpstream { id } => {
                self.report
                    .at_value(Code::StepNotUpstream, at, format!("{label} reads `steps.{id}`, but `{id}` is not upstream of it"))
                    .hint(format!("add `{id}` to `needs` (directly or through another step), so it finishes first"));
            }
            Finding::UnknownOutput {
                step,
                output,
                known,
            } => {
                let hint = did_you_mean(&output, known.iter().map(String::as_str), "outputs");
                self.report.at_value(Code::UnknownOutput, at, format!("{label} reads `steps.{step}.outputs.{output}`, which step `{step}` does not produce")).hint(hint);
            }
            Finding::InvalidSelector { selector, message } => {
                self.report.at_value(
                    Code::InvalidSelector,
                    at,
                    format!("inventory selector `{selector}` in {label} is invalid: {message}"),
                );
            }
        }
    }
}
