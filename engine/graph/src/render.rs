//! Mermaid and Graphviz DOT renderings of a plan. Approval gates and
//! irreversible actions are drawn so nobody can miss them: gates as yellow
//! hexagons, irreversible actions with a thick red double border.

use std::fmt::Write as _;

use crate::plan::{ExecutionPlan, PlanNode, PlanStepKind};

/// The second line of a node's label: what the step does.
fn detail(node: &PlanNode) -> String {
    let mut parts = vec![match &node.kind {
        PlanStepKind::Action { plugin, .. } => plugin.clone(),
        PlanStepKind::Approval { min, approvers } => {
            format!("approval: {min} of {}", approvers.join("; "))
        }
        PlanStepKind::Playbook { reference } => format!("playbook {reference}"),
        PlanStepKind::Wait { what } => format!("wait {what}"),
        PlanStepKind::Notify { to } => format!("notify {}", to.join(", ")),
    }];
    if let Some(fan) = &node.fan_out {
        let mut text = format!("for each of {}", fan.items);
        if !fan.waves.is_empty() {
            let _ = write!(text, ", waves {}", fan.waves.join(" → "));
        }
        if let Some(max) = &fan.max_failures {
            let _ = write!(text, ", abort after {max} failures");
        }
        parts.push(text);
    }
    if let Some(condition) = &node.condition {
        parts.push(format!("if {condition}"));
    }
    if node.irreversible {
        parts.push("IRREVERSIBLE".to_string());
    }
    parts.join("\n")
}

fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;").replace('\n', "<br/>")
}

/// Renders the plan as a Mermaid flowchart.
pub fn to_mermaid(plan: &ExecutionPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\ntitle: {}@{}\n---\nflowchart TD",
        plan.playbook(),
        plan.version()
    );
    let ids: std::collections::HashMap<&str, String> = plan
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), format!("s{i}")))
        .collect();
    let shape = |node: &PlanNode, label: &str| match node.kind {
        PlanStepKind::Approval { .. } => format!("{{{{\"{label}\"}}}}"),
        PlanStepKind::Playbook { .. } => format!("[[\"{label}\"]]"),
        PlanStepKind::Wait { .. } => format!("([\"{label}\"])"),
        PlanStepKind::Notify { .. } => format!(">\"{label}\"]"),
        PlanStepKind::Action { .. } if node.fan_out.is_some() => format!("[/\"{label}\"/]"),
        PlanStepKind::Action { .. } => format!("[\"{label}\"]"),
    };
    let write_node = |out: &mut String, node: &PlanNode, indent: &str| {
        let label = mermaid_text(&format!("{}\n{}", node.id, detail(node)));
        let _ = writeln!(
            out,
            "{indent}{}{}",
            ids[node.id.as_str()],
            shape(node, &label)
        );
    };
    for node in plan.nodes().iter().filter(|n| !n.handler) {
        write_node(&mut out, node, "    ");
    }
    if !plan.handlers().is_empty() {
        let _ = writeln!(out, "    subgraph on_failure [on failure]");
        for node in plan.nodes().iter().filter(|n| n.handler) {
            write_node(&mut out, node, "        ");
        }
        let _ = writeln!(out, "    end");
    }
    for node in plan.nodes() {
        for need in &node.needs {
            let _ = writeln!(
                out,
                "    {} --> {}",
                ids[need.as_str()],
                ids[node.id.as_str()]
            );
        }
    }
    let _ = writeln!(
        out,
        "    classDef gate fill:#fff3bf,stroke:#e67700,stroke-width:2px,color:#000"
    );
    let _ = writeln!(
        out,
        "    classDef irreversible fill:#ffe3e3,stroke:#c92a2a,stroke-width:4px,color:#000"
    );
    let _ = writeln!(out, "    classDef handler stroke-dasharray:5 5");
    for (class, pick) in [
        (
            "gate",
            (|n: &PlanNode| matches!(n.kind, PlanStepKind::Approval { .. }))
                as fn(&PlanNode) -> bool,
        ),
        ("irreversible", |n: &PlanNode| n.irreversible),
        ("handler", |n: &PlanNode| n.handler),
    ] {
        let members: Vec<&str> = plan
            .nodes()
            .iter()
            .filter(|n| pick(n))
            .map(|n| ids[n.id.as_str()].as_str())
            .collect();
        if !members.is_empty() {
            let _ = writeln!(out, "    class {} {class}", members.join(","));
        }
    }
    out
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the plan as a Graphviz DOT digraph.
pub fn to_dot(plan: &ExecutionPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph \"{}\" {{",
        dot_text(&format!("{}@{}", plan.playbook(), plan.version()))
    );
    let _ = writeln!(out, "    rankdir=TB;");
    let _ = writeln!(
        out,
        "    node [fontname=\"Helvetica\", shape=box, style=rounded];"
    );
    let write_node = |out: &mut String, node: &PlanNode, indent: &str| {
        let label = dot_text(&format!("{}\n{}", node.id, detail(node)));
        let style = match (&node.kind, node.irreversible) {
            (PlanStepKind::Approval { .. }, _) => {
                "shape=hexagon, style=filled, fillcolor=\"#fff3bf\", color=\"#e67700\", penwidth=2"
            }
            (_, true) => {
                "style=\"filled,bold\", fillcolor=\"#ffe3e3\", color=\"#c92a2a\", penwidth=3, peripheries=2"
            }
            (PlanStepKind::Playbook { .. }, _) => "shape=component",
            (PlanStepKind::Wait { .. }, _) => "shape=ellipse",
            (PlanStepKind::Notify { .. }, _) => "shape=note",
            (PlanStepKind::Action { .. }, _) if node.fan_out.is_some() => {
                "style=\"rounded\", peripheries=3"
            }
            (PlanStepKind::Action { .. }, _) => "style=rounded",
        };
        let dashed = if node.handler { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "{indent}\"{}\" [label=\"{label}\", {style}{dashed}];",
            dot_text(&node.id)
        );
    };
    for node in plan.nodes().iter().filter(|n| !n.handler) {
        write_node(&mut out, node, "    ");
    }
    if !plan.handlers().is_empty() {
        let _ = writeln!(
            out,
            "    subgraph cluster_on_failure {{\n        label=\"on failure\";\n        style=dashed;"
        );
        for node in plan.nodes().iter().filter(|n| n.handler) {
            write_node(&mut out, node, "        ");
        }
        let _ = writeln!(out, "    }}");
    }
    for node in plan.nodes() {
        for need in &node.needs {
            let _ = writeln!(
                out,
                "    \"{}\" -> \"{}\";",
                dot_text(need),
                dot_text(&node.id)
            );
        }
    }
    out.push_str("}\n");
    out
}
