//! The mail that says a run failed, and where.

use std::fmt::Write as _;

use super::html::{button, escape, escape_lines, page};
use super::{RunFailedMail, SUBJECT_TAG, indent, one_line};
use crate::Mail;

/// A run failed: its error, each failed step's error, and a link to the
/// run if there is a page for it.
pub fn run_failed(mail: &RunFailedMail) -> Mail {
    let subject = one_line(&format!(
        "{SUBJECT_TAG} Run failed: {} (run {})",
        mail.playbook, mail.run_id
    ));
    Mail {
        to: mail.to.clone(),
        text: text(mail),
        html: Some(html(mail, &subject)),
        subject,
    }
}

fn text(mail: &RunFailedMail) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {} of {} failed.\n", mail.run_id, mail.playbook);
    let _ = writeln!(out, "Error:\n{}\n", indent(&mail.error, "  "));
    if !mail.failed_steps.is_empty() {
        let _ = writeln!(out, "Failed steps:");
        for (step, error) in &mail.failed_steps {
            let _ = writeln!(out, "  - {step}: {}", one_line(error));
        }
        out.push('\n');
    }
    match &mail.run_url {
        Some(url) => {
            let _ = writeln!(out, "The run: {url}");
        }
        None => {
            let _ = writeln!(out, "See it with: cordon runs show {}", mail.run_id);
        }
    }
    out
}

fn html(mail: &RunFailedMail, subject: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p>Run <code>{}</code> of <code>{}</code> failed.</p>",
        escape(&mail.run_id),
        escape(&mail.playbook)
    );
    let _ = writeln!(
        body,
        "<blockquote style=\"margin:12px 0;padding:8px 12px;border-left:4px solid #b42318;background:#fdf3f2;\">{}</blockquote>",
        escape_lines(&mail.error)
    );
    if !mail.failed_steps.is_empty() {
        let _ = writeln!(body, "<p><strong>Failed steps:</strong></p>\n<ul>");
        for (step, error) in &mail.failed_steps {
            let _ = writeln!(
                body,
                "<li><code>{}</code>: {}</li>",
                escape(step),
                escape(&one_line(error))
            );
        }
        let _ = writeln!(body, "</ul>");
    }
    match &mail.run_url {
        Some(url) => {
            let _ = write!(body, "{}", button(url, "Open the run"));
        }
        None => {
            let _ = write!(
                body,
                "<p>See it with: <code>cordon runs show {}</code></p>",
                escape(&mail.run_id)
            );
        }
    }
    page(subject, &body)
}
