//! The outbox dispatcher: mails queued by the engine in the same commit as
//! what they announce (a gate opening, a reminder, an escalation, a failed
//! run) are rendered and sent here, at least once. Each approver gets a
//! mail of their own, with a one-time link that only they can use.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cordon_notify::templates::{self, ApprovalMail, PlanLine, RunFailedMail};
use cordon_notify::{Mail, MailError, Mailer};
use cordon_playbook::model::Approvers;
use cordon_storage::{ApprovalLink, ApprovalRecord, NotificationRecord};
use serde_json::Value;

use super::links::{LinkKeys, new_link_id};
use crate::config::Directory;
use crate::state::AppState;

/// How long a mailed link works when the gate has no earlier deadline.
const LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// Tries before a notification is given up (and the give-up audited).
const MAX_ATTEMPTS: u32 = 8;

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    state: AppState,
    mailer: Arc<Mailer>,
    keys: Arc<LinkKeys>,
    public_url: String,
}

/// Why one notification was not sent.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Storage(#[from] cordon_storage::StorageError),
    #[error(transparent)]
    Approval(#[from] cordon_runtime::approval::ApprovalError),
}

impl Dispatcher {
    /// A dispatcher mailing links that point at `public_url`.
    pub fn new(
        state: AppState,
        mailer: Arc<Mailer>,
        keys: Arc<LinkKeys>,
        public_url: String,
    ) -> Dispatcher {
        Dispatcher {
            state,
            mailer,
            keys,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// Sends due notifications every `every` until `stop` completes.
    pub async fn run(self, every: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "outbox: cannot read due notifications");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: sends every due notification. Returns how many were handled.
    pub async fn tick(&self) -> Result<usize, cordon_storage::StorageError> {
        let store = &self.state.store;
        let due = store.due_notifications(Utc::now(), 50).await?;
        for notification in &due {
            match self.send(notification).await {
                Ok(recipients) => {
                    store
                        .notification_sent(notification, &recipients, Utc::now())
                        .await?;
                }
                Err(e) => {
                    let transient = match &e {
                        SendError::Mail(m) => m.is_transient(),
                        SendError::Storage(s) => s.is_transient(),
                        SendError::Approval(_) => false,
                    };
                    let attempts = notification.attempts + 1;
                    let retry_at = (transient && attempts < MAX_ATTEMPTS).then(|| {
                        Utc::now() + chrono::Duration::seconds(5 * 2_i64.pow(attempts.min(10)))
                    });
                    tracing::warn!(id = notification.id, kind = %notification.kind, error = %e, retry = retry_at.is_some(), "notification not sent");
                    store
                        .notification_failed(notification, &e.to_string(), retry_at, Utc::now())
                        .await?;
                }
            }
        }
        Ok(due.len())
    }

    /// Sends one notification; the addresses it went to.
    async fn send(&self, notification: &NotificationRecord) -> Result<Vec<String>, SendError> {
        match (notification.kind.as_str(), &notification.request) {
            ("run_failed", _) => self.run_failed(notification).await,
            (kind, Some(request)) => self.approval(kind, request).await,
            (kind, None) => {
                tracing::warn!(kind, "a notification without a request; skipped");
                Ok(Vec::new())
            }
        }
    }

    async fn approval(&self, kind: &str, id: &str) -> Result<Vec<String>, SendError> {
        let request = self.state.engine.approval(id).await?;
        if !request.is_pending() {
            // Decided before the mail went out: nobody needs it any more.
            return Ok(Vec::new());
        }
        let run = self.state.store.run(&request.run).await?;
        let playbook = run
            .as_ref()
            .map_or_else(String::new, |r| format!("{}@{}", r.playbook, r.version));
        let mut sent = Vec::new();
        for (user, email) in recipients(&self.state.directory, &request) {
            let expires_at = request.deadline.map_or(Utc::now() + LINK_LIFETIME, |d| {
                d.min(Utc::now() + LINK_LIFETIME)
            });
            // Whole seconds: the signature covers the expiry as stored.
            let expires_at =
                chrono::DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at);
            let link = ApprovalLink {
                id: new_link_id(),
                request: request.id.clone(),
                user: user.clone(),
                expires_at,
                used_at: None,
            };
            self.state
                .store
                .issue_approval_link(&link, Utc::now())
                .await?;
            let mail = ApprovalMail {
                to: vec![email.clone()],
                run_id: request.run.clone(),
                playbook: playbook.clone(),
                gate: request.step.clone(),
                message: request.message.clone(),
                initiator: request.initiator.clone().unwrap_or_default(),
                min_approvals: request.min,
                approvals_so_far: request.approvals(),
                deadline: request.deadline,
                plan: plan_lines(&request.plan),
                plan_digest: request.plan_digest.clone(),
                link: format!("{}/approve/{}", self.public_url, self.keys.token(&link)),
            };
            let mail: Mail = match kind {
                "approval_reminder" => templates::approval_reminder(&mail),
                "approval_escalated" => templates::approval_escalated(&mail),
                _ => templates::approval_request(&mail),
            };
            self.mailer.send(&mail).await?;
            sent.push(email);
        }
        Ok(sent)
    }

    async fn run_failed(
        &self,
        notification: &NotificationRecord,
    ) -> Result<Vec<String>, SendError> {
        let Some(run_id) = &notification.run else {
            return Ok(Vec::new());
        };
        let Some(run) = self.state.store.run(run_id).await? else {
            return Ok(Vec::new());
        };
        let directory = &self.state.directory;
        let mut to: BTreeSet<String> = BTreeSet::new();
        // Whoever started it, and the admins.
        if let Some(by) = run.trigger.get("by").and_then(Value::as_str)
            && let Some(email) = directory.user(by).and_then(|u| u.email.clone())
        {
            to.insert(email);
        }
        for admin in directory.holders_of("admin") {
            if let Some(email) = directory.user(admin).and_then(|u| u.email.clone()) {
                to.insert(email);
            }
        }
        if to.is_empty() {
            return Ok(Vec::new());
        }
        let error = run
            .state
            .state
            .get("error")
            .map_or_else(|| "the run failed".into(), describe);
        let failed_steps = run
            .steps
            .iter()
            .filter(|s| s.state.status == "failed")
            .map(|s| {
                let reason = describe(&s.state.state);
                (s.key.clone(), reason)
            })
            .collect();
        let to: Vec<String> = to.into_iter().collect();
        let mail = templates::run_failed(&RunFailedMail {
            to: to.clone(),
            run_id: run.id.clone(),
            playbook: format!("{}@{}", run.playbook, run.version),
            error,
            failed_steps,
            run_url: Some(format!("{}/ui/runs/{}", self.public_url, run.id)),
        });
        self.mailer.send(&mail).await?;
        Ok(to)
    }
}

/// A stored error or state in words: its `message` or `reason` where it
/// has one (however deep), else its kind and step.
fn describe(value: &Value) -> String {
    fn find<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
        match value {
            Value::Object(map) => map
                .get(key)
                .and_then(Value::as_str)
                .or_else(|| map.values().find_map(|v| find(v, key))),
            _ => None,
        }
    }
    if let Some(text) = find(value, "message").or_else(|| find(value, "reason")) {
        return text.to_string();
    }
    match (find(value, "kind"), find(value, "step")) {
        (Some(kind), Some(step)) => format!("{kind} at step {step}"),
        (Some(kind), None) => kind.to_string(),
        _ => value.to_string(),
    }
}

