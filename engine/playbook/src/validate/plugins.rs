//! Checks `uses` against the plugin catalog and `playbook` against the
//! known playbooks, and type-checks `with` against what they declare.

use std::collections::{BTreeMap, HashSet};

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::Context;
use super::lower::Document;
use super::report::{Report, did_you_mean, path};
use crate::codes::Code;
use crate::model::{InputSpec, PlaybookRef};
use crate::yaml::PathSeg;
use crate::yaml::node::pointer_segments;

pub(crate) fn check(doc: &Document, ctx: &Context<'_>, report: &mut Report<'_>) {
    for entry in &doc.steps {
        let Some(step) = &entry.step else { continue };
        let i = entry.index;
        if let Some(uses) = &step.uses {
            let with_path = path!["steps", i, "with"];
            let uses_path = path!["steps", i, "uses"];
            match ctx.plugins.entry(&uses.name, uses.major) {
                Some(plugin) => {
                    let label = format!("`{uses}`");
                    let properties: Vec<String> = plugin
                        .descriptor
                        .input_schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    let missing_at = if step.with.is_empty() {
                        uses_path.clone()
                    } else {
                        with_path.clone()
                    };
                    check_with_schema(
                        &plugin.inputs,
                        &properties,
                        &step.with,
                        &with_path,
                        &missing_at,
                        &label,
                        report,
                    );
                }
                None => {
                    let versions = ctx.plugins.versions(&uses.name);
                    if versions.is_empty() {
                        let hint = did_you_mean(&uses.name, ctx.plugins.names(), "plugins");
                        report
                            .at_value(
                                Code::UnknownPlugin,
                                &uses_path,
                                format!("plugin `{}` is not in the catalog", uses.name),
                            )
                            .hint(hint);
                    } else {
                        let majors: Vec<String> = versions
                            .iter()
                            .map(|v| format!("`{}@{}` ({v})", uses.name, v.major))
                            .collect();
                        report
                            .at_value(
                                Code::UnknownPluginVersion,
                                &uses_path,
                                format!(
                                    "plugin `{}` has no major version {}",
                                    uses.name, uses.major
                                ),
                            )
                            .hint(format!("available: {}", majors.join(", ")));
                    }
                }
            }
        }
        if let Some(playbook) = &step.playbook
            && let Some(inputs) =
                resolve_playbook(playbook, &path!["steps", i, "playbook"], ctx, report)
        {
            let label = format!("sub-playbook `{playbook}`");
            let missing_at = if step.with.is_empty() {
                path!["steps", i, "playbook"]
            } else {
                path!["steps", i, "with"]
            };
            check_with_inputs(
                inputs,
                &step.with,
                &path!["steps", i, "with"],
                &missing_at,
                &label,
                report,
            );
        }
    }
    for (k, hook) in &doc.webhooks {
        if let Some(resolved) = &hook.on_resolved {
            resolve_playbook(
                &resolved.playbook,
                &path!["triggers", "webhooks", *k, "on_resolved", "playbook"],
                ctx,
                report,
            );
        }
    }
}

/// Looks a sub-playbook up; reports and returns `None` when it is unknown.
fn resolve_playbook<'c>(
    reference: &PlaybookRef,
    at: &[PathSeg],
    ctx: &Context<'c>,
    report: &mut Report<'_>,
) -> Option<&'c BTreeMap<String, InputSpec>> {
    let index = ctx.playbooks?;
    if !index.has(&reference.name) {
        let hint = did_you_mean(&reference.name, index.names(), "playbooks");
        report
            .at_value(
                Code::UnknownPlaybook,
                at,
                format!("playbook `{}` is not known", reference.name),
            )
            .hint(hint);
        return None;
    }
    let inputs = index.inputs(&reference.name, &reference.version);
    if inputs.is_none() {
        let versions: Vec<String> = index
            .versions(&reference.name)
            .iter()
            .map(|v| format!("`{v}`"))
            .collect();
        report
            .at_value(
                Code::UnknownPlaybookVersion,
                at,
                format!(
                    "playbook `{}` has no version {}",
                    reference.name, reference.version
                ),
            )
            .hint(format!("known versions: {}", versions.join(", ")));
    }
    inputs
}

