//! Safety rules: irreversible actions need a person's approval upstream, and
//! approval gates must be able to open (and not open by themselves).

use super::graph_checks::Structure;
use super::lower::Document;
use super::report::{Report, path};
use crate::catalog::PluginCatalog;
use crate::codes::Code;
use crate::model::OnTimeout;

pub(crate) fn check(
    doc: &Document,
    structure: &Structure,
    plugins: &PluginCatalog,
    report: &mut Report<'_>,
) {
    for entry in &doc.steps {
        let Some(step) = &entry.step else { continue };
        let i = entry.index;
        if let Some(approval) = &step.approval {
            check_gate(i, approval, report);
        }
        let Some(uses) = &step.uses else { continue };
        let Some(plugin) = plugins.get(&uses.name, uses.major) else {
            continue;
        };
        if !plugin.irreversible {
            if step.waive_approval.is_some() {
                report
                    .at_key(
                        Code::UnusedWaiver,
                        &path!["steps", i, "waive_approval"],
                        format!(
                            "step `{}` waives approval, but `{uses}` is not irreversible",
                            step.id
                        ),
                    )
                    .hint("remove `waive_approval`; it only applies to irreversible actions");
            }
            continue;
        }
        if step.waive_approval.is_some() {
            continue;
        }
        let gates: Vec<(&str, OnTimeout)> = structure.ancestors[i]
            .ones()
            .filter_map(|a| {
                let entry = &doc.steps[a];
                let upstream = entry.step.as_ref()?;
                match &upstream.approval {
                    Some(approval) => Some((upstream.id.as_str(), approval.on_timeout)),
                    // A gate whose `approval` block is broken is reported on its own;
                    // counting it here keeps that one mistake from cascading.
                    None if entry.pruned.contains("approval") => {
                        Some((upstream.id.as_str(), OnTimeout::Reject))
                    }
                    None => None,
                }
            })
            .collect();
        if gates.is_empty() {
            let why = if step.handler {
                "a failure handler cannot sit behind a gate"
            } else {
                "no approval gate is upstream of it"
            };
            report.at_value(
                Code::IrreversibleWithoutApproval,
                &path!["steps", i, "uses"],
                format!(
                    "step `{}` runs the irreversible action `{uses}`, but {why}",
                    step.id
                ),
            );
        } else if gates
            .iter()
            .all(|(_, on_timeout)| *on_timeout == OnTimeout::Approve)
        {
            let mut names: Vec<String> = gates.iter().map(|(id, _)| format!("`{id}`")).collect();
            names.sort();
            report.at_value(
                Code::GateAutoApproves,
                &path!["steps", i, "uses"],
                format!("step `{}` runs the irreversible action `{uses}`, protected only by {} which approve(s) on timeout", step.id, names.join(", ")),
            );
        }
    }
}

fn check_gate(i: usize, approval: &crate::model::Approval, report: &mut Report<'_>) {
    if approval.approvers.is_empty() {
        report.at_value(
            Code::NoApprovers,
            &path!["steps", i, "approval", "approvers"],
            "the gate lists no approvers, so it could never open",
        );
    }
    match (&approval.on_timeout, &approval.escalate) {
        (OnTimeout::Escalate, None) => {
            report.at_value(
                Code::MissingEscalation,
                &path!["steps", i, "approval", "on_timeout"],
                "`on_timeout: escalate` without an `escalate` block: nobody to escalate to",
            );
        }
        (OnTimeout::Reject | OnTimeout::Approve, Some(_)) => {
            report
                .at_key(
                    Code::MissingEscalation,
                    &path!["steps", i, "approval", "escalate"],
                    "`escalate` is never used: `on_timeout` is not `escalate`",
                )
                .hint("set `on_timeout: escalate`, or remove the `escalate` block");
        }
        _ => {}
    }
    if let Some(escalation) = &approval.escalate
        && escalation.approvers.is_empty()
    {
        report.at_value(
            Code::NoApprovers,
            &path!["steps", i, "approval", "escalate", "approvers"],
            "the escalation lists no approvers",
        );
    }
    if approval.timeout.is_none() && approval.on_timeout != OnTimeout::Reject {
        report
            .at_value(
                Code::MissingEscalation,
                &path!["steps", i, "approval", "on_timeout"],
                "`on_timeout` is set but the gate has no `timeout`, so it never fires",
            )
            .hint("add `timeout:` to the approval");
    }
    let approvers = &approval.approvers;
    let distinct_users = approvers
        .users
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if approvers.groups.is_empty()
        && approvers.roles.is_empty()
        && !approvers.users.is_empty()
        && approval.min as usize > distinct_users
    {
        report.at_value(
            Code::QuorumUnreachable,
            &path!["steps", i, "approval", "min"],
            format!(
                "the gate needs {} distinct approvals but lists only {distinct_users} user(s)",
                approval.min
            ),
        );
    }
}
