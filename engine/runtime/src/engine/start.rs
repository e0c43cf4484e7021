//! Starting runs: the version pinned, the inputs checked, the concurrency
//! key rendered, and the run stored queued with every step pending — in one
//! commit, or nothing at all.

use std::collections::BTreeMap;

use cordon_playbook::inputs::resolve;
use cordon_playbook::model::{ConflictPolicy, RunConcurrency};
use cordon_storage::{Concurrency, NewRun};
use serde_json::Value;

use super::snapshot::stored;
use super::{Engine, RunRequest, StartError};
use crate::run_state::RunState;
use crate::step_state::StepState;

impl Engine {
    /// Starts a run: pins the version (the newest if none is named),
    /// checks the inputs, and stores the run queued with all its steps
    /// pending — or, on any problem, writes nothing.
    pub async fn start_run(&self, request: RunRequest) -> Result<String, StartError> {
        let id = uuid::Uuid::now_v7().to_string();
        self.create_run_with_id(&id, request).await?;
        self.wake_work();
        Ok(id)
    }

    /// Starts a run for a monitoring webhook's delivery: the delivery's
    /// record and the run commit in one transaction, so a repeat of the
    /// delivery (same key, in storage) starts nothing, and a crash leaves
    /// both or neither. `DeliveryOutcome::Repeat` names the run the first
    /// delivery started; nothing else is written then but its audit event.
    pub async fn start_run_for_delivery(
        &self,
        id: &str,
        request: RunRequest,
        delivery: &cordon_storage::NewDelivery,
    ) -> Result<cordon_storage::DeliveryOutcome, StartError> {
        let (new, playbook) = self.new_run(id, request).await?;
        let outcome = self.store.create_run_for_delivery(new, delivery).await?;
        if outcome == cordon_storage::DeliveryOutcome::New {
            tracing::info!(run = %id, %playbook, "run queued by a webhook");
            self.wake_work();
        }
        Ok(outcome)
    }

    /// [`Engine::start_run`] with a given id (a child run's is derived from its parent).
    pub(crate) async fn create_run_with_id(
        &self,
        id: &str,
        request: RunRequest,
    ) -> Result<(), StartError> {
        let (new, playbook) = self.new_run(id, request).await?;
        self.store.create_run(new).await?;
        tracing::info!(run = %id, %playbook, "run queued");
        Ok(())
    }

    /// The run `request` asks for, checked (version, inputs, concurrency
    /// key) but not written; with the playbook's name for the log.
    async fn new_run(&self, id: &str, request: RunRequest) -> Result<(NewRun, String), StartError> {
        let version = match &request.version {
            Some(v) => self.store.version(&request.playbook, v).await?,
            None => self.store.latest(&request.playbook).await?,
        };
        let reference = format!(
            "{}@{}",
            request.playbook,
            request.version.as_deref().unwrap_or("latest")
        );
        let version = version.ok_or(StartError::UnknownPlaybook(reference))?;
        let inputs =
            resolve(&version.playbook.inputs, &request.inputs).map_err(StartError::Inputs)?;
        let concurrency = match &version.playbook.concurrency {
            None => None,
            Some(c) => Some(Concurrency {
                key: concurrency_key(&version.name, c, &inputs, &request.trigger)?,
                limit: c.limit,
                reject: c.on_conflict == ConflictPolicy::Reject,
            }),
        };
        let now = self.clock.now();
        let queued = RunState::Queued { queued_at: now };
        let pending = StepState::Pending;
        let playbook = request.playbook.clone();
        let new = NewRun {
            id: id.to_string(),
            playbook: version.name.clone(),
            version: version.version.clone(),
            inputs,
            trigger: request.trigger,
            dry_run: request.dry_run,
            drill: false,
            state: stored(queued.status().as_str(), &queued),
            steps: version
                .playbook
                .steps
                .iter()
                .map(|s| (s.id.clone(), stored(pending.status().as_str(), &pending)))
                .collect(),
            outputs: BTreeMap::new(),
            now,
            concurrency,
            secret_inputs: secret_inputs(&version.playbook),
        };
        Ok((new, playbook))
    }
}

/// The names of a playbook's inputs declared `secret`.
pub(super) fn secret_inputs(playbook: &cordon_playbook::Playbook) -> Vec<String> {
    playbook
        .inputs
        .iter()
        .filter(|(_, spec)| spec.secret)
        .map(|(name, _)| name.clone())
        .collect()
}

/// The key a run counts against: the playbook's name, and its rendered
/// `concurrency.key` when it has one (`contain/plc-7`).
fn concurrency_key(
    playbook: &str,
    concurrency: &RunConcurrency,
    inputs: &BTreeMap<String, Value>,
    trigger: &Value,
) -> Result<String, StartError> {
    let Some(template) = &concurrency.key else {
        return Ok(playbook.to_string());
    };
    let scope = crate::evaluate::Scope {
        inputs: inputs.clone(),
        trigger: trigger.clone(),
        ..crate::evaluate::Scope::default()
    };
    match scope.render(&Value::String(template.0.clone())) {
        Ok(Value::String(key)) => Ok(format!("{playbook}/{key}")),
        Ok(other) => Ok(format!("{playbook}/{other}")),
        Err(e) => Err(StartError::ConcurrencyKey(e.to_string())),
    }
}
