//! Approval mails (SPEC §7): the request, the reminder and the
//! escalation. All three show the same thing — the question, the exact
//! plan with its devices, the digest the decision is bound to, the quorum
//! and the deadline — and a one-time link to the confirmation page.
//! Opening the link decides nothing: mail scanners follow links.

use std::fmt::Write as _;

use super::html::{button, escape, escape_lines, page};
use super::{ApprovalMail, SUBJECT_TAG, device_list, format_time, indent, one_line};
use crate::Mail;

/// Which of the three approval mails.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Request,
    Reminder,
    Escalated,
}

/// The first mail to the approvers of a gate.
pub fn approval_request(mail: &ApprovalMail) -> Mail {
    approval(mail, Kind::Request)
}

/// A reminder while the gate is still undecided.
pub fn approval_reminder(mail: &ApprovalMail) -> Mail {
    approval(mail, Kind::Reminder)
}

/// The mail to the group a gate was escalated to after its timeout.
pub fn approval_escalated(mail: &ApprovalMail) -> Mail {
    approval(mail, Kind::Escalated)
}

fn approval(mail: &ApprovalMail, kind: Kind) -> Mail {
    let what = match kind {
        Kind::Request => "Approval needed",
        Kind::Reminder => "Reminder: approval still needed",
        Kind::Escalated => "Escalated: approval needed",
    };
    let subject = one_line(&format!(
        "{SUBJECT_TAG} {what}: {} at gate {} (run {})",
        mail.playbook, mail.gate, mail.run_id
    ));
    Mail {
        to: mail.to.clone(),
        text: text(mail, kind),
        html: Some(html(mail, kind, &subject)),
        subject,
    }
}

/// The opening sentence.
fn intro(mail: &ApprovalMail, kind: Kind) -> String {
    let run = format!(
        "run {} of {}, started by {},",
        mail.run_id, mail.playbook, mail.initiator
    );
    match kind {
        Kind::Request => format!(
            "Your approval is requested: {run} waits at gate \"{}\".",
            mail.gate
        ),
        Kind::Reminder => format!(
            "Reminder: {run} still waits for approval at gate \"{}\".",
            mail.gate
        ),
        Kind::Escalated => format!(
            "Escalated to you: {run} waits at gate \"{}\", and its approvers did not decide in time.",
            mail.gate
        ),
    }
}

fn quorum(mail: &ApprovalMail) -> String {
    format!(
        "{} given, {} needed",
        mail.approvals_so_far, mail.min_approvals
    )
}

fn deadline(mail: &ApprovalMail) -> String {
    mail.deadline
        .as_ref()
        .map_or_else(|| "none".to_string(), format_time)
}

/// Why opening the link is safe, and what the decision is bound to.
const LINK_NOTE: &str = "Opening the link does not approve or deny anything: it opens a confirmation page that shows this plan again, where you decide. The link works once.";
const DIGEST_NOTE: &str = "The decision is bound to this plan: if the plan changes before the gate is decided, approvals given for it no longer count.";

fn text(mail: &ApprovalMail, kind: Kind) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", intro(mail, kind));
    let _ = writeln!(out, "Question:\n{}\n", indent(&mail.message, "  "));
    let _ = writeln!(out, "Approvals: {}", quorum(mail));
    let _ = writeln!(out, "Deadline:  {}\n", deadline(mail));
    if mail.plan.is_empty() {
        let _ = writeln!(out, "If approved: no step runs after this gate.\n");
    } else {
        let _ = writeln!(out, "If approved, these steps run:");
        for line in &mail.plan {
            let _ = write!(out, "  - {}: {}", line.step, line.action);
            if !line.devices.is_empty() {
                let _ = write!(out, " on {}", device_list(&line.devices));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Plan digest: {}", mail.plan_digest);
    let _ = writeln!(out, "{DIGEST_NOTE}\n");
    let _ = writeln!(out, "To decide, open:\n  {}\n", mail.link);
    let _ = writeln!(out, "{LINK_NOTE}");
    out
}

fn html(mail: &ApprovalMail, kind: Kind, subject: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<p>{}</p>", escape(&intro(mail, kind)));
    let _ = writeln!(
        body,
        "<blockquote style=\"margin:12px 0;padding:8px 12px;border-left:4px solid #1f4e8c;background:#f3f6fa;\">{}</blockquote>",
        escape_lines(&mail.message)
    );
    let _ = writeln!(
        body,
        "<table style=\"border-collapse:collapse;\">\n<tr><td style=\"padding:2px 12px 2px 0;\">Approvals</td><td>{}</td></tr>\n<tr><td style=\"padding:2px 12px 2px 0;\">Deadline</td><td>{}</td></tr>\n</table>",
        escape(&quorum(mail)),
        escape(&deadline(mail))
    );
    if mail.plan.is_empty() {
        let _ = writeln!(body, "<p>If approved: no step runs after this gate.</p>");
    } else {
        let _ = writeln!(
            body,
            "<p><strong>If approved, these steps run:</strong></p>"
        );
        let _ = writeln!(
            body,
            "<table style=\"border-collapse:collapse;\">\n<tr><th align=\"left\" style=\"padding:4px 12px 4px 0;border-bottom:1px solid #cccccc;\">Step</th><th align=\"left\" style=\"padding:4px 12px 4px 0;border-bottom:1px solid #cccccc;\">Action</th><th align=\"left\" style=\"padding:4px 0;border-bottom:1px solid #cccccc;\">Devices</th></tr>"
        );
        for line in &mail.plan {
            let _ = writeln!(
                body,
                "<tr><td style=\"padding:4px 12px 4px 0;\"><code>{}</code></td><td style=\"padding:4px 12px 4px 0;\"><code>{}</code></td><td style=\"padding:4px 0;\">{}</td></tr>",
                escape(&line.step),
                escape(&line.action),
                escape(&device_list(&line.devices))
            );
        }
        let _ = writeln!(body, "</table>");
    }
    let _ = writeln!(
        body,
        "<p>Plan digest: <code>{}</code><br>\n{}</p>",
        escape(&mail.plan_digest),
        escape(DIGEST_NOTE)
    );
    let _ = writeln!(body, "{}", button(&mail.link, "Open the confirmation page"));
    let _ = write!(body, "<p>{}</p>", escape(LINK_NOTE));
    page(subject, &body)
}
