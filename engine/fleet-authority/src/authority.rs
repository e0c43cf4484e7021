//! The authority's state and the workflows the API drives: issuing device
//! certificates, revoking them (publish a validated CRL, reload the broker,
//! prove enforcement) and signing commands.
//!
//! Every change is made on a copy of the registry and adopted only once the
//! CRL that reflects it has been validated and written, so a failed
//! validation leaves both `crl.pem` and `authority.json` as they were. After
//! the CRL is in place the revocation is never undone, even if the broker
//! cannot be reloaded or the probe fails: those failures are reported, with
//! the revocation, for an operator to act on.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cordon_fleet::command::{Command, Order, SignedCommand};
use cordon_fleet::keys::{self, SigningKey};
use serde::Serialize;
use serde_json::json;

use crate::broker;
use crate::crl::{self, CrlInfo};
use crate::files;
use crate::issue::{Ca, LEAF_DAYS, Profile};
use crate::names::{self, NameError};
use crate::probe::{self, Identity, ProbeReport, Target};
use crate::registry::{Kind, Reason, Record, Registry, Status, serial_text};

/// The CN of the authority's own valid client certificate.
pub const PROBE_CN: &str = "probe-authority";
/// How long a sentinel certificate is valid: only for its probe.
const SENTINEL_DAYS: i64 = 2;

/// A failed request: HTTP status, stable code, message, optional details.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// For programs (what was done despite the failure).
    pub details: Option<serde_json::Value>,
}

impl Failure {
    /// A failure without details.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    fn internal(message: impl std::fmt::Display) -> Failure {
        Failure::new(500, "internal", message.to_string())
    }
}

impl From<NameError> for Failure {
    fn from(e: NameError) -> Failure {
        Failure::new(422, e.code(), e.to_string())
    }
}

impl From<crl::CrlError> for Failure {
    fn from(e: crl::CrlError) -> Failure {
        Failure::new(500, e.code(), e.to_string())
    }
}

/// A certificate as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertView {
    /// Serial, hex.
    pub serial: String,
    /// Common name.
    pub cn: String,
    /// Valid or revoked.
    pub status: Status,
    /// When revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why revoked.
    pub reason: Option<Reason>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

impl From<&Record> for CertView {
    fn from(r: &Record) -> CertView {
        CertView {
            serial: r.serial.clone(),
            cn: r.cn.clone(),
            status: r.status,
            revoked_at: r.revoked_at,
            reason: r.reason,
            not_after: r.not_after,
        }
    }
}

/// A published CRL, proven enforced by the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The CRL.
    pub crl: CrlInfo,
    /// SIGHUP delivered.
    pub broker_reloaded: bool,
    /// What the probe showed.
    pub probe: ProbeReport,
}

