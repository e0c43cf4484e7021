//! Checks on the step graph: ids, kinds, `needs`, cycles, handlers,
//! steps that never run, rollouts and the drill objective.

use std::collections::{HashMap, HashSet};

use fixedbitset::FixedBitSet;

use super::lower::{Document, StepEntry};
use super::report::{Report, did_you_mean, path};
use crate::codes::Code;
use crate::expr::condition_source;
use crate::model::{Amount, Step, StepKind};

/// What the graph checks learned, for the checks that follow.
#[derive(Debug, Default)]
pub(crate) struct Structure {
    /// Step id → index of its first definition.
    pub(crate) index_of: HashMap<String, usize>,
    /// For each step, the set of step indices it transitively needs. Bit
    /// sets keep this linear-ish for large playbooks (a 2,000-step chain
    /// holds two million ancestor pairs).
    pub(crate) ancestors: Vec<FixedBitSet>,
}

pub(crate) fn check(doc: &Document, report: &mut Report<'_>) -> Structure {
    let mut structure = Structure::default();
    check_ids(doc, report, &mut structure);
    for entry in &doc.steps {
        if let Some(step) = &entry.step {
            // A kind field the schema rejected was dropped; don't also say the step has none.
            let kind_pruned = ["uses", "approval", "playbook", "wait", "notify"]
                .iter()
                .any(|k| entry.pruned.contains(*k));
            if !(kind_pruned && step.kinds().is_empty()) {
                check_kind(entry.index, step, report);
            }
        }
    }
    let edges = check_needs(doc, report, &structure);
    check_cycles(doc, &edges, report);
    structure.ancestors = ancestors(&edges);
    check_handlers(doc, &structure, report);
    check_never_runs(doc, &structure, report);
    for entry in &doc.steps {
        if let Some(step) = &entry.step {
            check_rollout(entry.index, step, report);
        }
    }
    check_drill(doc, &structure, report);
    structure
}

fn check_ids(doc: &Document, report: &mut Report<'_>, structure: &mut Structure) {
    for entry in &doc.steps {
        let Some(id) = &entry.id else { continue };
        match structure.index_of.get(id) {
            Some(&first) => {
                let first_pos = report.value_pos(&path!["steps", first, "id"]);
                report
                    .at_value(
                        Code::DuplicateStepId,
                        &path!["steps", entry.index, "id"],
                        format!("step id `{id}` is already used on line {}", first_pos.line),
                    )
                    .hint("step ids must be unique; rename one of the steps");
            }
            None => {
                structure.index_of.insert(id.clone(), entry.index);
            }
        }
    }
}

/// The fields that apply only to some kinds of step, with those kinds.
const KIND_FIELDS: &[(&str, &[&str])] = &[
    ("with", &["uses", "playbook"]),
    ("retry", &["uses", "playbook", "notify"]),
    ("compensation", &["uses", "playbook"]),
    ("foreach", &["uses", "playbook", "notify"]),
    ("timeout", &["uses", "playbook", "wait", "notify"]),
    ("waive_approval", &["uses"]),
];

fn check_kind(index: usize, step: &Step, report: &mut Report<'_>) {
    let kinds = step.kinds();
    let kind = match kinds.as_slice() {
        [] => {
            report
                .at_value(Code::StepKind, &path!["steps", index], format!("step `{}` does nothing: it has none of `uses`, `approval`, `playbook`, `wait`, `notify`", step.id))
                .hint("give the step exactly one of `uses`, `approval`, `playbook`, `wait` or `notify`");
            return;
        }
        [one] => *one,
        [first, rest @ ..] => {
            let fields: Vec<&str> = kinds.iter().map(StepKind::field).collect();
            report
                .at_key(
                    Code::StepKind,
                    &path!["steps", index, rest[0].field()],
                    format!(
                        "step `{}` has both `{}` and `{}`; a step does exactly one thing",
                        step.id,
                        first.field(),
                        fields[1..].join("` and `")
                    ),
                )
                .hint(format!(
                    "keep `{}` and move `{}` into a step of its own",
                    first.field(),
                    fields[1..].join("`, `")
                ));
            return;
        }
    };
    let present = |field: &str| match field {
        "with" => !step.with.is_empty(),
        "retry" => step.retry.is_some(),
        "compensation" => step.compensation.is_some(),
        "foreach" => step.foreach.is_some(),
        "timeout" => step.timeout.is_some(),
        "waive_approval" => step.waive_approval.is_some(),
        _ => false,
    };
    for (field, kinds) in KIND_FIELDS {
        if present(field) && !kinds.contains(&kind.field()) {
            let hint = match (*field, kind) {
                ("timeout", StepKind::Approval(_)) => {
                    "an approval gate has its own `approval.timeout` and `on_timeout`".to_string()
                }
                _ => format!(
                    "`{field}` applies only to steps with `{}`",
                    kinds.join("`, `")
                ),
            };
            report
                .at_key(
                    Code::FieldNotForKind,
                    &path!["steps", index, *field],
                    format!(
                        "`{field}` does not apply to step `{}`, which is a `{}` step",
                        step.id,
                        kind.field()
                    ),
                )
                .hint(hint);
        }
    }
}

