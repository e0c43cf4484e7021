//! Approval gates in the engine: a gate that is reached opens a request
//! bound to a digest of the plan it guards; people's decisions are
//! checked against the gate's rules and committed with the gate's step
//! change; timers expire, escalate and remind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cordon_playbook::model::{Approval, Approvers, ForeachItems, OnTimeout};
use cordon_storage::{
    ApprovalChange, ApprovalRecord, NewApprovalRequest, NewDecision, NewNotification, StorageError,
    TimerChange,
};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::decide::{Decision, scope, step_event};
use super::snapshot::Snapshot;
use super::{Engine, EngineError, Prepared};
use crate::Timestamp;
use crate::approval::{ApprovalError, Ballot, Person, Standing, Verdict};
use crate::inventory::StoredInventory;
use crate::machine::Transition;
use crate::run_state::{RunEvent, RunStatus};
use crate::step_state::{StepEvent, StepState, StepWait};

/// The purpose of a gate's reminder timer.
pub(crate) const REMINDER: &str = "approval_reminder";
/// The purpose of a gate's timeout timer.
pub(crate) const TIMEOUT: &str = "approval_timeout";

/// What approving gate `gate` lets happen: each downstream step (its
/// action and pinned digest, its inputs rendered as far as they can be
/// now, its fan-out items) and the devices they touch — a step's items
/// and its `device`/`devices` inputs.
pub(crate) fn gate_plan(prep: &Prepared, snap: &Snapshot, gate: &str) -> Value {
    let scope = scope(snap);
    let downstream = prep
        .plan
        .gates()
        .get(gate)
        .map(|g| g.downstream.clone())
        .unwrap_or_default();
    let mut devices = BTreeSet::new();
    let mut steps = Vec::new();
    for id in downstream {
        let Ok(step) = prep.step(&id) else { continue };
        let mut view = Map::new();
        view.insert("id".into(), json!(id));
        let kind = step.kinds().first().map_or("unknown", |k| k.field());
        view.insert("kind".into(), json!(kind));
        if let Some(uses) = &step.uses {
            view.insert("uses".into(), json!(uses.to_string()));
            view.insert("pin".into(), json!(prep.pin(&uses.to_string())));
        }
        if let Some(playbook) = &step.playbook {
            view.insert("playbook".into(), json!(playbook.to_string()));
        }
        if let Some(condition) = &step.condition {
            view.insert("if".into(), json!(condition.0));
        }
        let mut with = Map::new();
        for (name, value) in &step.with {
            // Inputs that depend on steps not run yet stay as written.
            let shown = scope.render(value).unwrap_or_else(|_| value.clone());
            touched(name, &shown, &mut devices);
            with.insert(name.clone(), shown);
        }
        if !with.is_empty() {
            view.insert("with".into(), Value::Object(with));
        }
        if let Some(foreach) = &step.foreach {
            let items = match &foreach.items {
                ForeachItems::List(items) => Value::Array(items.clone()),
                ForeachItems::Expression(template) => scope
                    .render(&Value::String(template.0.clone()))
                    .unwrap_or_else(|_| Value::String(template.0.clone())),
            };
            if let Value::Array(list) = &items {
                for item in list {
                    match item {
                        Value::String(id) => {
                            devices.insert(id.clone());
                        }
                        Value::Object(o) => {
                            if let Some(Value::String(id)) = o.get("id") {
                                devices.insert(id.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            view.insert("foreach".into(), items);
        }
        steps.push(Value::Object(view));
    }
    json!({"gate": gate, "steps": steps, "devices": devices})
}

/// Devices named by a rendered input: `device: X`, `devices: [X, Y]`.
fn touched(name: &str, value: &Value, devices: &mut BTreeSet<String>) {
    match (name, value) {
        ("device", Value::String(id)) if !id.contains("${{") => {
            devices.insert(id.clone());
        }
        ("devices", Value::Array(ids)) => {
            devices.extend(ids.iter().filter_map(Value::as_str).map(str::to_string));
        }
        _ => {}
    }
}

/// `sha256:<hex>` of the plan's canonical JSON (RFC 8785).
pub(crate) fn plan_digest(plan: &Value) -> String {
    let canonical = serde_jcs::to_vec(plan).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

/// Who started the run, when a person did.
fn initiator(snap: &Snapshot) -> Option<String> {
    snap.record
        .trigger
        .get("by")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Opens gate `key`'s request in the same change that makes the gate wait:
/// the request (bound to the plan's digest), its mail, its timers.
pub(crate) fn open(
    decision: &mut Decision,
    prep: &Prepared,
    snap: &Snapshot,
    key: &str,
    approval: &Approval,
    now: Timestamp,
) {
    let plan = gate_plan(prep, snap, key);
    let message = approval.message.as_ref().map_or_else(
        || format!("Approve step `{key}` of {}?", snap.record.playbook),
        |m| {
            scope(snap)
                .render(&Value::String(m.0.clone()))
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| m.0.clone())
        },
    );
    let deadline = approval.timeout.map(|t| crate::clock::later(now, t.get()));
    let id = uuid::Uuid::now_v7().to_string();
    decision
        .changes
        .approvals
        .push(ApprovalChange::Open(NewApprovalRequest {
            id: id.clone(),
            step: key.to_string(),
            round: 1,
            approvers: serde_json::to_value(&approval.approvers).unwrap_or(Value::Null),
            min: approval.min,
            allow_initiator: approval.allow_initiator,
            require_comment: approval.require_comment,
            input: serde_json::to_value(&approval.input).unwrap_or(Value::Null),
            initiator: initiator(snap),
            message,
            plan_digest: plan_digest(&plan),
            plan,
            deadline,
        }));
    decision.changes.notifications.push(NewNotification {
        kind: "approval_request".into(),
        request: Some(id),
        payload: json!({}),
    });
    if let Some(deadline) = deadline {
        decision.changes.timers.push(TimerChange::Arm {
            step: key.to_string(),
            at: deadline,
            purpose: TIMEOUT.into(),
        });
    }
    arm_reminder(decision, key, approval, deadline, now);
}

/// The next reminder, if the gate asks for them and it comes before the deadline.
fn arm_reminder(
    decision: &mut Decision,
    key: &str,
    approval: &Approval,
    deadline: Option<Timestamp>,
    now: Timestamp,
) {
    if let Some(every) = approval.remind_every {
        let at = crate::clock::later(now, every.get());
        if deadline.is_none_or(|d| at < d) {
            decision.changes.timers.push(TimerChange::Arm {
                step: key.to_string(),
                at,
                purpose: REMINDER.into(),
            });
        }
    }
}

/// A gate's timeout passed: escalate (once, where the gate says so),
/// approve (where it says so), or expire — rejecting the gate.
pub(crate) fn timed_out(
    decision: &mut Decision,
    prep: &Prepared,
    snap: &Snapshot,
    key: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let approval = prep.step(key)?.approval.as_ref();
    let step = snap.step(key)?;
    let request = snap.approvals.get(key);
    if let (Some(approval), Some(request)) = (approval, request)
        && approval.on_timeout == OnTimeout::Escalate
        && request.stage == 0
        && let Some(escalation) = &approval.escalate
    {
        let deadline = crate::clock::later(now, escalation.timeout.get());
        decision.changes.approvals.push(ApprovalChange::Escalate {
            request: request.id.clone(),
            stage: 1,
            approvers: serde_json::to_value(&escalation.approvers).unwrap_or(Value::Null),
            deadline: Some(deadline),
        });
        decision.changes.notifications.push(NewNotification {
            kind: "approval_escalated".into(),
            request: Some(request.id.clone()),
            payload: json!({}),
        });
        decision.changes.timers.push(TimerChange::Arm {
            step: key.to_string(),
            at: deadline,
            purpose: TIMEOUT.into(),
        });
        return Ok(());
    }
    let approve = approval.is_some_and(|a| a.on_timeout == OnTimeout::Approve);
    let (event, status, outcome) = if approve {
        (
            StepEvent::Approved { at: now },
            "approved",
            "no decision before the timeout; the gate says on_timeout: approve",
        )
    } else {
        (
            StepEvent::Rejected {
                at: now,
                reason: "no decision before the gate's timeout".into(),
            },
            "expired",
            "no decision before the timeout",
        )
    };
    if let Some(request) = request {
        decision.changes.approvals.push(ApprovalChange::Close {
            request: request.id.clone(),
            status: status.into(),
            outcome: outcome.into(),
        });
    }
    let outputs = approve.then(|| json!({"approved": true, "approvers": [], "by_timeout": true}));
    step_event(
        decision,
        key,
        step.state.clone(),
        step.attempt,
        event,
        outputs,
    )?;
    Ok(())
}

/// A reminder came due: mail the approvers again while the gate waits.
pub(crate) fn remind(
    decision: &mut Decision,
    prep: &Prepared,
    snap: &Snapshot,
    key: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(request) = snap.approvals.get(key) else {
        return Ok(());
    };
    decision.changes.notifications.push(NewNotification {
        kind: "approval_reminder".into(),
        request: Some(request.id.clone()),
        payload: json!({}),
    });
    if let Some(approval) = prep.step(key)?.approval.as_ref() {
        arm_reminder(decision, key, approval, request.deadline, now);
    }
    Ok(())
}

impl Engine {
    /// Reads a request with its plan as it is now: when the inventory or
    /// anything else behind the plan changed, the request is re-bound to
    /// the new plan (audited) and earlier approvals stop counting.
    pub async fn approval(&self, id: &str) -> Result<ApprovalRecord, ApprovalError> {
        Ok(self.current_approval(id).await?.0)
    }

    /// [`Engine::approval`], with the run as read to check the plan while
    /// the request is pending — a decision is checked against that same read.
    async fn current_approval(
        &self,
        id: &str,
    ) -> Result<(ApprovalRecord, Option<(Snapshot, Arc<Prepared>)>), ApprovalError> {
        loop {
            let request = self
                .store
                .approval(id)
                .await?
                .ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
            if !request.is_pending() {
                return Ok((request, None));
            }
            let (snap, prep) = self.gate_context(&request.run).await?;
            let plan = gate_plan(&prep, &snap, &request.step);
            let digest = plan_digest(&plan);
            if digest == request.plan_digest {
                return Ok((request, Some((snap, prep))));
            }
            match self.replan(&snap, &request, plan, digest).await {
                Ok(()) => continue,
                Err(StorageError::StaleRevision { .. } | StorageError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn replan(
        &self,
        snap: &Snapshot,
        request: &ApprovalRecord,
        plan: Value,
        digest: String,
    ) -> Result<(), StorageError> {
        let mut decision = Decision::default();
        decision.changes.approvals.push(ApprovalChange::Replan {
            request: request.id.clone(),
            plan,
            plan_digest: digest,
        });
        self.store
            .commit(
                &snap.record.id,
                snap.record.revision,
                &decision.changes,
                self.clock.now(),
            )
            .await
            .map(|_| ())
    }

    /// A run's snapshot with what a gate's plan reads (the inventory).
    async fn gate_context(&self, run: &str) -> Result<(Snapshot, Arc<Prepared>), EngineError> {
        let mut snap = Snapshot::load(&self.store, run).await?;
        let prep = self.prepare(&snap).await?;
        if prep.reads_inventory_now(&snap) {
            let devices = self.store.devices().await?;
            snap.inventory = Some(Arc::new(StoredInventory::new(devices)));
        }
        Ok((snap, prep))
    }

    /// Records `person`'s decision on a request: checks that they may
    /// decide, that they saw the current plan, that the gate's rules are
    /// met; commits the decision with the gate's outcome (any deny
    /// rejects; `min` distinct approvals on the current plan approve).
    /// Nothing is written when the decision is refused.
    pub async fn decide_approval(
        &self,
        person: &Person,
        ballot: &Ballot,
    ) -> Result<Standing, ApprovalError> {
        loop {
            let (request, context) = self.current_approval(&ballot.request).await?;
            let Some((snap, prep)) = context else {
                return Err(ApprovalError::Closed {
                    status: request.status,
                });
            };
            if let Some(link) = &ballot.link {
                let usable = self.store.approval_link(link).await?.is_some_and(|l| {
                    l.request == request.id
                        && l.user == person.user
                        && l.used_at.is_none()
                        && l.expires_at > self.clock.now()
                });
                if !usable {
                    return Err(ApprovalError::LinkSpent);
                }
            }
            if ballot.plan_digest != request.plan_digest {
                return Err(ApprovalError::PlanChanged {
                    current: request.plan_digest,
                });
            }
            let (decision, standing) =
                self.ballot_changes(person, ballot, &request, &snap, &prep)?;
            match self
                .store
                .commit(
                    &request.run,
                    snap.record.revision,
                    &decision.changes,
                    self.clock.now(),
                )
                .await
            {
                Ok(_) => {
                    self.wake_work();
                    return Ok(standing);
                }
                // The run moved, or the request did (another decision, a
                // replan, a timeout): read again and decide on what is there.
                Err(StorageError::StaleRevision { .. }) => continue,
                Err(StorageError::Conflict(message)) if message.contains("link") => {
                    return Err(ApprovalError::LinkSpent);
                }
                Err(StorageError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The change one ballot makes, or why it is refused.
    fn ballot_changes(
        &self,
        person: &Person,
        ballot: &Ballot,
        request: &ApprovalRecord,
        snap: &Snapshot,
        prep: &Prepared,
    ) -> Result<(Decision, Standing), ApprovalError> {
        let approvers: Approvers = serde_json::from_value(request.approvers.clone())
            .map_err(|e| EngineError::Corrupt(format!("approvers of {}: {e}", request.id)))?;
        if !person.is_named_by(&approvers) {
            return Err(ApprovalError::NotAnApprover {
                user: person.user.clone(),
            });
        }
        if ballot.verdict == Verdict::Approve
            && !request.allow_initiator
            && request.initiator.as_deref() == Some(person.user.as_str())
        {
            return Err(ApprovalError::SelfApproval {
                user: person.user.clone(),
            });
        }
        if request.decided_by(&person.user) {
            return Err(ApprovalError::AlreadyDecided {
                user: person.user.clone(),
            });
        }
        let comment = ballot
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if request.require_comment && comment.is_none() {
            return Err(ApprovalError::CommentRequired);
        }
        let gate = prep.step(&request.step)?;
        let input = match (ballot.verdict, gate.approval.as_ref()) {
            (Verdict::Approve, Some(approval)) => {
                cordon_playbook::inputs::resolve(&approval.input, &ballot.input).map_err(
                    |problems| {
                        ApprovalError::InvalidInput(
                            problems
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    },
                )?
            }
            _ => BTreeMap::new(),
        };
        let mut decision = Decision::default();
        decision.changes.actor = Some(format!("user:{}", person.user));
        decision
            .changes
            .approvals
            .push(ApprovalChange::Decide(NewDecision {
                request: request.id.clone(),
                user: person.user.clone(),
                verdict: ballot.verdict.as_str().into(),
                comment: comment.map(str::to_string),
                input: serde_json::to_value(&input).unwrap_or(Value::Null),
                plan_digest: request.plan_digest.clone(),
                stage: request.stage,
                channel: ballot.channel.clone(),
            }));
        if let Some(link) = &ballot.link {
            decision
                .changes
                .approvals
                .push(ApprovalChange::UseLink { id: link.clone() });
        }
        let mut approved: Vec<String> = request
            .approvers()
            .into_iter()
            .map(str::to_string)
            .collect();
        if ballot.verdict == Verdict::Approve {
            approved.push(person.user.clone());
        }
        let count = u32::try_from(approved.len()).unwrap_or(u32::MAX);
        let step = snap.step(&request.step)?;
        if !matches!(
            step.state,
            StepState::Waiting {
                on: StepWait::Approval { .. },
                ..
            }
        ) {
            // The gate moved on without this request (the run ended): nothing to decide.
            return Err(ApprovalError::Closed {
                status: step.state.status().as_str().to_string(),
            });
        }
        let now = self.clock.now();
        let (status, event, outputs) = match ballot.verdict {
            Verdict::Deny => (
                "rejected",
                Some(StepEvent::Rejected {
                    at: now,
                    reason: format!(
                        "denied by {}{}",
                        person.user,
                        comment.map(|c| format!(": {c}")).unwrap_or_default()
                    ),
                }),
                None,
            ),
            Verdict::Approve if count >= request.min => {
                // The gate's outputs: who approved, and the input they gave
                // (the deciding approval's, over earlier ones').
                let mut outputs = Map::new();
                for d in request.decisions.iter().filter(|d| {
                    d.verdict == Verdict::Approve.as_str() && d.plan_digest == request.plan_digest
                }) {
                    if let Value::Object(fields) = &d.input {
                        outputs.extend(fields.clone());
                    }
                }
                outputs.extend(input.clone());
                outputs.insert("approved".into(), json!(true));
                outputs.insert("approvers".into(), json!(approved));
                outputs.insert("plan_digest".into(), json!(request.plan_digest));
                (
                    "approved",
                    Some(StepEvent::Approved { at: now }),
                    Some(Value::Object(outputs)),
                )
            }
            Verdict::Approve => ("pending", None, None),
        };
        if let Some(event) = event {
            decision.changes.approvals.push(ApprovalChange::Close {
                request: request.id.clone(),
                status: status.into(),
                outcome: match ballot.verdict {
                    Verdict::Deny => format!("denied by {}", person.user),
                    Verdict::Approve => format!("approved by {}", approved.join(", ")),
                },
            });
            step_event(
                &mut decision,
                &request.step,
                step.state.clone(),
                step.attempt,
                event,
                outputs,
            )?;
            if snap.run.status() == RunStatus::Waiting
                && let Transition::To { state, .. } = snap
                    .run
                    .clone()
                    .on(RunEvent::Wake)
                    .map_err(EngineError::from)?
            {
                decision.changes.run =
                    Some(super::snapshot::stored(state.status().as_str(), &state));
            }
        }
        Ok((
            decision,
            Standing {
                status: status.into(),
                approvals: count,
                min: request.min,
            },
        ))
    }
}
