//! The scheduler: drives runs through their plans, persisting every
//! transition before acting on it.
//!
//! One task drives one run at a time while its node holds the run's lease.
//! Each turn of the loop reads the run back from storage, decides the next
//! change ([`decide`]), commits it as one change set from the revision it
//! read, and only then starts the executions the change created. Because
//! every decision is derived from stored state, a node that crashes between
//! any two steps of this loop loses nothing: whoever drives the run next
//! decides the same thing again, and an attempt that may have run is re-run
//! with its original idempotency key.

mod approvals;
mod attempts;
mod children;
mod compensation;
mod control;
mod decide;
mod execution;
mod fanout;
mod rerun;
mod snapshot;
mod start;
mod timers;
mod worker;

pub use worker::WorkOptions;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cordon_graph::ExecutionPlan;
use cordon_playbook::inputs::InputProblem;
use cordon_playbook::model::{RunConcurrency, Step};
use cordon_playbook::{Context, PlaybookIndex, PluginCatalog, validate};
use cordon_storage::{ChangeSet, RunRecord, StorageError, Store};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::clock::{Clock, Timestamp};
use crate::evaluate::Inventory;
use crate::executor::Executor;
use crate::inventory::StoredInventory;
use crate::machine::InvalidTransition;
use crate::run_state::RunStatus;
use decide::{Decision, decide};
use execution::Done;
use snapshot::Snapshot;
use start::secret_inputs;

/// Why the engine could not go on with a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No run has this id.
    #[error("no run `{0}`")]
    UnknownRun(String),
    /// Another node holds the run's lease: leave the run to it.
    #[error("run `{0}` is driven by another node")]
    LeaseLost(String),
    /// A state machine refused an event: a bug, or a record changed by hand.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The run's pinned version no longer validates (its plugins changed).
    #[error("the pinned version cannot be planned: {0}")]
    Unplannable(String),
    /// A step's inputs could not be rendered.
    #[error("{0}")]
    Render(String),
    /// The request makes no sense for this run (it says why).
    #[error("{0}")]
    Refused(String),
    /// Stored data does not decode.
    #[error("corrupt run record: {0}")]
    Corrupt(String),
    /// Storage failed; retrying may help.
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        match e {
            // The lease fenced a commit: another node drives the run now.
            StorageError::LeaseLost { run, .. } => EngineError::LeaseLost(run),
            other => EngineError::Storage(other),
        }
    }
}

/// Why a run could not be started. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The playbook or the version is not published.
    #[error("{0} is not published")]
    UnknownPlaybook(String),
    /// The inputs do not match the playbook's declarations.
    #[error("invalid inputs: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Inputs(Vec<InputProblem>),
    /// The playbook's concurrency limit is reached and it says `on_conflict: reject`.
    #[error(
        "not started: {limit} run(s) of this playbook with concurrency key `{key}` are already active (on_conflict: reject)"
    )]
    AtCapacity {
        /// The rendered concurrency key.
        key: String,
        /// The limit.
        limit: u32,
    },
    /// The concurrency key does not render from the inputs.
    #[error("the concurrency key cannot be rendered: {0}")]
    ConcurrencyKey(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(StorageError),
}

/// A storage refusal of a new run for its concurrency limit is the start's
/// own `AtCapacity`; any other storage failure stays one.
impl From<StorageError> for StartError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::AtCapacity { key, limit } => StartError::AtCapacity { key, limit },
            other => StartError::Storage(other),
        }
    }
}

/// How far [`Engine::drive`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The run is over.
    Finished(RunStatus),
    /// Nothing can happen before `until` (a timer), or before someone decides a gate (`None`).
    Blocked {
        /// The next timer, if any.
        until: Option<Timestamp>,
    },
}

/// A run request.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The playbook.
    pub playbook: String,
    /// The exact version; the newest when `None`.
    pub version: Option<String>,
    /// Inputs by name.
    pub inputs: BTreeMap<String, Value>,
    /// Who or what starts it.
    pub trigger: Value,
    /// Record side effects instead of performing them.
    pub dry_run: bool,
}

