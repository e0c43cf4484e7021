//! The mail of a playbook's `notify:` step: the author's subject and body,
//! as plain text, with a line saying which run and step sent it.

use super::{NotifyMail, SUBJECT_TAG};
use crate::Mail;

/// The `notify:` step's mail. The subject gets the `[cordon]` tag unless
/// it already starts with it. It is not cleaned up: a line break in it
/// (header injection through a rendered value) makes the mailer refuse
/// the mail, and the step fails saying so.
pub fn notify_step(mail: &NotifyMail) -> Mail {
    let subject = if mail.subject.starts_with(SUBJECT_TAG) {
        mail.subject.clone()
    } else {
        format!("{SUBJECT_TAG} {}", mail.subject)
    };
    let mut text = mail.body.trim_end().to_string();
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    // "-- " opens a signature: mail clients set it apart.
    text.push_str(&format!(
        "-- \nSent by Cordon: run {}, step {}.\n",
        mail.run_id, mail.step
    ));
    Mail {
        to: mail.to.clone(),
        subject,
        text,
        html: None,
    }
}
