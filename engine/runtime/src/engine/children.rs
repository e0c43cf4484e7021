//! Sub-playbooks: a `playbook: name@version` step runs its playbook as a
//! child run, pinned to that exact version, and succeeds or fails with it.
//!
//! The child's id is derived from the parent run, step and attempt (a
//! UUIDv5), so creating it is idempotent: a node that crashed after
//! creating the child but before recording it creates "the same" child
//! again, which storage refuses as a duplicate, and moves on.

use std::collections::BTreeMap;

use cordon_playbook::model::Step;
use serde_json::{Value, json};

use super::EngineError;
use super::decide::{Decision, fail_at_start, scope_for, step_event};
use super::snapshot::Snapshot;
use crate::Timestamp;
use crate::attempt_state::{AttemptError, ErrorKind};
use crate::run_state::RunStatus;
use crate::step_state::{StepEvent, StepStatus};

/// A child run to create before the parent's change set is committed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChildRun {
    /// The parent's step.
    pub(crate) step: String,
    pub(crate) id: String,
    pub(crate) playbook: String,
    pub(crate) version: String,
    pub(crate) inputs: BTreeMap<String, Value>,
    pub(crate) trigger: Value,
}

/// The id of the child run of attempt `number` of `step` in `run`.
pub(crate) fn child_id(run: &str, step: &str, number: u32) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("cordon:run/{run}/{step}/{number}").as_bytes(),
    )
    .to_string()
}

/// The child run a step started, if it did.
pub(crate) fn child_of(outputs: Option<&Value>) -> Option<&str> {
    outputs?.get("run")?.as_str()
}

/// Starts a sub-playbook step: renders its inputs and asks for its child run.
pub(crate) fn start(
    decision: &mut Decision,
    snap: &Snapshot,
    key: &str,
    step: &Step,
    now: Timestamp,
) -> Result<(), EngineError> {
    let pending = snap.step(key)?.state.clone();
    let Some(reference) = &step.playbook else {
        return Err(EngineError::Corrupt(format!("step {key} has no playbook")));
    };
    let with = Value::Object(
        step.with
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    // A fan-out item renders with its `item` bound.
    let inputs = match scope_for(snap, key).render(&with) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        Ok(_) => BTreeMap::new(),
        Err(e) => return fail_at_start(decision, key, pending, e.to_string(), now),
    };
    let id = child_id(&snap.record.id, key, 1);
    decision.children.push(ChildRun {
        step: key.to_string(),
        id: id.clone(),
        playbook: reference.name.clone(),
        version: reference.version.to_string(),
        inputs,
        // The person who started the parent started the child too: its
        // gates must not let them approve their own run either.
        trigger: json!({"kind": "parent", "run": snap.record.id, "step": key, "by": snap.record.trigger.get("by")}),
    });
    step_event(
        decision,
        key,
        pending,
        1,
        StepEvent::Start { at: now },
        Some(json!({"run": id})),
    )?;
    Ok(())
}

/// Settles sub-playbook steps whose child run is over.
pub(crate) fn settle(
    decision: &mut Decision,
    snap: &Snapshot,
    now: Timestamp,
) -> Result<(), EngineError> {
    for (key, step) in &snap.steps {
        if step.state.status() != StepStatus::Running {
            continue;
        }
        let Some(child) = child_of(step.outputs.as_ref()) else {
            continue;
        };
        let Some((status, outputs)) = snap.children.get(child) else {
            continue;
        };
        let event = match status {
            RunStatus::Succeeded => StepEvent::AttemptSucceeded { at: now },
            RunStatus::Failed | RunStatus::Cancelled => StepEvent::AttemptFailed {
                at: now,
                error: AttemptError {
                    kind: ErrorKind::Plugin,
                    message: format!("sub-playbook run {child} {}", status.as_str()),
                    retryable: false,
                },
                retry_at: None,
            },
            _ => continue,
        };
        let result = json!({"run": child, "status": status.as_str(), "steps": outputs});
        step_event(
            decision,
            key,
            step.state.clone(),
            step.attempt,
            event,
            Some(result),
        )?;
    }
    Ok(())
}

impl super::Engine {
    /// Creates the child runs a decision asks for, before the decision is
    /// committed. A child whose inputs do not fit its playbook fails the
    /// parent's step instead (nothing is created).
    pub(crate) async fn create_children(
        &self,
        snap: &Snapshot,
        decision: &mut Decision,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let children = std::mem::take(&mut decision.children);
        for child in children {
            let version = self.store.version(&child.playbook, &child.version).await?;
            let problem = match &version {
                None => Some(format!(
                    "sub-playbook {}@{} is not published",
                    child.playbook, child.version
                )),
                Some(v) => cordon_playbook::inputs::resolve(&v.playbook.inputs, &child.inputs)
                    .err()
                    .map(|problems| {
                        format!(
                            "inputs of sub-playbook {}@{}: {}",
                            child.playbook,
                            child.version,
                            problems
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    }),
            };
            if let Some(message) = problem {
                decision.changes.steps.retain(|c| c.key != child.step);
                fail_at_start(
                    decision,
                    &child.step,
                    snap.step(&child.step)?.state.clone(),
                    message,
                    now,
                )?;
                continue;
            }
            let request = super::RunRequest {
                playbook: child.playbook.clone(),
                version: Some(child.version.clone()),
                inputs: child.inputs.clone(),
                trigger: child.trigger.clone(),
                dry_run: snap.record.dry_run,
            };
            // Created before a crash or a refused commit: the same child,
            // already there (and already counted under its concurrency limit).
            if self.store.run(&child.id).await?.is_none() {
                match self.create_run_with_id(&child.id, request).await {
                    Ok(()) => {}
                    // Another node created it meanwhile.
                    Err(super::StartError::Storage(cordon_storage::StorageError::Database(_)))
                        if self.store.run(&child.id).await?.is_some() => {}
                    Err(super::StartError::Storage(e)) => return Err(e.into()),
                    // Refused (its concurrency limit says reject): the step fails, saying why.
                    Err(refused) => {
                        decision.changes.steps.retain(|c| c.key != child.step);
                        fail_at_start(
                            decision,
                            &child.step,
                            snap.step(&child.step)?.state.clone(),
                            refused.to_string(),
                            now,
                        )?;
                        continue;
                    }
                }
            }
            decision.children.push(child);
        }
        Ok(())
    }

    /// Drives a child run in a task of its own; it reports back when it
    /// returns (finished, or blocked on a gate or a timer).
    pub(crate) fn drive_child(
        &self,
        child: &str,
        tx: &tokio::sync::mpsc::UnboundedSender<super::execution::Done>,
        driving: &mut std::collections::HashSet<String>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        if !driving.insert(child.to_string()) {
            return;
        }
        let (engine, run, tx) = (self.clone(), child.to_string(), tx.clone());
        // In the parent's task set: the child's drive ends with the parent's.
        tasks.spawn(async move {
            if let Err(e) = Box::pin(engine.drive(&run)).await {
                tracing::warn!(run = %run, error = %e, "child run could not be driven");
            }
            let _ = tx.send(super::execution::Done::Child { run });
        });
    }
}