/// A pinned version made ready to run: its playbook and plan.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) steps: HashMap<String, Step>,
    pub(crate) plan: ExecutionPlan,
    /// The playbook's run-level `timeout`.
    pub(crate) timeout: Option<std::time::Duration>,
    /// Steps whose expressions call `inventory.select` (in `if`, `with` or `foreach`).
    pub(crate) inventory_readers: Vec<String>,
    /// The playbook's limit on concurrent runs.
    pub(crate) concurrency: Option<RunConcurrency>,
    /// The component digest pinned per `uses:` (`name@major`) at publish time.
    pub(crate) pins: BTreeMap<String, String>,
    /// The inputs declared `secret` (their values never reach the audit log).
    pub(crate) secret_inputs: Vec<String>,
}

impl Prepared {
    /// Whether a step that calls `inventory.select` has not finished yet.
    fn reads_inventory_now(&self, snap: &Snapshot) -> bool {
        self.inventory_readers.iter().any(|id| {
            snap.steps
                .get(id)
                .is_some_and(|s| !s.state.status().is_terminal())
        })
    }

    /// The values of this run's secret inputs, to redact from its audit events.
    pub(crate) fn secret_values(&self, snap: &Snapshot) -> Vec<String> {
        self.secret_inputs
            .iter()
            .filter_map(|name| snap.record.inputs.get(name))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    }

    /// The component digest the version pinned for `uses`, if any.
    pub(crate) fn pin(&self, uses: &str) -> Option<String> {
        self.pins.get(uses).cloned()
    }

    /// The definition of a step, or of the fan-out step an item key (`id[3]`) belongs to.
    pub(crate) fn step(&self, key: &str) -> Result<&Step, EngineError> {
        self.steps
            .get(fanout::parent_of(key))
            .ok_or_else(|| EngineError::Corrupt(format!("no step `{key}` in the plan")))
    }
}

/// The run engine of one node.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    executor: Arc<dyn Executor>,
    plugins: Arc<PluginCatalog>,
    node: String,
    lease: chrono::Duration,
    plans: Arc<Mutex<HashMap<String, Arc<Prepared>>>>,
    /// Runs this node is driving now.
    driving: Arc<Mutex<HashSet<String>>>,
    /// Wakes this node's work loop before its next poll: a run started or
    /// a gate decided here moves at once, not a poll interval later.
    wake: Arc<tokio::sync::Notify>,
}

/// Marks a run as driven by this node while it lives.
struct DriveGuard {
    driving: Arc<Mutex<HashSet<String>>>,
    run: String,
}

impl DriveGuard {
    /// `None` when a task of this node already drives the run.
    fn enter(driving: &Arc<Mutex<HashSet<String>>>, run: &str) -> Option<DriveGuard> {
        let fresh = driving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(run.to_string());
        fresh.then(|| DriveGuard {
            driving: driving.clone(),
            run: run.to_string(),
        })
    }
}

impl Drop for DriveGuard {
    fn drop(&mut self) {
        self.driving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.run);
    }
}

