//! What a delivery does: for each published playbook (its newest version)
//! binding the source, each alert its `when:` admits starts a run (firing)
//! or is recorded (resolved, starting the `on_resolved` follow-up if any) —
//! once. A repeat is recognised by its delivery key (source, binding,
//! dedupe key, status) in storage, so retries, restarts and other nodes
//! start nothing twice.
//!
//! A delivery that starts a run commits with it: the delivery row, its
//! `webhook.accepted` event, the run and `run.created` are one transaction
//! (`Engine::start_run_for_delivery`), and the run's id is a UUIDv5 of the
//! delivery key. A run the engine refuses (inputs that do not fit, a
//! `reject` concurrency limit) records nothing but a `webhook.refused`
//! event, so the alert is new again once the cause is fixed.

use std::collections::BTreeMap;

use chrono::Utc;
use cordon_playbook::model::{StartMode, Template, WebhookBinding};
use cordon_runtime::evaluate::Scope;
use cordon_runtime::{RunRequest, StartError};
use cordon_storage::{DeliveryOutcome, NewDelivery, NewEvent};
use serde::Serialize;
use serde_json::{Value, json};

use super::Source;
use super::payload::{Alert, Delivery, Status};
use crate::error::ApiError;
use crate::state::AppState;

/// The answer to an accepted delivery (202).
#[derive(Debug, Default, Serialize)]
pub(crate) struct Outcome {
    /// New deliveries recorded (firing alerts that started a run, resolutions).
    pub(crate) accepted: u32,
    /// Repeats of deliveries recorded before: nothing started.
    pub(crate) deduplicated: u32,
    /// Resolutions recorded (included in `accepted`).
    pub(crate) resolved: u32,
    /// The runs this delivery started.
    pub(crate) runs: Vec<String>,
    /// The runs the repeats had started before.
    pub(crate) existing_runs: Vec<String>,
    /// Alerts a binding matched but could not start, with why.
    pub(crate) refused: Vec<Value>,
}

/// One published playbook's binding of the source.
struct Bound {
    playbook: String,
    version: String,
    index: usize,
    binding: WebhookBinding,
}

impl Bound {
    fn id(&self) -> String {
        format!("{}#{}", self.playbook, self.index)
    }
}