/// Checks `needs` and returns the edges (step → steps it needs) between known steps.
fn check_needs(doc: &Document, report: &mut Report<'_>, structure: &Structure) -> Vec<Vec<usize>> {
    let ids: Vec<&str> = structure.index_of.keys().map(String::as_str).collect();
    let mut edges = vec![Vec::new(); doc.steps.len()];
    for entry in &doc.steps {
        let mut seen = HashSet::new();
        for (j, need) in &entry.needs {
            let at = path!["steps", entry.index, "needs", *j];
            if !seen.insert(need.as_str()) {
                report.at_value(
                    Code::DuplicateDependency,
                    &at,
                    format!(
                        "`{need}` is listed twice in the `needs` of {}",
                        label(entry)
                    ),
                );
                continue;
            }
            match structure.index_of.get(need) {
                Some(&target) => edges[entry.index].push(target),
                None => {
                    let hint = did_you_mean(need, ids.iter().copied(), "steps");
                    report
                        .at_value(
                            Code::UnknownDependency,
                            &at,
                            format!("{} needs `{need}`, but no step has that id", label(entry)),
                        )
                        .hint(hint);
                }
            }
        }
    }
    edges
}

fn label(entry: &StepEntry) -> String {
    entry.id.as_ref().map_or_else(
        || format!("step #{}", entry.index + 1),
        |id| format!("step `{id}`"),
    )
}

/// Finds every elementary cycle reachable by depth-first search and reports
/// each once, printed as `a -> b -> c -> a` (each step needs the next).
fn check_cycles(doc: &Document, edges: &[Vec<usize>], report: &mut Report<'_>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&target) = edges[node].get(*next) {
                *next += 1;
                match mark[target] {
                    Mark::New => {
                        mark[target] = Mark::Active;
                        stack.push((target, 0));
                    }
                    Mark::Active => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            report_cycle(doc, edges, &cycle, report);
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
}

fn report_cycle(doc: &Document, edges: &[Vec<usize>], cycle: &[usize], report: &mut Report<'_>) {
    // Start the printout at the step defined first, so it reads in document order.
    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
    let ordered: Vec<usize> = cycle[first..]
        .iter()
        .chain(&cycle[..first])
        .copied()
        .collect();
    let name = |i: usize| {
        doc.steps[i]
            .id
            .clone()
            .unwrap_or_else(|| format!("#{}", i + 1))
    };
    let mut text: Vec<String> = ordered.iter().map(|&i| name(i)).collect();
    text.push(name(ordered[0]));
    // Point at the `needs` entry of the first step that continues the cycle.
    let head = ordered[0];
    let next = ordered.get(1).copied().unwrap_or(head);
    let entry = &doc.steps[head];
    let j = entry
        .needs
        .iter()
        .find(|(_, n)| doc.steps[next].id.as_deref() == Some(n.as_str()))
        .map_or(0, |(j, _)| *j);
    let _ = edges;
    let message = if ordered.len() == 1 {
        format!("step `{}` needs itself", name(head))
    } else {
        format!(
            "dependency cycle: {} (each step needs the next)",
            text.join(" -> ")
        )
    };
    report.at_value(
        Code::DependencyCycle,
        &path!["steps", head, "needs", j],
        message,
    );
}

/// Every step's transitive `needs`, computed once in post-order: a step's
/// ancestors are its needs and their ancestors. Back edges of a cycle (already
/// reported) are ignored, so steps in a cycle may miss some ancestors.
fn ancestors(edges: &[Vec<usize>]) -> Vec<FixedBitSet> {
    let n = edges.len();
    let mut sets = vec![FixedBitSet::with_capacity(n); n];
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&target) = edges[node].get(*next) {
                *next += 1;
                if state[target] == 0 {
                    state[target] = 1;
                    stack.push((target, 0));
                }
            } else {
                let mut set = FixedBitSet::with_capacity(n);
                for &need in &edges[node] {
                    if state[need] == 2 {
                        set.union_with(&sets[need]);
                    }
                    set.insert(need);
                }
                set.set(node, false);
                sets[node] = set;
                state[node] = 2;
                stack.pop();
            }
        }
    }
    sets
}

