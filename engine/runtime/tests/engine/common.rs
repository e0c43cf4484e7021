//! What the engine tests share: a scripted executor standing in for the
//! plugin host, the plugin catalog, publishing, and the playbooks several
//! modules use.

pub use std::collections::{BTreeMap, HashMap, VecDeque};
pub use std::sync::{Arc, Mutex};
pub use std::time::Duration;

pub use chrono::{TimeZone, Utc};
pub use cordon_playbook::{Context, PluginCatalog, PluginDescriptor, validate};
pub use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
pub use cordon_runtime::clock::FakeClock;
pub use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
pub use cordon_runtime::run_state::RunStatus;
pub use cordon_runtime::{Engine, Progress, RunRequest, StartError};
pub use cordon_storage::{NewVersion, Store, on_both_backends};
pub use serde_json::{Value, json};

/// Answers each step from a script (default: `{"ok": true}`), records every
/// call, and can hang forever on chosen calls to simulate a crash mid-call.
#[derive(Debug, Default)]
pub struct Scripted {
    pub script: Mutex<HashMap<String, VecDeque<Result<Value, AttemptError>>>>,
    pub calls: Mutex<Vec<StepCall>>,
    pub compensations: Mutex<Vec<(String, Value)>>,
    pub hang_once: Mutex<Vec<String>>,
    /// Holds the next call until the test sends on the other end.
    pub hold: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    /// How long each call takes, and the most calls seen in flight at once.
    pub delay: Mutex<Option<Duration>>,
    pub active: Arc<std::sync::atomic::AtomicUsize>,
    pub peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    pub fn answer(&self, step: &str, results: Vec<Result<Value, AttemptError>>) {
        self.script
            .lock()
            .expect("lock")
            .insert(step.into(), results.into());
    }

    pub fn calls(&self) -> Vec<StepCall> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Executor for Scripted {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        self.calls.lock().expect("lock").push(call.clone());
        let hang = {
            let mut hang = self.hang_once.lock().expect("lock");
            let found = hang.iter().position(|s| *s == call.step);
            found.map(|i| hang.remove(i)).is_some()
        };
        let result = self
            .script
            .lock()
            .expect("lock")
            .get_mut(&call.step)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Ok(json!({"ok": true, "device": call.inputs.get("device")})));
        let hold = self.hold.lock().expect("lock").take();
        let delay = *self.delay.lock().expect("lock");
        let (active, peak) = (self.active.clone(), self.peak.clone());
        Box::pin(async move {
            use std::sync::atomic::Ordering::SeqCst;
            let now = active.fetch_add(1, SeqCst) + 1;
            peak.fetch_max(now, SeqCst);
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            active.fetch_sub(1, SeqCst);
            if hang {
                std::future::pending::<()>().await;
            }
            if let Some(hold) = hold {
                let _ = hold.await;
            }
            result
        })
    }

    fn compensate(&self, call: StepCall, outputs: Value) -> BoxFuture<Result<(), String>> {
        self.compensations
            .lock()
            .expect("lock")
            .push((call.step, outputs));
        Box::pin(async { Ok(()) })
    }
}

pub fn catalog() -> Arc<PluginCatalog> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/descriptors");
    let descriptors = std::fs::read_dir(dir).expect("descriptors").map(|e| {
        serde_json::from_str::<PluginDescriptor>(
            &std::fs::read_to_string(e.expect("entry").path()).expect("read"),
        )
        .expect("descriptor")
    });
    Arc::new(PluginCatalog::new(descriptors).expect("catalog"))
}

pub fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
        .single()
        .expect("time")
}

pub async fn publish(store: &Store, yaml: &str) {
    let catalog = catalog();
    let validation = validate("p.yaml", yaml.as_bytes(), &Context::new(&catalog));
    assert!(!validation.has_errors(), "{:#?}", validation.diagnostics);
    let valid = validation.into_valid().expect("valid");
    store
        .publish(
            NewVersion::new(
                valid.playbook(),
                yaml.into(),
                BTreeMap::new(),
                start(),
                "alice".into(),
            )
            .expect("v"),
        )
        .await
        .expect("publish");
}

pub fn engine(
    store: &Store,
    clock: &Arc<FakeClock>,
    executor: &Arc<Scripted>,
    node: &str,
) -> Engine {
    Engine::new(
        store.clone(),
        clock.clone(),
        executor.clone(),
        catalog(),
        node,
        Duration::from_secs(30),
    )
}

pub fn request(playbook: &str, inputs: Value) -> RunRequest {
    let inputs = inputs
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    RunRequest {
        playbook: playbook.into(),
        version: None,
        inputs,
        trigger: json!({"kind": "manual", "by": "alice"}),
        dry_run: false,
    }
}

pub async fn statuses(store: &Store, run: &str) -> BTreeMap<String, String> {
    store
        .run(run)
        .await
        .expect("read")
        .expect("run")
        .steps
        .into_iter()
        .map(|s| (s.key, s.state.status))
        .collect()
}

pub const CONTAIN: &str = r#"
cordon: v1
name: contain
version: 1.0.0
inputs:
  device: {type: device}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}', mode: soft}
  - id: health
    needs: [quarantine]
    uses: check-health@1
    with: {device: '${{ steps.quarantine.outputs.device }}'}
  - id: snapshot
    needs: [quarantine]
    uses: check-health@1
    with: {device: '${{ inputs.device }}', window: 5m}
  - id: restore
    needs: [health, snapshot]
    uses: restore-device@1
    with: {device: '${{ inputs.device }}'}
    retry: {attempts: 3, backoff: 10s}
"#;

pub const GATED: &str = r#"
cordon: v1
name: gated
version: 1.0.0
inputs:
  device: {type: device}
  hard: {type: boolean, default: false}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}'}
  - id: cut
    needs: [quarantine]
    if: inputs.hard
    uses: isolate@1
    with: {device: '${{ inputs.device }}', mode: hard}
  - id: approve
    needs: [quarantine]
    approval: {approvers: {roles: [security-lead]}, timeout: 30m}
  - id: revoke
    needs: [approve]
    uses: revoke-cert@1
    with: {device: '${{ inputs.device }}'}
on_failure: {compensate: false}
"#;

/// Decides gate `step` of `run` as a person the gate names (its first
/// listed role and group), on the plan the request shows now.
pub async fn decide(engine: &Engine, store: &Store, run: &str, step: &str, approve: bool) {
    use cordon_runtime::approval::{Ballot, Person, Verdict};
    let request = store
        .approval_of_step(run, step)
        .await
        .expect("read")
        .expect("the gate opened a request");
    let request = engine.approval(&request.id).await.expect("request");
    let names = |key: &str| -> Vec<String> {
        request.approvers[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let person = Person {
        user: names("users")
            .first()
            .cloned()
            .unwrap_or_else(|| "approver".into()),
        groups: names("groups"),
        roles: names("roles"),
    };
    let ballot = Ballot {
        request: request.id.clone(),
        verdict: if approve {
            Verdict::Approve
        } else {
            Verdict::Deny
        },
        comment: Some("test decision".into()),
        input: BTreeMap::new(),
        plan_digest: request.plan_digest.clone(),
        channel: "api".into(),
        link: None,
    };
    engine
        .decide_approval(&person, &ballot)
        .await
        .expect("decide");
}
