//! Lowers the checked JSON into the typed model, one section at a time, so
//! one broken step does not hide the problems of the others. A section the
//! schema complained about is lowered again without its broken fields, so
//! the rest of it is still checked.

use std::collections::{BTreeMap, HashSet};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{
    DrillObjective, InputSpec, RunConcurrency, RunFailurePolicy, ScheduleBinding, Step,
    WebhookBinding,
};
use crate::yaml::PathSeg;

/// One entry of `steps`, as much of it as could be read.
#[derive(Debug)]
pub(crate) struct StepEntry {
    /// Index in `steps`.
    pub(crate) index: usize,
    /// The id, when it is a string.
    pub(crate) id: Option<String>,
    /// The `needs` entries that are strings, with their index in the list.
    pub(crate) needs: Vec<(usize, String)>,
    /// Whether the step says `handler: true`.
    pub(crate) handler: bool,
    /// The step, when it lowered (possibly without its broken fields).
    pub(crate) step: Option<Step>,
    /// Fields dropped because the schema found them broken.
    pub(crate) pruned: HashSet<String>,
}

/// The playbook, lowered as far as possible.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) inputs: BTreeMap<String, InputSpec>,
    /// Every declared input name, including those whose spec is broken, so a
    /// broken spec does not also make each reference to it an error.
    pub(crate) input_names: HashSet<String>,
    /// Webhook bindings that lowered, with their index.
    pub(crate) webhooks: Vec<(usize, WebhookBinding)>,
    /// Schedule bindings that lowered, with their index.
    pub(crate) schedules: Vec<(usize, ScheduleBinding)>,
    pub(crate) steps: Vec<StepEntry>,
    pub(crate) on_failure: Option<RunFailurePolicy>,
    pub(crate) concurrency: Option<RunConcurrency>,
    pub(crate) drill: Option<DrillObjective>,
}

/// Lowers `raw`; on failure, drops the fields under `base` that a schema
/// error names and tries once more. Returns the value and the dropped fields.
fn lower_pruned<T: DeserializeOwned>(
    raw: &Value,
    base: &[PathSeg],
    broken: &[Vec<PathSeg>],
) -> (Option<T>, HashSet<String>) {
    if let Ok(value) = serde_json::from_value(raw.clone()) {
        return (Some(value), HashSet::new());
    }
    let pruned: HashSet<String> = broken
        .iter()
        .filter(|p| p.len() > base.len() && p.starts_with(base))
        .filter_map(|p| match &p[base.len()] {
            PathSeg::Key(k) => Some(k.clone()),
            PathSeg::Index(_) => None,
        })
        .collect();
    let Value::Object(map) = raw else {
        return (None, pruned);
    };
    if pruned.is_empty() {
        return (None, pruned);
    }
    let kept: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !pruned.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (serde_json::from_value(Value::Object(kept)).ok(), pruned)
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// Reads what it can. `broken` lists the paths the schema complained about.
/// Also returns the sections that failed to lower, so the caller can make
/// sure each failure was explained by some diagnostic.
pub(crate) fn lower_document(
    json: &Value,
    broken: &[Vec<PathSeg>],
) -> (Document, Vec<Vec<PathSeg>>) {
    let mut failed = Vec::new();
    let mut doc = Document::default();
    if let Some(inputs) = json.get("inputs").and_then(Value::as_object) {
        for (name, raw) in inputs {
            doc.input_names.insert(name.clone());
            let base = vec![key("inputs"), key(name)];
            match lower_pruned::<InputSpec>(raw, &base, broken).0 {
                Some(spec) => {
                    doc.inputs.insert(name.clone(), spec);
                }
                None => failed.push(base),
            }
        }
    }
    for (list, kind) in [("webhooks", 0), ("schedules", 1)] {
        let Some(items) = json
            .get("triggers")
            .and_then(|t| t.get(list))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (k, raw) in items.iter().enumerate() {
            let base = vec![key("triggers"), key(list), PathSeg::Index(k)];
            let lowered = if kind == 0 {
                lower_pruned::<WebhookBinding>(raw, &base, broken)
                    .0
                    .map(|w| doc.webhooks.push((k, w)))
            } else {
                lower_pruned::<ScheduleBinding>(raw, &base, broken)
                    .0
                    .map(|s| doc.schedules.push((k, s)))
            };
            if lowered.is_none() {
                failed.push(base);
            }
        }
    }
    if let Some(raw) = json.get("on_failure") {
        doc.on_failure = lower_pruned(raw, &[key("on_failure")], broken).0;
        if doc.on_failure.is_none() {
            failed.push(vec![key("on_failure")]);
        }
    }
    if let Some(raw) = json.get("concurrency") {
        doc.concurrency = lower_pruned(raw, &[key("concurrency")], broken).0;
        if doc.concurrency.is_none() {
            failed.push(vec![key("concurrency")]);
        }
    }
    if let Some(raw) = json.get("drill") {
        doc.drill = lower_pruned(raw, &[key("drill")], broken).0;
        if doc.drill.is_none() {
            failed.push(vec![key("drill")]);
        }
    }
    if let Some(steps) = json.get("steps").and_then(Value::as_array) {
        for (index, raw) in steps.iter().enumerate() {
            let base = vec![key("steps"), PathSeg::Index(index)];
            let (step, pruned) = lower_pruned::<Step>(raw, &base, broken);
            if step.is_none() {
                failed.push(base);
            }
            let needs = raw
                .get("needs")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .enumerate()
                        .filter_map(|(i, n)| n.as_str().map(|s| (i, s.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            doc.steps.push(StepEntry {
                index,
                id: raw.get("id").and_then(Value::as_str).map(str::to_string),
                needs,
                handler: raw.get("handler").and_then(Value::as_bool).unwrap_or(false),
                step,
                pruned,
            });
        }
    }
    (doc, failed)
}