/// Keys whose value embeds an expression: their type is known only at run time.
fn expression_keys(with: &BTreeMap<String, Value>) -> HashSet<&str> {
    with.iter()
        .filter(|(_, v)| v.to_string().contains("${{"))
        .map(|(k, _)| k.as_str())
        .collect()
}

fn check_with_schema(
    validator: &jsonschema::Validator,
    properties: &[String],
    with: &BTreeMap<String, Value>,
    with_path: &[PathSeg],
    missing_at: &[PathSeg],
    label: &str,
    report: &mut Report<'_>,
) {
    let instance = Value::Object(with.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let dynamic = expression_keys(with);
    for error in validator.iter_errors(&instance) {
        let segments = pointer_segments(error.instance_path().as_str());
        match error.kind() {
            ValidationErrorKind::Required { property } if segments.is_empty() => {
                let name = property.as_str().unwrap_or_default();
                report
                    .at_key(
                        Code::MissingPluginInput,
                        missing_at,
                        format!("{label} needs the input `{name}`, which `with` does not give"),
                    )
                    .hint(format!("add `{name}:` under `with`"));
            }
            ValidationErrorKind::AdditionalProperties { unexpected } if segments.is_empty() => {
                for name in unexpected {
                    let mut at = with_path.to_vec();
                    at.push(name.into());
                    let hint = did_you_mean(name, properties.iter().map(String::as_str), "inputs");
                    report
                        .at_key(
                            Code::UnknownPluginInput,
                            &at,
                            format!("{label} has no input `{name}`"),
                        )
                        .hint(hint);
                }
            }
            _ => {
                if segments
                    .first()
                    .is_some_and(|s| dynamic.contains(s.as_str()))
                {
                    continue;
                }
                let mut at = with_path.to_vec();
                at.extend(with_value_path(with, &segments));
                let name = segments.first().cloned().unwrap_or_default();
                report.at_value(
                    Code::PluginInputType,
                    &at,
                    format!("input `{name}` of {label}: {error}"),
                );
            }
        }
    }
}

/// Resolves pointer segments under `with` into keys and indices.
fn with_value_path(with: &BTreeMap<String, Value>, segments: &[String]) -> Vec<PathSeg> {
    let mut out = Vec::new();
    let mut node = segments.first().and_then(|k| with.get(k));
    if let Some(first) = segments.first() {
        out.push(first.into());
    }
    for seg in segments.iter().skip(1) {
        let step = match node {
            Some(Value::Array(_)) => seg
                .parse()
                .map(PathSeg::Index)
                .unwrap_or_else(|_| seg.into()),
            _ => seg.into(),
        };
        node = match (&step, node) {
            (PathSeg::Index(i), Some(Value::Array(a))) => a.get(*i),
            (PathSeg::Key(k), Some(Value::Object(o))) => o.get(k),
            _ => None,
        };
        out.push(step);
    }
    out
}

fn check_with_inputs(
    inputs: &BTreeMap<String, InputSpec>,
    with: &BTreeMap<String, Value>,
    with_path: &[PathSeg],
    missing_at: &[PathSeg],
    label: &str,
    report: &mut Report<'_>,
) {
    let dynamic = expression_keys(with);
    for (name, value) in with {
        let mut at = with_path.to_vec();
        at.push(name.into());
        match inputs.get(name) {
            None => {
                let hint = did_you_mean(name, inputs.keys().map(String::as_str), "inputs");
                report
                    .at_key(
                        Code::UnknownPluginInput,
                        &at,
                        format!("{label} has no input `{name}`"),
                    )
                    .hint(hint);
            }
            Some(spec) if !dynamic.contains(name.as_str()) && !spec.kind.accepts(value) => {
                report.at_value(
                    Code::PluginInputType,
                    &at,
                    format!(
                        "input `{name}` of {label} must be {}",
                        spec.kind.described()
                    ),
                );
            }
            Some(_) => {}
        }
    }
    for (name, spec) in inputs {
        if spec.is_required() && !with.contains_key(name) {
            report
                .at_key(
                    Code::MissingPluginInput,
                    missing_at,
                    format!("{label} needs the input `{name}`, which `with` does not give"),
                )
                .hint(format!("add `{name}:` under `with`"));
        }
    }
}
