//! The API's resources as JSON: what requests send and responses return.
//! The CLI's client reads the same types, and `cordon runs show` renders a
//! [`RunView`] whether it came from the embedded database or a server.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cordon_storage::{AttemptRecord, DeviceRecord, RunRecord, TokenRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::config::ApiRole;

/// What secret inputs become wherever a run is shown.
pub const REDACTED: &str = "[secret]";

/// Liveness.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Readiness: the database answers and every migration is applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Migrations applied.
    pub migrations: usize,
}

/// One line of a run listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunSummaryView {
    /// The run id.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The pinned version.
    pub version: String,
    /// The run's state.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A run with its steps and attempts. Secret inputs are shown as `[secret]`,
/// and their values are redacted wherever else they appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    /// The run id.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The pinned version.
    pub version: String,
    /// The pinned content digest.
    pub digest: String,
    /// The run's state.
    pub status: String,
    /// The whole stored state (reasons, times).
    pub state: Value,
    /// The resolved inputs.
    pub inputs: BTreeMap<String, Value>,
    /// How it started.
    pub trigger: Value,
    /// Whether side effects are recorded instead of performed.
    pub dry_run: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its steps, in creation order.
    pub steps: Vec<StepView>,
    /// Every attempt, with its idempotency key.
    pub attempts: Vec<AttemptView>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    /// The step id, or `id[item]` for a fan-out item.
    pub key: String,
    /// The step's state.
    pub status: String,
    /// The whole stored state.
    pub state: Value,
    /// The current attempt number (0 before the first).
    pub attempt: u32,
    /// Its outputs, once it succeeded.
    pub outputs: Option<Value>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One attempt of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// The step key.
    pub step: String,
    /// The attempt number, from 1.
    pub number: u32,
    /// `run/step/attempt`, carried by the plugin call.
    pub idempotency_key: String,
    /// The attempt's state.
    pub status: String,
    /// The whole stored state (errors among it).
    pub state: Value,
    /// The node that ran it.
    pub node: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunView {
    /// The view of a stored run, with the inputs named in `secret_inputs`
    /// shown as `[secret]` and their values redacted from every state,
    /// output and trigger.
    pub fn new(record: &RunRecord, attempts: &[AttemptRecord], secret_inputs: &[String]) -> Self {
        let secrets: Vec<String> = secret_inputs
            .iter()
            .filter_map(|name| record.inputs.get(name))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        let clean = |value: &Value| {
            let mut value = value.clone();
            cordon_storage::redact(&mut value, &secrets);
            value
        };
        RunView {
            id: record.id.clone(),
            playbook: record.playbook.clone(),
            version: record.version.clone(),
            digest: record.digest.clone(),
            status: record.state.status.clone(),
            state: clean(&record.state.state),
            inputs: record
                .inputs
                .iter()
                .map(|(name, value)| {
                    let shown = if secret_inputs.contains(name) {
                        Value::from(REDACTED)
                    } else {
                        clean(value)
                    };
                    (name.clone(), shown)
                })
                .collect(),
            trigger: clean(&record.trigger),
            dry_run: record.dry_run,
            created_at: record.created_at,
            updated_at: record.updated_at,
            steps: record
                .steps
                .iter()
                .map(|s| StepView {
                    key: s.key.clone(),
                    status: s.state.status.clone(),
                    state: clean(&s.state.state),
                    attempt: s.attempt,
                    outputs: s.outputs.as_ref().map(clean),
                    updated_at: s.updated_at,
                })
                .collect(),
            attempts: attempts
                .iter()
                .map(|a| AttemptView {
                    step: a.step.clone(),
                    number: a.number,
                    idempotency_key: a.idempotency_key.clone(),
                    status: a.state.status.clone(),
                    state: clean(&a.state.state),
                    node: a.node.clone(),
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                })
                .collect(),
        }
    }
}

/// The names of a playbook's inputs declared `secret`.
pub fn secret_inputs(playbook: &cordon_playbook::Playbook) -> Vec<String> {
    playbook
        .inputs
        .iter()
        .filter(|(_, spec)| spec.secret)
        .map(|(name, _)| name.clone())
        .collect()
}

/// `POST /runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The playbook's name.
    pub playbook: String,
    /// The exact version; the newest when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Inputs by name, as JSON of their declared types.
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Plugins record what they would do instead of doing it.
    #[serde(default)]
    pub dry_run: bool,
}

/// A run just started.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartedRun {
    /// The new run's id.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The version it pinned.
    pub version: String,
    /// `queued`: a node's work loop starts it.
    pub status: String,
}