fn check_handlers(doc: &Document, structure: &Structure, report: &mut Report<'_>) {
    let mut referenced = HashSet::new();
    let mut lists: Vec<(Vec<crate::yaml::PathSeg>, &Vec<String>)> = Vec::new();
    if let Some(policy) = &doc.on_failure {
        lists.push((path!["on_failure", "handlers"].to_vec(), &policy.handlers));
    }
    for entry in &doc.steps {
        if let Some(policy) = entry.step.as_ref().and_then(|s| s.on_failure.as_ref()) {
            lists.push((
                path!["steps", entry.index, "on_failure", "handlers"].to_vec(),
                &policy.handlers,
            ));
        }
    }
    let handler_ids = || {
        doc.steps
            .iter()
            .filter(|e| e.handler)
            .filter_map(|e| e.id.as_deref())
    };
    for (at, handlers) in lists {
        for (j, name) in handlers.iter().enumerate() {
            let mut item = at.clone();
            item.push(j.into());
            match structure.index_of.get(name) {
                None => {
                    let hint = did_you_mean(name, handler_ids(), "handler steps");
                    report
                        .at_value(
                            Code::InvalidHandler,
                            &item,
                            format!("handler `{name}` is not a step of this playbook"),
                        )
                        .hint(hint);
                }
                Some(&i) if !doc.steps[i].handler => {
                    report
                        .at_value(
                            Code::InvalidHandler,
                            &item,
                            format!("`{name}` is named as a failure handler but is a normal step"),
                        )
                        .hint(format!(
                            "add `handler: true` to step `{name}`, or name a handler step"
                        ));
                }
                Some(&i) => {
                    referenced.insert(i);
                }
            }
        }
    }
    for entry in &doc.steps {
        for (j, need) in &entry.needs {
            let Some(&target) = structure.index_of.get(need) else {
                continue;
            };
            let at = path!["steps", entry.index, "needs", *j];
            match (entry.handler, doc.steps[target].handler) {
                (false, true) => {
                    report
                        .at_value(Code::InvalidHandler, &at, format!("{} needs `{need}`, a failure handler that runs only when something fails", label(entry)))
                        .hint("normal steps cannot wait for handlers; remove the dependency");
                }
                (true, false) => {
                    report
                        .at_value(Code::InvalidHandler, &at, format!("handler {} needs `{need}`, a normal step that may not have run when the handler starts", label(entry)))
                        .hint("read upstream results with `steps.<id>` instead, and let handlers need only handlers");
                }
                _ => {}
            }
        }
        if entry.handler && !referenced.contains(&entry.index) && entry.id.is_some() {
            report
                .at_value(
                    Code::NeverRuns,
                    &path!["steps", entry.index, "handler"],
                    format!(
                        "handler {} is never run: no `on_failure.handlers` names it",
                        label(entry)
                    ),
                )
                .hint("name it in the playbook's or a step's `on_failure.handlers`, or remove it");
        }
    }
}

