//! From a validated playbook to an execution plan.

use std::collections::{BTreeMap, HashMap};

use cordon_playbook::model::{ForeachItems, Step, Wait};
use cordon_playbook::{PluginCatalog, ValidPlaybook};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef};

use crate::plan::{ExecutionPlan, FanOut, GateInfo, PlanNode, PlanStepKind};

/// Compiles `playbook`. Validation already guaranteed unique ids, known
/// `needs`, no cycles and one kind per step, so this cannot fail; the
/// catalog supplies plugin versions and the irreversible/compensable flags.
pub fn compile(valid: &ValidPlaybook, plugins: &PluginCatalog) -> ExecutionPlan {
    let playbook = valid.playbook();
    // Edges run from a step to the steps that need it (execution order).
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let index: Vec<NodeIndex> = (0..playbook.steps.len())
        .map(|i| graph.add_node(i))
        .collect();
    let by_id: HashMap<&str, usize> = playbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for (i, step) in playbook.steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(&from) = by_id.get(need.as_str()) {
                graph.add_edge(index[from], index[i], ());
            }
        }
    }
    let order = topological_order(&graph, playbook.steps.len());

    let mut stage = vec![0usize; playbook.steps.len()];
    for &i in &order {
        stage[i] = graph
            .edges_directed(index[i], Direction::Incoming)
            .map(|e| stage[graph[e.source()]] + 1)
            .max()
            .unwrap_or(0);
    }

    let downstream_of = |i: usize| -> Vec<usize> {
        let mut dfs = Dfs::new(&graph, index[i]);
        let mut found = Vec::new();
        while let Some(n) = dfs.next(&graph) {
            if graph[n] != i {
                found.push(graph[n]);
            }
        }
        found
    };
    let flags = |step: &Step| {
        step.uses
            .as_ref()
            .and_then(|u| plugins.get(&u.name, u.major))
            .map_or((false, false), |d| {
                (
                    d.irreversible,
                    d.compensable && step.compensation.as_ref().is_none_or(|c| c.enabled),
                )
            })
    };

    let mut gates = BTreeMap::new();
    let mut guarded_by: Vec<Vec<String>> = vec![Vec::new(); playbook.steps.len()];
    for (i, step) in playbook.steps.iter().enumerate() {
        if step.approval.is_none() {
            continue;
        }
        let mut below = downstream_of(i);
        below.sort_by_key(|d| order.iter().position(|o| o == d));
        for &d in &below {
            guarded_by[d].push(step.id.clone());
        }
        let irreversible = below
            .iter()
            .filter(|&&d| flags(&playbook.steps[d]).0)
            .map(|&d| playbook.steps[d].id.clone())
            .collect();
        gates.insert(
            step.id.clone(),
            GateInfo {
                downstream: below
                    .iter()
                    .map(|&d| playbook.steps[d].id.clone())
                    .collect(),
                irreversible,
            },
        );
    }

    let mut nodes = Vec::new();
    let mut handlers = Vec::new();
    let mut stages: Vec<Vec<String>> = Vec::new();
    for &i in &order {
        let step = &playbook.steps[i];
        let (irreversible, compensable) = flags(step);
        let node = PlanNode {
            id: step.id.clone(),
            kind: kind_of(step, plugins),
            needs: step.needs.clone(),
            stage: stage[i],
            condition: step.condition.as_ref().map(|c| c.0.clone()),
            fan_out: step.foreach.as_ref().map(|f| FanOut {
                items: match &f.items {
                    ForeachItems::List(items) => serde_json::to_string(items).unwrap_or_default(),
                    ForeachItems::Expression(e) => e.0.clone(),
                },
                concurrency: f.concurrency,
                waves: f.waves.iter().map(ToString::to_string).collect(),
                max_failures: f.max_failures.map(|m| m.to_string()),
                pause: f.pause.map(|p| p.to_string()),
            }),
            irreversible,
            compensable,
            guarded_by: std::mem::take(&mut guarded_by[i]),
            handler: step.handler,
        };
        if step.handler {
            handlers.push(step.id.clone());
        } else {
            if stages.len() <= stage[i] {
                stages.resize(stage[i] + 1, Vec::new());
            }
            stages[stage[i]].push(step.id.clone());
        }
        nodes.push(node);
    }
    stages.retain(|s| !s.is_empty());
    ExecutionPlan {
        playbook: playbook.name.clone(),
        version: playbook.version.clone(),
        nodes,
        stages,
        handlers,
        gates,
        timeout: playbook.timeout.map(|t| t.to_string()),
        compensate: playbook.on_failure.as_ref().is_none_or(|p| p.compensate),
    }
}

/// Kahn's algorithm, always taking the ready step defined first, so the
/// order is stable and reads like the file.
fn topological_order(graph: &DiGraph<usize, ()>, len: usize) -> Vec<usize> {
    let mut indegree: Vec<usize> = (0..len)
        .map(|i| {
            graph
                .edges_directed(NodeIndex::new(i), Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..len).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(len);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for edge in graph.edges_directed(NodeIndex::new(i), Direction::Outgoing) {
            let j = graph[edge.target()];
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    order
}

fn kind_of(step: &Step, plugins: &PluginCatalog) -> PlanStepKind {
    if let Some(uses) = &step.uses {
        let version = plugins
            .get(&uses.name, uses.major)
            .map(|d| d.version.to_string())
            .unwrap_or_default();
        return PlanStepKind::Action {
            plugin: uses.to_string(),
            version,
        };
    }
    if let Some(approval) = &step.approval {
        let a = &approval.approvers;
        let approvers = [
            ("users", &a.users),
            ("groups", &a.groups),
            ("roles", &a.roles),
        ]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(what, list)| format!("{what}: {}", list.join(", ")))
        .collect();
        return PlanStepKind::Approval {
            min: approval.min,
            approvers,
        };
    }
    if let Some(playbook) = &step.playbook {
        return PlanStepKind::Playbook {
            reference: playbook.to_string(),
        };
    }
    if let Some(wait) = &step.wait {
        let what = match wait {
            Wait::For(d) => d.to_string(),
            Wait::Until(u) => format!(
                "until {} (every {}, up to {})",
                u.until.0, u.every, u.timeout
            ),
        };
        return PlanStepKind::Wait { what };
    }
    let to = step
        .notify
        .as_ref()
        .map(|n| n.to.clone())
        .unwrap_or_default();
    PlanStepKind::Notify { to }
}
