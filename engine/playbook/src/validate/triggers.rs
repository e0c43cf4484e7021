//! Inputs and triggers: names, defaults, cron expressions, time zones, and
//! whether every trigger supplies the inputs a run needs.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;

use super::lower::Document;
use super::report::{Report, did_you_mean, path};
use crate::codes::Code;
use crate::model::{InputSpec, patterns};
use crate::yaml::PathSeg;

pub(crate) fn check(doc: &Document, report: &mut Report<'_>) {
    for name in &doc.input_names {
        if !is_input_name(name) {
            report
                .at_key(
                    Code::InvalidFormat,
                    &path!["inputs", name],
                    format!("`{name}` is not a valid input name"),
                )
                .hint(format!(
                    "write {}",
                    patterns::describe(patterns::INPUT_NAME).unwrap_or_default()
                ));
        }
    }
    for (name, spec) in &doc.inputs {
        if let Some(default) = &spec.default {
            check_value(
                spec,
                default,
                &path!["inputs", name, "default"],
                &format!("the default of input `{name}`"),
                report,
            );
        }
    }
    for (k, schedule) in &doc.schedules {
        let k = *k;
        let at = path!["triggers", "schedules", k].to_vec();
        if let Err(e) = cron::Schedule::from_str(&schedule.cron) {
            let mut cron_path = at.clone();
            cron_path.push("cron".into());
            report.at_value(
                Code::InvalidCron,
                &cron_path,
                format!("`{}` is not a valid cron expression: {e}", schedule.cron),
            );
        }
        if let Some(zone) = &schedule.timezone
            && chrono_tz::Tz::from_str(zone).is_err()
        {
            let mut zone_path = at.clone();
            zone_path.push("timezone".into());
            let hint = did_you_mean(
                zone,
                chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()),
                "time zones",
            );
            report
                .at_value(
                    Code::UnknownTimezone,
                    &zone_path,
                    format!("`{zone}` is not an IANA time zone"),
                )
                .hint(hint);
        }
        if schedule.drill && doc.drill.is_none() {
            let mut drill_path = at.clone();
            drill_path.push("drill".into());
            report.at_key(Code::DrillWithoutObjective, &drill_path, "this schedule runs a drill, but the playbook has no `drill` objective to measure it against");
        }
        for (name, value) in &schedule.inputs {
            if let Some(spec) = doc.inputs.get(name) {
                let mut value_path = at.clone();
                value_path.extend([PathSeg::from("inputs"), PathSeg::from(name)]);
                check_value(
                    spec,
                    value,
                    &value_path,
                    &format!("input `{name}` of this schedule"),
                    report,
                );
            }
        }
        check_coverage(doc, schedule.inputs.keys(), &at, "schedule", report);
    }
    for (k, hook) in &doc.webhooks {
        check_coverage(
            doc,
            hook.inputs.keys(),
            &path!["triggers", "webhooks", *k],
            &format!("webhook binding `{}`", hook.source),
            report,
        );
    }
}

fn is_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

fn check_value(
    spec: &InputSpec,
    value: &Value,
    at: &[PathSeg],
    what: &str,
    report: &mut Report<'_>,
) {
    if !spec.kind.accepts(value) {
        report.at_value(
            Code::InputValueType,
            at,
            format!("{what} must be {}, found `{value}`", spec.kind.described()),
        );
    } else if let Some(choices) = &spec.choices
        && !choices.contains(value)
    {
        let list: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
        report
            .at_value(
                Code::InputValueType,
                at,
                format!("{what} is `{value}`, which is not one of the allowed values"),
            )
            .hint(format!("use one of {}", list.join(", ")));
    }
}

/// Trigger inputs must be declared, and together with defaults cover every required input.
fn check_coverage<'k>(
    doc: &Document,
    given: impl Iterator<Item = &'k String> + Clone,
    at: &[PathSeg],
    label: &str,
    report: &mut Report<'_>,
) {
    for name in given.clone() {
        if !doc.input_names.contains(name) {
            let mut key = at.to_vec();
            key.extend([PathSeg::from("inputs"), PathSeg::from(name)]);
            let hint = did_you_mean(name, doc.input_names.iter().map(String::as_str), "inputs");
            report
                .at_key(
                    Code::UndeclaredTriggerInput,
                    &key,
                    format!("{label} sets input `{name}`, which the playbook does not declare"),
                )
                .hint(hint);
        }
    }
    let provided: Vec<&String> = given.collect();
    let missing: BTreeMap<&String, &InputSpec> = doc
        .inputs
        .iter()
        .filter(|(name, spec)| spec.is_required() && !provided.contains(name))
        .collect();
    for name in missing.keys() {
        report
            .at_value(
                Code::MissingTriggerInput,
                at,
                format!("{label} does not set the required input `{name}`"),
            )
            .hint(format!(
                "add `{name}` to this trigger's `inputs`, or give the input a default"
            ));
    }
}