fn check_never_runs(doc: &Document, structure: &Structure, report: &mut Report<'_>) {
    let disabled: Vec<usize> = doc
        .steps
        .iter()
        .filter(|e| {
            e.step
                .as_ref()
                .and_then(|s| s.condition.as_ref())
                .is_some_and(|c| condition_source(&c.0) == "false")
        })
        .map(|e| e.index)
        .collect();
    for &i in &disabled {
        report
            .at_value(
                Code::NeverRuns,
                &path!["steps", i, "if"],
                format!(
                    "{} never runs: its condition is always false",
                    label(&doc.steps[i])
                ),
            )
            .hint("remove the step, or make the condition depend on inputs or results");
    }
    for entry in &doc.steps {
        if disabled.contains(&entry.index) {
            continue;
        }
        if let Some(&cause) = disabled
            .iter()
            .find(|d| structure.ancestors[entry.index].contains(**d))
        {
            let cause_id = doc.steps[cause].id.clone().unwrap_or_default();
            report
                .at_value(
                    Code::NeverRuns,
                    &path!["steps", entry.index, "id"],
                    format!(
                        "{} never runs: it needs `{cause_id}`, which never runs",
                        label(entry)
                    ),
                )
                .hint(format!(
                    "fix the condition of `{cause_id}` or remove the dependency"
                ));
        }
    }
}

fn check_rollout(index: usize, step: &Step, report: &mut Report<'_>) {
    let Some(foreach) = &step.foreach else { return };
    let waves = &foreach.waves;
    let (mut last_count, mut last_percent) = (0u32, 0u8);
    for (j, wave) in waves.iter().enumerate() {
        let at = path!["steps", index, "foreach", "waves", j];
        let grows = match *wave {
            Amount::Count(0) | Amount::Percent(0) => {
                report.at_value(
                    Code::InvalidRollout,
                    &at,
                    format!("wave {} of step `{}` is empty", j + 1, step.id),
                );
                continue;
            }
            Amount::Count(n) => std::mem::replace(&mut last_count, n) < n && last_percent == 0,
            Amount::Percent(p) => std::mem::replace(&mut last_percent, p) < p,
        };
        if !grows {
            report
                .at_value(Code::InvalidRollout, &at, format!("wave {} (`{wave}`) of step `{}` does not grow the rollout", j + 1, step.id))
                .hint("waves are cumulative: each must reach further than the one before, counts before percentages");
        }
    }
    if let Some(last) = waves.last()
        && *last != Amount::Percent(100)
    {
        report
                .at_value(Code::InvalidRollout, &path!["steps", index, "foreach", "waves", waves.len() - 1], format!("the last wave of step `{}` is `{last}`, so the items beyond it would never run", step.id))
                .hint("end the waves with `100%`");
    }
    if foreach.pause.is_some() && waves.is_empty() {
        report
            .at_key(
                Code::InvalidRollout,
                &path!["steps", index, "foreach", "pause"],
                format!(
                    "`pause` on step `{}` has no effect without `waves`",
                    step.id
                ),
            )
            .hint("add `waves`, or remove `pause`");
    }
}

fn check_drill(doc: &Document, structure: &Structure, report: &mut Report<'_>) {
    let Some(drill) = &doc.drill else { return };
    let ids: Vec<&str> = structure.index_of.keys().map(String::as_str).collect();
    let mut found = [None, None];
    for (slot, field, id) in [(0, "start", &drill.start), (1, "end", &drill.end)] {
        match structure.index_of.get(id) {
            Some(&i) => found[slot] = Some(i),
            None => {
                let hint = did_you_mean(id, ids.iter().copied(), "steps");
                report
                    .at_value(
                        Code::UnknownDrillStep,
                        &path!["drill", field],
                        format!("`drill.{field}` names `{id}`, but no step has that id"),
                    )
                    .hint(hint);
            }
        }
    }
    if let [Some(start), Some(end)] = found
        && start != end
        && !structure.ancestors[end].contains(start)
    {
        report
                .at_value(Code::UnknownDrillStep, &path!["drill", "end"], format!("`drill.end` step `{}` does not come after `drill.start` step `{}`", drill.end, drill.start))
                .hint("the end step must (transitively) need the start step, so recovery time is measured forwards");
    }
}