/// Issues a certificate for `cn` into `cert_path`/`key_path` (key 0600) and
/// records it in `registry` (the caller persists the registry).
#[allow(clippy::too_many_arguments)]
pub fn issue_to_files(
    ca: &Ca,
    registry: &mut Registry,
    cn: &str,
    kind: Kind,
    profile: Profile,
    cert_path: &Path,
    key_path: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Record> {
    let serial = registry.take_serial();
    let issued = ca.issue(cn, serial, profile, now, LEAF_DAYS)?;
    files::write_atomic(key_path, issued.key_pem.as_bytes(), files::PRIVATE)?;
    files::write_atomic(cert_path, issued.cert_pem.as_bytes(), files::PUBLIC)?;
    let record = Record {
        serial: serial_text(serial),
        cn: cn.to_string(),
        kind,
        not_before: issued.not_before,
        not_after: issued.not_after,
        status: Status::Valid,
        revoked_at: None,
        reason: None,
    };
    registry.certificates.push(record.clone());
    Ok(record)
}

/// Builds, validates and writes a CRL for `candidate`, numbered above both
/// the registry's and the on-disk CRL's number. With `sentinel`, first
/// issues a sentinel certificate and revokes it in the same CRL, and returns
/// its identity for the probe. On success `candidate.crl_number` is the new
/// number; the caller persists `candidate`.
pub fn publish_crl(
    dir: &Path,
    ca: &Ca,
    candidate: &mut Registry,
    sentinel: bool,
    now: DateTime<Utc>,
) -> Result<(CrlInfo, Option<Identity>), Failure> {
    let previous = candidate.crl_number.max(crl::number_on_disk(dir));
    let number = previous + 1;
    let identity = if sentinel {
        let serial = candidate.take_serial();
        let cn = format!("sentinel-{number}");
        let issued = ca
            .issue(&cn, serial, Profile::Client, now, SENTINEL_DAYS)
            .map_err(Failure::internal)?;
        candidate.certificates.push(Record {
            serial: serial_text(serial),
            cn: cn.clone(),
            kind: Kind::Sentinel,
            not_before: issued.not_before,
            not_after: issued.not_after,
            status: Status::Revoked,
            revoked_at: Some(now),
            reason: Some(Reason::Superseded),
        });
        Some(Identity {
            cn,
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        })
    } else {
        None
    };
    let pem = crl::build(ca, candidate, number, now)?;
    let revoked = candidate.revoked_serials();
    let expect = crl::Expect {
        revoked: &revoked,
        previous_number: previous,
    };
    let info = crl::replace(dir, pem.as_bytes(), ca.cert_der(), expect, Utc::now())?;
    candidate.crl_number = info.number;
    Ok((info, identity))
}

/// The running authority.
#[derive(Debug)]
pub struct Authority {
    dir: PathBuf,
    ca: Ca,
    registry: Registry,
    command_key: SigningKey,
    probe_identity: Identity,
    target: Target,
    pid_file: PathBuf,
}

impl Authority {
    /// Opens the state directory made by `init`; issues the probe
    /// certificate on first use.
    pub fn open(dir: &Path, broker: (String, u16), pid_file: &Path) -> anyhow::Result<Authority> {
        let mut registry = Registry::load(dir)?.ok_or_else(|| {
            anyhow::anyhow!("{} has no registry: run `init` first", dir.display())
        })?;
        let ca = Ca::load(dir)?;
        let command_key = keys::parse_secret(&std::fs::read_to_string(dir.join("command.key"))?)?;
        let probe_dir = dir.join("probe");
        std::fs::create_dir_all(&probe_dir)?;
        let (cert_path, key_path) = (
            probe_dir.join(format!("{PROBE_CN}.crt")),
            probe_dir.join(format!("{PROBE_CN}.key")),
        );
        if registry.valid(Kind::Probe, PROBE_CN).is_none() || !cert_path.exists() {
            let mut candidate = registry.clone();
            issue_to_files(
                &ca,
                &mut candidate,
                PROBE_CN,
                Kind::Probe,
                Profile::Client,
                &cert_path,
                &key_path,
                Utc::now(),
            )?;
            candidate.save(dir)?;
            registry = candidate;
        }
        let probe_identity = Identity {
            cn: PROBE_CN.into(),
            cert_pem: std::fs::read_to_string(&cert_path)?,
            key_pem: std::fs::read_to_string(&key_path)?,
        };
        let target = Target {
            host: broker.0,
            port: broker.1,
            ca_pem: ca.cert_pem().to_string(),
        };
        Ok(Authority {
            dir: dir.to_path_buf(),
            ca,
            registry,
            command_key,
            probe_identity,
            target,
            pid_file: pid_file.to_path_buf(),
        })
    }

    /// The registry as it is now.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Issues a certificate to a new device.
    pub fn issue_device(&mut self, id: &str) -> Result<Record, Failure> {
        names::check_device_name(id, &self.registry.reserved)?;
        if let Some(active) = self.registry.valid(Kind::Device, id) {
            return Err(Failure::new(
                409,
                "already_issued",
                format!("{id} already has the valid certificate {}", active.serial),
            ));
        }
        let devices = self.dir.join("devices");
        std::fs::create_dir_all(&devices).map_err(Failure::internal)?;
        let mut candidate = self.registry.clone();
        let record = issue_to_files(
            &self.ca,
            &mut candidate,
            id,
            Kind::Device,
            Profile::Client,
            &devices.join(format!("{id}.crt")),
            &devices.join(format!("{id}.key")),
            Utc::now(),
        )
        .map_err(Failure::internal)?;
        candidate.save(&self.dir).map_err(Failure::internal)?;
        self.registry = candidate;
        tracing::info!(device = id, serial = %record.serial, "issued device certificate");
        Ok(record)
    }

    /// Whether the CRL currently on disk lists `serial`, and its number.
    pub fn crl_on_disk(&self) -> Option<CrlInfo> {
        std::fs::read(self.dir.join(crl::FILE))
            .ok()
            .and_then(|bytes| crl::inspect(&bytes).ok())
    }

    /// Revokes `serial`. Returns the record, whether it was already revoked,
    /// and the publication (CRL, reload, probe).
    pub async fn revoke(
        &mut self,
        serial: u64,
        reason: Reason,
    ) -> Result<(CertView, bool, Published), Failure> {
        let mut candidate = self.registry.clone();
        let record = candidate.by_serial_mut(serial).ok_or_else(|| {
            Failure::new(
                404,
                "unknown_certificate",
                format!("no certificate {}", serial_text(serial)),
            )
        })?;
        if matches!(record.kind, Kind::Ca | Kind::Probe) {
            return Err(Failure::new(
                422,
                "not_revocable",
                format!("{} is the authority's own certificate", record.cn),
            ));
        }
        let already = record.status == Status::Revoked;
        if !already {
            record.status = Status::Revoked;
            record.revoked_at = Some(Utc::now());
            record.reason = Some(reason);
            tracing::warn!(serial = %record.serial, cn = %record.cn, ?reason, "revoking certificate");
        }
        let published = self.publish(candidate).await;
        let view = self
            .registry
            .by_serial(serial)
            .map(CertView::from)
            .ok_or_else(|| Failure::internal("revoked record vanished"))?;
        match published {
            Ok(published) => Ok((view, already, published)),
            Err(mut failure) => {
                if failure.status == 502 {
                    // The CRL is published; only the proof is missing.
                    let mut details = failure.details.take().unwrap_or_else(|| json!({}));
                    details["revocation_recorded"] = json!(true);
                    details["certificate"] = json!(view);
                    details["already_revoked"] = json!(already);
                    failure.details = Some(details);
                }
                Err(failure)
            }
        }
    }

    /// Publishes a fresh CRL for the current registry (refreshes nextUpdate).
    pub async fn republish(&mut self) -> Result<Published, Failure> {
        let candidate = self.registry.clone();
        self.publish(candidate).await
    }

    /// Publishes the CRL for `candidate`, adopts it, reloads the broker and
    /// probes it.
    async fn publish(&mut self, mut candidate: Registry) -> Result<Published, Failure> {
        let (info, sentinel) = publish_crl(&self.dir, &self.ca, &mut candidate, true, Utc::now())?;
        // The CRL on disk now reflects `candidate`: adopt it even if saving
        // the registry fails, so memory matches what the broker will read.
        self.registry = candidate;
        self.registry.save(&self.dir).map_err(|e| {
            Failure::new(
                500,
                "persist_failed",
                format!("crl.pem is published but authority.json could not be written: {e}"),
            )
        })?;
        tracing::info!(
            number = info.number,
            revoked = info.revoked_count,
            "published CRL"
        );
        let crl_json = json!(info);
        let pid = broker::reload(&self.pid_file).map_err(|e| Failure {
            status: 502,
            code: "broker_reload_failed",
            message: e.to_string(),
            details: Some(json!({ "crl": crl_json, "broker_reloaded": false })),
        })?;
        tracing::info!(pid, "sent SIGHUP to the broker");
        let sentinel = sentinel.ok_or_else(|| Failure::internal("no sentinel"))?;
        let report = probe::prove(&self.target, &sentinel, &self.probe_identity)
            .await
            .map_err(|e| Failure {
                status: 502,
                code: "probe_failed",
                message: e.to_string(),
                details: Some(json!({ "crl": crl_json, "broker_reloaded": true })),
            })?;
        tracing::info!(
            ms = report.ms,
            attempts = report.attempts,
            "broker enforces the CRL"
        );
        Ok(Published {
            crl: info,
            broker_reloaded: true,
            probe: report,
        })
    }

    /// Signs a command for a device with a valid certificate.
    pub fn sign(
        &self,
        id: &str,
        device: &str,
        order: Order,
        validity_secs: i64,
    ) -> Result<SignedCommand, Failure> {
        if id.is_empty() || id.len() > 256 {
            return Err(Failure::new(
                400,
                "bad_request",
                "`id` must be 1 to 256 characters",
            ));
        }
        let record = self
            .registry
            .device(device)
            .ok_or_else(|| Failure::new(404, "unknown_device", format!("no device {device}")))?;
        if record.status == Status::Revoked {
            return Err(Failure::new(
                409,
                "device_revoked",
                format!("{device}'s certificate {} is revoked", record.serial),
            ));
        }
        let kind = order.name();
        let command = Command::new(id, device, order, Utc::now().timestamp(), validity_secs)
            .map_err(Failure::internal)?;
        tracing::info!(
            id,
            device,
            order = kind,
            expires_at = command.expires_at,
            "signed command"
        );
        Ok(SignedCommand::sign(command, &self.command_key))
    }
}