/// The bindings of `source` in the newest version of every published playbook.
async fn bindings(state: &AppState, source: &str) -> Result<Vec<Bound>, ApiError> {
    let mut out = Vec::new();
    for summary in state.store.playbooks().await? {
        let cached = state.webhooks.cached_bindings(&summary.digest);
        let list = match cached {
            Some(list) => list,
            None => {
                let Some(version) = state.store.version(&summary.name, &summary.latest).await?
                else {
                    continue;
                };
                state
                    .webhooks
                    .cache_bindings(&version.digest, version.playbook.triggers.webhooks.clone())
            }
        };
        for (index, binding) in list.iter().enumerate() {
            if binding.source == source {
                out.push(Bound {
                    playbook: summary.name.clone(),
                    version: summary.latest.clone(),
                    index,
                    binding: binding.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn scope(alert: &Alert) -> Scope {
    Scope {
        alert: Some(alert.value.clone()),
        ..Scope::default()
    }
}

/// Renders a binding's `inputs` from one alert.
fn render(
    templates: &BTreeMap<String, Template>,
    alert: &Alert,
) -> Result<BTreeMap<String, Value>, String> {
    let scope = scope(alert);
    templates
        .iter()
        .map(|(name, template)| {
            scope
                .render(&Value::String(template.0.clone()))
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("input `{name}`: {e}"))
        })
        .collect()
}

/// The run id a delivery key maps to.
fn run_id(source: &str, binding: &str, dedup_key: &str, status: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!(
            "cordon:webhook/{}",
            cordon_storage::delivery_key(source, binding, dedup_key, status)
        )
        .as_bytes(),
    )
    .to_string()
}

/// What is known of one unit of work: one alert, or one group.
struct Unit<'a> {
    status: Status,
    /// The alert inputs render from (the group's first).
    alert: &'a Alert,
    /// Every alert of the unit (one unless per group).
    alerts: Vec<&'a Alert>,
    dedup_key: String,
}

fn device(alert: &Alert) -> Option<String> {
    alert
        .value
        .pointer("/labels/device")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Handles an authenticated, parsed delivery.
pub(crate) async fn deliver(
    state: &AppState,
    source: &Source,
    delivery: &Delivery,
    idempotency_key: Option<&str>,
) -> Result<Outcome, ApiError> {
    let mut outcome = Outcome::default();
    let bound = bindings(state, &source.name).await?;
    let mut matched_any = false;
    for b in &bound {
        let matched: Vec<&Alert> = delivery
            .alerts
            .iter()
            .filter(|alert| match &b.binding.when {
                None => true,
                Some(when) => match scope(alert).condition(&when.0) {
                    Ok(yes) => yes,
                    Err(e) => {
                        tracing::warn!(source = %source.name, binding = %b.id(), error = %e,
                            "webhook `when:` does not evaluate for this alert; not matched");
                        false
                    }
                },
            })
            .collect();
        if matched.is_empty() {
            continue;
        }
        matched_any = true;
        let episode = |alert: &Alert| match (idempotency_key, &alert.starts_at) {
            (Some(key), _) => format!("idem:{key}/{}", alert.fingerprint),
            (None, Some(at)) => format!("{}@{at}", alert.fingerprint),
            (None, None) => alert.fingerprint.clone(),
        };
        let units: Vec<Unit<'_>> = match b.binding.start {
            StartMode::PerAlert => matched
                .iter()
                .map(|alert| Unit {
                    status: alert.status,
                    alert,
                    alerts: vec![alert],
                    dedup_key: episode(alert),
                })
                .collect(),
            StartMode::PerGroup => {
                let group = match (idempotency_key, &delivery.group_key) {
                    (Some(key), _) => format!("idem:{key}"),
                    (None, Some(key)) => key.clone(),
                    (None, None) => {
                        let mut prints: Vec<&str> =
                            matched.iter().map(|a| a.fingerprint.as_str()).collect();
                        prints.sort_unstable();
                        prints.join(",")
                    }
                };
                // The group's episode starts with its earliest alert.
                let since = matched.iter().filter_map(|a| a.starts_at.as_deref()).min();
                let dedup_key = since.map_or_else(|| group.clone(), |at| format!("{group}@{at}"));
                let firing: Vec<&Alert> = matched
                    .iter()
                    .copied()
                    .filter(|a| a.status == Status::Firing)
                    .collect();
                match firing.first() {
                    Some(first) => vec![Unit {
                        status: Status::Firing,
                        alert: first,
                        alerts: firing.clone(),
                        dedup_key,
                    }],
                    None => vec![Unit {
                        status: Status::Resolved,
                        alert: matched[0],
                        alerts: matched.clone(),
                        dedup_key,
                    }],
                }
            }
        };
        for unit in units {
            handle(state, source, b, &unit, delivery, &mut outcome).await?;
        }
    }
    if !matched_any {
        let event = NewEvent {
            actor: format!("webhook:{}", source.name),
            kind: "webhook.ignored".into(),
            run: None,
            step: None,
            device: None,
            data: json!({"source": source.name, "alerts": delivery.alerts.len(),
                "reason": "no published playbook binds an alert of this delivery"}),
        };
        state.store.append_events(&[event], &[], Utc::now()).await?;
    }
    Ok(outcome)
}

/// Records one unit and starts what it starts.
async fn handle(
    state: &AppState,
    source: &Source,
    b: &Bound,
    unit: &Unit<'_>,
    delivery: &Delivery,
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    let binding = b.id();
    let status = unit.status.as_str();
    let event = |kind: &str, run: Option<&str>, extra: Value| {
        let mut data = json!({
            "source": source.name, "binding": binding, "playbook": b.playbook,
            "version": b.version, "status": status, "dedup_key": unit.dedup_key,
            "fingerprints": unit.alerts.iter().map(|a| a.fingerprint.clone()).collect::<Vec<_>>(),
            "labels": unit.alert.labels(),
        });
        if let (Value::Object(data), Value::Object(extra)) = (&mut data, extra) {
            data.extend(extra);
        }
        NewEvent {
            actor: format!("webhook:{}", source.name),
            kind: kind.to_string(),
            run: run.map(str::to_string),
            step: None,
            device: device(unit.alert),
            data,
        }
    };
    // What the unit starts: the playbook when firing, the follow-up (if
    // any) when resolved, with its inputs rendered before anything is written.
    let start = match unit.status {
        Status::Firing => Some((
            b.playbook.clone(),
            Some(b.version.clone()),
            &b.binding.inputs,
        )),
        Status::Resolved => b.binding.on_resolved.as_ref().map(|follow| {
            (
                follow.playbook.name.clone(),
                Some(follow.playbook.version.to_string()),
                &follow.inputs,
            )
        }),
    };
    let start = match start {
        None => None,
        Some((playbook, version, templates)) => match render(templates, unit.alert) {
            Ok(inputs) => Some((playbook, version, inputs)),
            Err(reason) => {
                let refused = event("webhook.refused", None, json!({"reason": reason}));
                state
                    .store
                    .append_events(&[refused], &[], Utc::now())
                    .await?;
                outcome
                    .refused
                    .push(json!({"binding": binding, "fingerprint": unit.alert.fingerprint, "reason": reason}));
                return Ok(());
            }
        },
    };
    let run = start
        .as_ref()
        .map(|_| run_id(&source.name, &binding, &unit.dedup_key, status));
    let accepted_kind = match unit.status {
        Status::Firing => "webhook.accepted",
        Status::Resolved => "webhook.resolved",
    };
    let record = NewDelivery {
        source: source.name.clone(),
        binding: binding.clone(),
        dedup_key: unit.dedup_key.clone(),
        status: status.to_string(),
        run_id: run.clone(),
        accepted: event(accepted_kind, run.as_deref(), json!({})),
        repeated: event("webhook.deduplicated", run.as_deref(), json!({})),
    };
    let (Some((playbook, version, inputs)), Some(id)) = (start, run) else {
        // A resolution without a follow-up: recorded, nothing started.
        match state
            .store
            .record_webhook_delivery(&record, Utc::now())
            .await?
        {
            DeliveryOutcome::New => {
                outcome.accepted += 1;
                outcome.resolved += 1;
            }
            DeliveryOutcome::Repeat { .. } => outcome.deduplicated += 1,
        }
        return Ok(());
    };
    let mut trigger = json!({
        "kind": "webhook", "source": source.name, "binding": binding, "status": status,
        "fingerprint": unit.alert.fingerprint, "group_key": delivery.group_key,
        "dedup_key": unit.dedup_key, "alert": unit.alert.value,
    });
    if unit.alerts.len() > 1 {
        trigger["alerts"] = Value::Array(unit.alerts.iter().map(|a| a.value.clone()).collect());
    }
    let request = RunRequest {
        playbook,
        version,
        inputs,
        trigger,
        dry_run: false,
    };
    match state
        .engine
        .start_run_for_delivery(&id, request, &record)
        .await
    {
        Ok(DeliveryOutcome::New) => {
            outcome.accepted += 1;
            if unit.status == Status::Resolved {
                outcome.resolved += 1;
            }
            outcome.runs.push(id);
        }
        Ok(DeliveryOutcome::Repeat { run_id }) => {
            outcome.deduplicated += 1;
            outcome.existing_runs.extend(run_id);
        }
        Err(StartError::Storage(e)) => return Err(e.into()),
        // Refused before or inside the transaction: nothing was recorded
        // but why, so a later delivery (after a fix) is new.
        Err(refusal) => {
            let reason = refusal.to_string();
            let refused = event("webhook.refused", None, json!({"reason": reason}));
            state
                .store
                .append_events(&[refused], &[], Utc::now())
                .await?;
            outcome.refused.push(
                json!({"binding": binding, "fingerprint": unit.alert.fingerprint, "reason": reason}),
            );
        }
    }
    Ok(())
}
