//! The engine's side: [`NotifyingExecutor`] performs `notify:` steps by
//! sending their mail, and hands every other action to the executor it
//! wraps.

use std::sync::Arc;

use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::executor::{Action, BoxFuture, Executor, StepCall};
use serde_json::{Value, json};

use crate::error::MailError;
use crate::mailer::{Mail, Mailer};
use crate::recipients::Recipients;
use crate::templates::{NotifyMail, notify_step};

/// An executor that sends `notify:` steps' mail through a [`Mailer`] and
/// delegates everything else (plugin calls, compensations) to `inner`.
#[derive(Debug, Clone)]
pub struct NotifyingExecutor {
    mailer: Arc<Mailer>,
    inner: Arc<dyn Executor>,
    recipients: Recipients,
}

impl NotifyingExecutor {
    /// Sends notify steps through `mailer`; `inner` performs the rest.
    pub fn new(mailer: Arc<Mailer>, inner: Arc<dyn Executor>) -> NotifyingExecutor {
        NotifyingExecutor {
            mailer,
            inner,
            recipients: Recipients::default(),
        }
    }

    /// Resolves `group:` and `role:` recipients through `recipients`.
    pub fn with_recipients(mut self, recipients: Recipients) -> NotifyingExecutor {
        self.recipients = recipients;
        self
    }
}

/// The step's rendered fields as the template's data, with the values of
/// the run's secret inputs replaced: a secret does not leave by mail any
/// more than it reaches the audit log.
fn notify_mail(call: &StepCall, directory: &Recipients) -> Result<NotifyMail, MailError> {
    let inputs = &call.inputs;
    let mut to = Vec::new();
    for recipient in recipients(inputs.get("to"))? {
        let expanded = directory
            .expand(&recipient)
            .map_err(|reason| MailError::BadAddress {
                address: recipient.clone(),
                reason,
            })?;
        for address in expanded {
            if !to.contains(&address) {
                to.push(address);
            }
        }
    }
    let subject = match inputs.get("subject") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => {
            return Err(MailError::BadMessage("the step has no subject".into()));
        }
        // A subject that rendered to a number or a list: its JSON text.
        Some(other) => other.to_string(),
    };
    let body = match inputs.get("body") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    Ok(NotifyMail {
        to,
        subject: redact(&subject, &call.secrets),
        body: redact(&body, &call.secrets),
        run_id: call.run.clone(),
        step: call.step.clone(),
    })
}

/// `to` rendered: strings, or lists of strings (an expression such as
/// `${{ inputs.oncall }}` may render to a list).
fn recipients(to: Option<&Value>) -> Result<Vec<String>, MailError> {
    let mut out = Vec::new();
    let mut add = |value: &Value| match value {
        Value::String(s) => {
            out.push(s.clone());
            Ok(())
        }
        other => Err(MailError::BadAddress {
            address: other.to_string(),
            reason: "a recipient must render to a string".into(),
        }),
    };
    match to {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Array(inner) => inner.iter().try_for_each(&mut add)?,
                    other => add(other)?,
                }
            }
        }
        Some(one @ Value::String(_)) => add(one)?,
        _ => return Err(MailError::BadMessage("the step has no recipient".into())),
    }
    Ok(out)
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |acc, secret| {
            acc.replace(secret.as_str(), "[secret]")
        })
}

/// The attempt's error: timeouts are timeouts; every other failure is the
/// action's own, retryable exactly when the mail error is transient
/// (`ErrorKind::Unavailable` is never retried, and a 4xx reply or an
/// unreachable server should be).
fn attempt_error(e: &MailError) -> AttemptError {
    let kind = match e {
        MailError::Timeout { .. } => ErrorKind::Timeout,
        _ => ErrorKind::Plugin,
    };
    AttemptError {
        kind,
        message: format!("notify: error[{}]: {e}", e.code()),
        retryable: e.is_transient(),
    }
}

/// A dry run's outputs: what would be sent, under `planned`, and the same
/// as an intent under `_plan`, where `cordon run --dry-run` lists every
/// step's intended side effects.
fn planned(mailer: &Mailer, mail: &Mail) -> Value {
    json!({
        "planned": {
            "from": mailer.from_address(),
            "to": mail.to,
            "subject": mail.subject,
            "server": mailer.server(),
        },
        "_plan": [{
            "kind": "mail.send",
            "target": mail.to.join(", "),
            "detail": {"subject": mail.subject, "server": mailer.server()},
            "by_host": true,
        }],
    })
}

impl Executor for NotifyingExecutor {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        if call.action != Action::Notify {
            return self.inner.execute(call);
        }
        let mailer = self.mailer.clone();
        let mail = notify_mail(&call, &self.recipients)
            .map(|data| notify_step(&data))
            .map_err(|e| attempt_error(&e));
        Box::pin(async move {
            let mail = mail?;
            if call.dry_run {
                // Checked as a send would be (addresses, subject), never sent.
                mailer.check(&mail).map_err(|e| attempt_error(&e))?;
                return Ok(planned(&mailer, &mail));
            }
            // The same Message-ID for every execution of this attempt: a
            // re-run after a crash delivers a duplicate that clients fold.
            let id = mailer.message_id_for(call.key.as_str());
            let id = mailer
                .send_as(&mail, id)
                .await
                .map_err(|e| attempt_error(&e))?;
            Ok(json!({"message_id": id, "to": mail.to}))
        })
    }

    fn compensate(&self, call: StepCall, outputs: Value) -> BoxFuture<Result<(), String>> {
        if call.action != Action::Notify {
            return self.inner.compensate(call, outputs);
        }
        Box::pin(async { Err("a sent mail cannot be recalled: notify has no undo".to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_may_be_strings_or_lists() {
        let to = json!(["a@x.org", ["b@x.org", "c@x.org"]]);
        let r = recipients(Some(&to)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r, ["a@x.org", "b@x.org", "c@x.org"]);
        let r = recipients(Some(&json!("a@x.org"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r, ["a@x.org"]);
        let e = recipients(Some(&json!([42]))).err();
        assert_eq!(e.map(|e| e.code()), Some("bad_address"));
        let e = recipients(None).err();
        assert_eq!(e.map(|e| e.code()), Some("bad_message"));
    }

    #[test]
    fn secrets_are_redacted() {
        let secrets = vec!["s3cr3t".to_string(), String::new()];
        assert_eq!(redact("token s3cr3t!", &secrets), "token [secret]!");
        assert_eq!(redact("nothing", &secrets), "nothing");
    }

    #[test]
    fn transient_mail_errors_are_retryable_attempt_errors() {
        let e = attempt_error(&MailError::Unreachable {
            server: "h:25".into(),
            message: "connection refused".into(),
        });
        assert!(e.is_transient());
        assert!(
            e.message.contains("error[smtp_unreachable]"),
            "{}",
            e.message
        );
        let e = attempt_error(&MailError::Timeout {
            server: "h:25".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.is_transient());
        let e = attempt_error(&MailError::BadAddress {
            address: "x".into(),
            reason: "y".into(),
        });
        assert!(!e.is_transient());
    }
}