/// What a cancel, pause or resume did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ControlOutcome {
    /// The run.
    pub id: String,
    /// Its state before.
    pub previous: String,
    /// Its state now.
    pub status: String,
}

/// `POST /runs/{id}/rerun`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rerun {
    /// The step to start again from.
    pub from: String,
}

/// A rerun just queued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RerunStarted {
    /// The new run's id.
    pub id: String,
    /// The run it reruns.
    pub of: String,
    /// The step it starts from.
    pub from: String,
}

/// A published playbook and its newest version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlaybookView {
    /// The name.
    pub name: String,
    /// The highest version.
    pub latest: String,
    /// Its digest.
    pub digest: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// How many versions exist.
    pub versions: usize,
}

/// One version in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionSummaryView {
    /// The version.
    pub version: String,
    /// Its digest.
    pub digest: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Who published it.
    pub published_by: String,
}

/// One version as published.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    /// The name.
    pub name: String,
    /// The version.
    pub version: String,
    /// `sha256:<hex>` of the canonical content.
    pub digest: String,
    /// The YAML exactly as published.
    pub source: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Who published it.
    pub published_by: String,
    /// Plugin pins by `name@major`: `{version, digest?}`.
    pub plugins: Value,
    /// The declared inputs (type, default, description, secret), by name.
    pub inputs: Value,
}

/// What `POST /playbooks` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Published {
    /// The name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its digest.
    pub digest: String,
    /// `false` when the same content was already published (nothing changed).
    pub created: bool,
    /// The validator's warnings, in the SPEC §3.2 shape.
    pub diagnostics: Vec<Value>,
}

/// Two versions compared, step by step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiffView {
    /// `name@version` of the older side.
    pub from: String,
    /// `name@version` of the newer side.
    pub to: String,
    /// Whether they mean the same thing.
    pub same: bool,
    /// The diff as `cordon diff` prints it.
    pub text: String,
}

/// A device of the inventory (nothing secret in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceView {
    /// The inventory id.
    pub id: String,
    /// The device type (`plc`, `gateway`).
    #[serde(rename = "type")]
    pub device_type: String,
    /// The site.
    pub site: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// The firmware it runs.
    #[serde(default)]
    pub firmware: String,
    /// The serial of its client certificate.
    #[serde(default)]
    pub cert_serial: Option<String>,
    /// Who is responsible for it.
    #[serde(default)]
    pub owner: String,
    /// Whether continuity drills may act on it.
    #[serde(default)]
    pub drill: bool,
}

impl From<&DeviceRecord> for DeviceView {
    fn from(d: &DeviceRecord) -> Self {
        DeviceView {
            id: d.id.clone(),
            device_type: d.device_type.clone(),
            site: d.site.clone(),
            tags: d.tags.clone(),
            criticality: d.criticality.clone(),
            firmware: d.firmware.clone(),
            cert_serial: d.cert_serial.clone(),
            owner: d.owner.clone(),
            drill: d.drill,
        }
    }
}

impl From<DeviceView> for DeviceRecord {
    fn from(d: DeviceView) -> Self {
        DeviceRecord {
            id: d.id,
            device_type: d.device_type,
            site: d.site,
            tags: d.tags,
            criticality: d.criticality,
            firmware: d.firmware,
            cert_serial: d.cert_serial.filter(|s| !s.is_empty()),
            owner: d.owner,
            drill: d.drill,
        }
    }
}

/// `POST /inventory`: devices to add or replace, all or nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportDevices {
    /// The devices.
    pub devices: Vec<DeviceView>,
}

/// What an import changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedDevices {
    /// Devices written.
    pub imported: usize,
    /// Of which new.
    pub new: usize,
    /// Of which replaced.
    pub updated: usize,
}

/// An API token, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The token's public id.
    pub id: String,
    /// The user it speaks for.
    pub user: String,
    /// Its API role.
    pub role: String,
    /// Its name.
    pub name: String,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenView {
    /// The view of a stored token at `now`.
    pub fn new(t: &TokenRecord, now: DateTime<Utc>) -> Self {
        TokenView {
            id: t.id.clone(),
            user: t.user.clone(),
            role: t.role.clone(),
            name: t.name.clone(),
            status: t.status(now).as_str().to_string(),
            created_at: t.created_at,
            created_by: t.created_by.clone(),
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// `POST /tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The user it speaks for (must be in the directory).
    pub user: String,
    /// Its API role.
    pub role: ApiRole,
    /// Its name (default: the user's name).
    #[serde(default)]
    pub name: Option<String>,
    /// How long it lasts (`30d`, `12h`); forever when absent.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// `cordon_<id>_<secret>`: keep it; it is not shown again.
    pub token: String,
    /// The stored record.
    pub record: TokenView,
}
