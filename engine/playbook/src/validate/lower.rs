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

/// Why a section did not lower: where serde stopped (a full document path)
/// and what it said. The schema explains almost every such failure; this is
/// the fallback for the few rules only the Rust types know (a version with a
/// leading zero in a sub-playbook reference, say).
#[derive(Debug, Clone)]
pub(crate) struct LowerFailure {
    /// The section that did not lower.
    pub(crate) section: Vec<PathSeg>,
    /// The value serde refused.
    pub(crate) at: Vec<PathSeg>,
    /// serde's message.
    pub(crate) message: String,
}

fn deserialize<T: DeserializeOwned>(raw: Value, base: &[PathSeg]) -> Result<T, LowerFailure> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let mut at = base.to_vec();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => at.push(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => at.push(PathSeg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        LowerFailure {
            section: base.to_vec(),
            at,
            message: e.into_inner().to_string(),
        }
    })
}

/// Lowers `raw`; on failure, drops the fields under `base` that a schema
/// error names and tries once more. Returns the value (or why not) and the
/// dropped fields.
fn lower_pruned<T: DeserializeOwned>(
    raw: &Value,
    base: &[PathSeg],
    broken: &[Vec<PathSeg>],
) -> (Result<T, LowerFailure>, HashSet<String>) {
    let first = match deserialize(raw.clone(), base) {
        Ok(value) => return (Ok(value), HashSet::new()),
        Err(failure) => failure,
    };
    let pruned: HashSet<String> = broken
        .iter()
        .filter(|p| p.len() > base.len() && p.starts_with(base))
        .filter_map(|p| match &p[base.len()] {
            PathSeg::Key(k) => Some(k.clone()),
            PathSeg::Index(_) => None,
        })
        .collect();
    let Value::Object(map) = raw else {
        return (Err(first), pruned);
    };
    if pruned.is_empty() {
        return (Err(first), pruned);
    }
    let kept: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !pruned.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (deserialize(Value::Object(kept), base), pruned)
}

/// The lowered value, or `None` with the failure recorded.
fn keep<T>(lowered: Result<T, LowerFailure>, failed: &mut Vec<LowerFailure>) -> Option<T> {
    lowered.map_err(|failure| failed.push(failure)).ok()
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
) -> (Document, Vec<LowerFailure>) {
    let mut failed = Vec::new();
    let mut doc = Document::default();
    if let Some(inputs) = json.get("inputs").and_then(Value::as_object) {
        for (name, raw) in inputs {
            doc.input_names.insert(name.clone());
            let base = [key("inputs"), key(name)];
            if let Some(spec) = keep(lower_pruned::<InputSpec>(raw, &base, broken).0, &mut failed) {
                doc.inputs.insert(name.clone(), spec);
            }
        }
    }
    let triggers = json.get("triggers");
    for (k, raw) in triggers
        .and_then(|t| t.get("webhooks"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let base = [key("triggers"), key("webhooks"), PathSeg::Index(k)];
        if let Some(hook) = keep(
            lower_pruned::<WebhookBinding>(raw, &base, broken).0,
            &mut failed,
        ) {
            doc.webhooks.push((k, hook));
        }
    }
    for (k, raw) in triggers
        .and_then(|t| t.get("schedules"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let base = [key("triggers"), key("schedules"), PathSeg::Index(k)];
        if let Some(schedule) = keep(
            lower_pruned::<ScheduleBinding>(raw, &base, broken).0,
            &mut failed,
        ) {
            doc.schedules.push((k, schedule));
        }
    }
    if let Some(raw) = json.get("on_failure") {
        doc.on_failure = keep(
            lower_pruned(raw, &[key("on_failure")], broken).0,
            &mut failed,
        );
    }
    if let Some(raw) = json.get("concurrency") {
        doc.concurrency = keep(
            lower_pruned(raw, &[key("concurrency")], broken).0,
            &mut failed,
        );
    }
    if let Some(raw) = json.get("drill") {
        doc.drill = keep(lower_pruned(raw, &[key("drill")], broken).0, &mut failed);
    }
    for (index, raw) in json
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let base = [key("steps"), PathSeg::Index(index)];
        let (step, pruned) = lower_pruned::<Step>(raw, &base, broken);
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
            step: keep(step, &mut failed),
            pruned,
        });
    }
    (doc, failed)
}