/// Who the current stage's approvers are, with an address: the users it
/// names, the members of its groups, the holders of its roles — less the
/// run's initiator where they may not approve, and people who already
/// decided on this plan.
fn recipients(directory: &Directory, request: &ApprovalRecord) -> Vec<(String, String)> {
    let approvers: Approvers =
        serde_json::from_value(request.approvers.clone()).unwrap_or_default();
    let mut users: BTreeSet<String> = approvers.users.iter().cloned().collect();
    for group in &approvers.groups {
        users.extend(directory.members_of(group).map(str::to_string));
    }
    for role in &approvers.roles {
        users.extend(directory.holders_of(role).map(str::to_string));
    }
    users
        .into_iter()
        .filter(|u| request.allow_initiator || request.initiator.as_deref() != Some(u.as_str()))
        .filter(|u| !request.decided_by(u))
        .filter_map(|u| {
            let email = directory.user(&u)?.email.clone()?;
            Some((u, email))
        })
        .collect()
}

/// The plan as mail lines: each downstream step, its action, its devices.
fn plan_lines(plan: &Value) -> Vec<PlanLine> {
    plan.get("steps")
        .and_then(Value::as_array)
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let action = crate::plan_step_action(s).to_string();
                    let mut devices: Vec<String> = Vec::new();
                    if let Some(Value::Array(items)) = s.get("foreach") {
                        devices.extend(items.iter().filter_map(|i| {
                            i.as_str()
                                .map(str::to_string)
                                .or_else(|| i.get("id").and_then(Value::as_str).map(str::to_string))
                        }));
                    }
                    if let Some(Value::String(d)) = s.get("with").and_then(|w| w.get("device"))
                        && !d.contains("${{")
                    {
                        devices.push(d.clone());
                    }
                    PlanLine {
                        step: s
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        action,
                        devices,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}