impl Engine {
    /// An engine for node `node`, holding run leases for `lease`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        executor: Arc<dyn Executor>,
        plugins: Arc<PluginCatalog>,
        node: impl Into<String>,
        lease: std::time::Duration,
    ) -> Engine {
        Engine {
            store,
            clock,
            executor,
            plugins,
            node: node.into(),
            lease: chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30)),
            plans: Arc::default(),
            driving: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// Tells this node's work loop that a run can move (it claims at once).
    pub(crate) fn wake_work(&self) {
        self.wake.notify_one();
    }

    /// The plan of the version a run pinned, validated again against the
    /// current plugin catalog (cached by digest).
    async fn prepare(&self, snap: &Snapshot) -> Result<Arc<Prepared>, EngineError> {
        if let Some(prepared) = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&snap.record.digest)
        {
            return Ok(prepared.clone());
        }
        let version = self
            .store
            .version(&snap.record.playbook, &snap.record.version)
            .await?
            .ok_or_else(|| {
                EngineError::Corrupt(format!(
                    "run {} pins a version that is gone",
                    snap.record.id
                ))
            })?;
        if version.digest != snap.record.digest {
            return Err(EngineError::Corrupt(format!(
                "run {} pinned {}, the stored version is {}",
                snap.record.id, snap.record.digest, version.digest
            )));
        }
        let mut index = PlaybookIndex::default();
        for stored in self.store.all_versions().await? {
            if let Ok(v) = semver::Version::parse(&stored.version) {
                index.insert(&stored.name, v, stored.playbook.inputs.clone());
            }
        }
        let ctx = Context {
            playbooks: Some(&index),
            ..Context::new(&self.plugins)
        };
        let validation = validate(
            &format!("{}@{}", version.name, version.version),
            version.source.as_bytes(),
            &ctx,
        );
        let Some(valid) = validation.valid() else {
            let first = validation
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.message.clone())
                .unwrap_or_default();
            return Err(EngineError::Unplannable(first));
        };
        let plan = cordon_graph::compile(valid, &self.plugins);
        let steps = valid
            .playbook()
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        let timeout = valid.playbook().timeout.map(|t| t.get());
        let inventory_readers = valid
            .playbook()
            .steps
            .iter()
            .filter(|s| {
                // The expressions are text inside the step; the validator has
                // already checked every name they read.
                serde_json::to_string(&(&s.condition, &s.with, &s.foreach))
                    .is_ok_and(|text| text.contains("inventory."))
            })
            .map(|s| s.id.clone())
            .collect();
        let prepared = Arc::new(Prepared {
            steps,
            plan,
            timeout,
            inventory_readers,
            concurrency: valid.playbook().concurrency.clone(),
            secret_inputs: secret_inputs(valid.playbook()),
            pins: version
                .plugins
                .iter()
                .filter_map(|(uses, pin)| Some((uses.clone(), pin.digest.clone()?)))
                .collect(),
        });
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(snap.record.digest.clone(), prepared.clone());
        Ok(prepared)
    }

    /// Drives a run as far as it can go now. Returns when the run is over,
    /// or when nothing can happen before a timer fires or a gate is decided
    /// (the lease is then released: timers and gates are durable).
    pub async fn drive(&self, run_id: &str) -> Result<Progress, EngineError> {
        // One drive per run per node: the lease says which node, this says
        // which task (a worker, a parent's child driver, `--wait`).
        let Some(_driving) = DriveGuard::enter(&self.driving, run_id) else {
            return Err(EngineError::LeaseLost(run_id.to_string()));
        };
        let now = self.clock.now();
        if !self
            .store
            .claim_run(run_id, &self.node, now, self.lease)
            .await?
        {
            return Err(EngineError::LeaseLost(run_id.to_string()));
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut inflight: HashSet<(String, u32)> = HashSet::new();
        let mut compensating: HashSet<String> = HashSet::new();
        let mut lease_until = now + self.lease;
        // While this node holds the lease it is the run's only writer, so it
        // follows its own commits in memory; anyone else's write (a cancel, a
        // gate decision) bumps the revision, the next commit is refused, and
        // the run is read again.
        let mut cached: Option<Snapshot> = None;
        let mut received: Vec<Done> = Vec::new();
        // Child runs (sub-playbooks) being driven by tasks of this call.
        let mut children: HashSet<String> = HashSet::new();
        let mut children_tried: HashSet<String> = HashSet::new();
        let mut inventory: Option<Arc<dyn Inventory>> = None;
        // Executions and child drives started by this drive; dropping the
        // set (on any return) aborts those still running.
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut parent_checked = false;
        loop {
            // Reap finished tasks so a long fan-out does not accumulate them.
            while tasks.try_join_next().is_some() {}
            let now = self.clock.now();
            // Renew once a third of the lease is used, not on every turn: a
            // renewal is a durable commit, and the lease only has to be valid
            // whenever this node acts — which it is, with two thirds to spare.
            if lease_until - now < self.lease * 2 / 3 {
                if !self
                    .store
                    .renew_lease(run_id, &self.node, now, self.lease)
                    .await?
                {
                    return Err(EngineError::LeaseLost(run_id.to_string()));
                }
                lease_until = now + self.lease;
            }
            let mut snap = match cached.take() {
                Some(snap) => snap,
                None => Snapshot::load(&self.store, run_id).await?,
            };
            if snap.run.status().is_terminal() {
                // A sub-playbook's child run is part of this run: it ends too.
                self.cancel_live_children(&snap).await?;
                self.store.release_lease(run_id, &self.node).await?;
                return Ok(Progress::Finished(snap.run.status()));
            }
            if !parent_checked {
                parent_checked = true;
                if self.orphaned(&snap).await? {
                    // Created for a parent that ended before recording it: it must not act alone.
                    self.cancel(run_id, "parent run ended").await?;
                    continue;
                }
            }
            let prep = match self.prepare(&snap).await {
                Ok(prep) => prep,
                // Retrying cannot help: end the run, saying why.
                Err(EngineError::Unplannable(message)) => {
                    self.fail_unplannable(&snap, message).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if snap.inventory.is_none() && prep.reads_inventory_now(&snap) {
                // Read once per drive, when a step that selects devices may start.
                if inventory.is_none() {
                    let devices = self.store.devices().await?;
                    inventory = Some(Arc::new(StoredInventory::new(devices)));
                }
                snap.inventory.clone_from(&inventory);
            }
            let mut dones = std::mem::take(&mut received);
            while let Ok(done) = rx.try_recv() {
                dones.push(done);
            }
            if !dones.is_empty() {
                forget_children(&dones, &mut children);
                // Record the results and, in the same commit, start what they
                // unblock: one durable commit per step of a chain, not two.
                if let Some(mut combined) =
                    self.fold_next(&prep, &snap, &dones, &mut inflight, &mut compensating, now)?
                {
                    combined.audit_calls(&prep, &snap);
                    match self
                        .commit_driving(&snap.record, &combined.changes, now)
                        .await
                    {
                        Ok(revision) => {
                            if snap.apply(&combined.changes, revision, now)?
                                && !snap.waits_for_children()
                            {
                                cached = Some(snap);
                            }
                            self.launch(
                                &prep,
                                combined,
                                &tx,
                                &mut inflight,
                                &mut compensating,
                                &mut tasks,
                            );
                            continue;
                        }
                        Err(StorageError::StaleRevision { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // Someone moved the run meanwhile (or the follow-up needs a
                // fresh read): record the results alone, from a fresh read.
                if let Some((changes, revision)) = self
                    .record(&prep, &snap, dones, &mut inflight, &mut compensating, now)
                    .await?
                    && snap.apply(&changes, revision, now)?
                    && !snap.waits_for_children()
                {
                    cached = Some(snap);
                }
                continue;
            }
            let mut busy: HashSet<(String, u32)> = inflight.clone();
            busy.extend(compensating.iter().map(|s| (s.clone(), 0)));
            let mut decision = decide(&prep, &snap, &busy, &self.node, now)?;
            if !decision.is_empty() {
                self.create_children(&snap, &mut decision, now).await?;
                decision.audit_calls(&prep, &snap);
                match self
                    .commit_driving(&snap.record, &decision.changes, now)
                    .await
                {
                    Ok(revision) => {
                        if snap.apply(&decision.changes, revision, now)?
                            && !snap.waits_for_children()
                        {
                            cached = Some(snap);
                        }
                    }
                    // Someone else (a cancel, a gate decision) moved the run: decide again.
                    Err(StorageError::StaleRevision { .. }) => continue,
                    // Its concurrency key has no free slot: it stays queued
                    // until a run holding one ends (workers try it again).
                    Err(StorageError::AtCapacity { .. }) => {
                        self.store.release_lease(run_id, &self.node).await?;
                        return Ok(Progress::Blocked { until: None });
                    }
                    Err(e) => return Err(e.into()),
                }
                for child in &decision.children {
                    self.drive_child(&child.id, &tx, &mut children, &mut tasks);
                }
                self.launch(
                    &prep,
                    decision,
                    &tx,
                    &mut inflight,
                    &mut compensating,
                    &mut tasks,
                );
                continue;
            }
            // Children left blocked by an earlier drive are driven again, once per drive.
            for (child, (status, _)) in &snap.children {
                if !status.is_terminal() && !children_tried.contains(child) {
                    children_tried.insert(child.clone());
                    self.drive_child(child, &tx, &mut children, &mut tasks);
                }
            }
            if inflight.is_empty() && compensating.is_empty() && children.is_empty() {
                self.store.release_lease(run_id, &self.node).await?;
                let until = snap.timers.first().map(|t| t.at);
                return Ok(Progress::Blocked { until });
            }
            // Wait for an execution to finish, renewing the lease meanwhile.
            let renew_every = (self.lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(5));
            tokio::select! {
                done = rx.recv() => {
                    // Handled at the top of the loop, with whatever else arrived.
                    received.extend(done);
                    if !snap.waits_for_children() {
                        cached = Some(snap);
                    }
                }
                () = tokio::time::sleep(renew_every) => {}
            }
        }
    }
}

impl Engine {
    /// Commits a change set to the run this node drives, from the revision
    /// `record` was read at, fenced by this node's lease.
    pub(crate) async fn commit_driving(
        &self,
        record: &RunRecord,
        changes: &ChangeSet,
        now: Timestamp,
    ) -> Result<i64, StorageError> {
        self.store
            .commit_as(Some(&self.node), &record.id, record.revision, changes, now)
            .await
    }
}

/// Child drivers that reported back are no longer running.
fn forget_children(dones: &[Done], children: &mut HashSet<String>) {
    for done in dones {
        if let Done::Child { run } = done {
            children.remove(run);
        }
    }
}

impl Engine {
    /// The change set recording `dones` on top of `snap`, merged with the
    /// decision that follows from it, when that decision can be derived in
    /// memory (no new timer ids or child runs involved). `None` otherwise.
    fn fold_next(
        &self,
        prep: &Prepared,
        snap: &Snapshot,
        dones: &[Done],
        inflight: &mut HashSet<(String, u32)>,
        compensating: &mut HashSet<String>,
        now: Timestamp,
    ) -> Result<Option<Decision>, EngineError> {
        let results = execution::results_decision(prep, snap, dones, now)?;
        if results.is_empty() {
            return Ok(None);
        }
        let mut projected = snap.clone();
        if !projected.apply(&results.changes, snap.record.revision, now)?
            || projected.waits_for_children()
        {
            return Ok(None);
        }
        let mut busy: HashSet<(String, u32)> = inflight.clone();
        for done in dones {
            match done {
                Done::Attempt { step, number, .. } => {
                    busy.remove(&(step.clone(), *number));
                }
                Done::Compensation { step, .. } => {
                    busy.remove(&(step.clone(), 0));
                }
                Done::Child { .. } => {}
            }
        }
        busy.extend(
            compensating
                .iter()
                .filter(|s| {
                    !dones
                        .iter()
                        .any(|d| matches!(d, Done::Compensation { step, .. } if step == *s))
                })
                .map(|s| (s.clone(), 0)),
        );
        let next = decide(prep, &projected, &busy, &self.node, now)?;
        if !next.children.is_empty() {
            return Ok(None);
        }
        // Committed below: the finished executions are no longer in flight.
        for done in dones {
            match done {
                Done::Attempt { step, number, .. } => {
                    inflight.remove(&(step.clone(), *number));
                }
                Done::Compensation { step, .. } => {
                    compensating.remove(step);
                }
                Done::Child { .. } => {}
            }
        }
        let mut combined = results;
        if next.changes.run.is_some() {
            combined.changes.run = next.changes.run;
        }
        for step in next.changes.steps {
            combined.changes.steps.retain(|s| s.key != step.key);
            combined.changes.steps.push(step);
        }
        combined.changes.new_steps.extend(next.changes.new_steps);
        combined.changes.attempts.extend(next.changes.attempts);
        combined.changes.timers.extend(next.changes.timers);
        combined.changes.events.extend(next.changes.events);
        combined.changes.approvals.extend(next.changes.approvals);
        combined
            .changes
            .notifications
            .extend(next.changes.notifications);
        for secret in next.changes.secrets {
            if !combined.changes.secrets.contains(&secret) {
                combined.changes.secrets.push(secret);
            }
        }
        combined.executions.extend(next.executions);
        combined.compensations.extend(next.compensations);
        Ok(Some(combined))
    }
}
