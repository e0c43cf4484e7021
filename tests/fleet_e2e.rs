//! The device-action plugins against the reference fleet, end to end: a
//! real Mosquitto (mutual TLS, CRL, dynamic security), the real fleet CA,
//! 20 simulated devices obeying only signed commands, `cordon serve` running
//! the signed WASM components, approvals over the API and mail to a real
//! SMTP sink. Every claim is checked from outside Cordon: by the broker's
//! own client records, by real client connections and by what the devices
//! say they received.

mod fleet_support;
mod server_support;
mod smtp_support;

use std::time::{Duration, Instant};

use fleet_support::{Devices, Fleet, signed_plugins};
use serde_json::{Value, json};
use server_support::{Api, Server};
use smtp_support::Sink;

/// A Cordon server for `fleet`: its connections, the signed plugins, the
/// people of the example playbooks, and mail to `sink`.
fn cordon_for(fleet: &Fleet, sink: &Sink) -> Server {
    let plugins = signed_plugins();
    let config = format!(
        "{plugins}{connections}server:
  public_url: http://cordon.test
smtp: {{host: 127.0.0.1, port: {port}, tls: none, from: 'Cordon <cordon@fleet.test>'}}
users:
  rita: {{email: rita@fleet.test, roles: [responder]}}
  sam: {{email: sam@fleet.test, roles: [approver, security-lead]}}
  tess: {{email: tess@fleet.test, roles: [approver, security-lead]}}
  otto: {{email: otto@fleet.test, roles: [on-call], groups: [ot-security, ot-engineering]}}
  root: {{roles: [admin]}}
",
        connections = fleet.cordon_config(),
        port = sink.port,
    );
    Server::start_with(&config)
}

async fn setup(
    devices: &Devices,
    tags: fn(&str) -> Vec<&'static str>,
    playbooks: &[&str],
) -> (Fleet, Sink, Server) {
    let began = Instant::now();
    let fleet = Fleet::start(devices);
    let fleet_up = began.elapsed();
    let sink = Sink::start();
    let server = cordon_for(&fleet, &sink);
    eprintln!(
        "fleet of {} up in {fleet_up:?}; cordon serve up in {:?} ({:?} in all)",
        devices.count,
        server.started_in,
        began.elapsed()
    );
    let admin = server.api(Some(&server.token("root", "admin")));
    for yaml in playbooks {
        let published = admin.publish(yaml).await;
        assert!(published.status < 300, "{}", published.text);
    }
    let imported = admin
        .post_json("/api/v1/inventory", &fleet.inventory(tags))
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    (fleet, sink, server)
}

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../playbooks")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(path).expect("example playbook")
}

async fn start(api: &Api, playbook: &str, inputs: Value, dry_run: bool) -> String {
    let started = api
        .post_json(
            "/api/v1/runs",
            &json!({"playbook": playbook, "inputs": inputs, "dry_run": dry_run}),
        )
        .await;
    assert!(started.status < 300, "{}", started.text);
    started.body["id"].as_str().expect("run id").to_string()
}

async fn pending_approval(api: &Api, run: &str) -> Value {
    let began = Instant::now();
    loop {
        let pending = api
            .get(&format!("/api/v1/approvals?run={run}&status=pending"))
            .await;
        assert_eq!(pending.status, 200, "{}", pending.text);
        if let Some(request) = pending.body.as_array().and_then(|a| a.first()) {
            return request.clone();
        }
        let state = api.get(&format!("/api/v1/runs/{run}")).await;
        assert!(
            began.elapsed() < Duration::from_secs(60) && state.body["status"] != "failed",
            "no approval request for {run}: {:#}",
            state.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn approve(api: &Api, request: &Value, comment: &str) {
    let decided = api
        .post_json(
            &format!(
                "/api/v1/approvals/{}/approve",
                request["id"].as_str().expect("id")
            ),
            &json!({"plan_digest": request["plan_digest"], "comment": comment}),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
}

async fn finished(api: &Api, run: &str, within: Duration) -> Value {
    let began = Instant::now();
    loop {
        let state = api.get(&format!("/api/v1/runs/{run}")).await;
        assert_eq!(state.status, 200, "{}", state.text);
        if matches!(
            state.body["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            // For the record (`--nocapture`): how long each attempt took.
            for a in state.body["attempts"].as_array().into_iter().flatten() {
                eprintln!(
                    "{run} {} #{} {} {} -> {}",
                    a["step"], a["number"], a["status"], a["started_at"], a["finished_at"]
                );
            }
            return state.body;
        }
        assert!(
            began.elapsed() < within,
            "run {run} still going: {:#}",
            state.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn step<'a>(run: &'a Value, key: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("no step {key} in {run:#}"))
}

/// Whether the device's state file lists an admitted command with this id.
fn obeyed(status: &Value, id: &str) -> bool {
    status["commands"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["id"] == id))
}

fn all_dev(_: &str) -> Vec<&'static str> {
    vec!["fleet"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_device_is_isolated_then_revoked_after_two_approvals() {
    let devices = Devices {
        count: 20,
        compromised: vec!["dev-1".into()],
        ..Devices::default()
    };
    let (fleet, sink, server) =
        setup(&devices, all_dev, &[&example("isolate-compromised-device")]).await;
    let rita = server.api(Some(&server.token("rita", "responder")));
    let run = start(
        &rita,
        "isolate-compromised-device",
        json!({"device": "dev-1", "ticket": "INC-7"}),
        false,
    )
    .await;

    // The gate waits: the device is quarantined by now.
    let request = pending_approval(&rita, &run).await;
    let (roles, disabled) = fleet.client("dev-1");
    assert!(
        roles.contains(&"quarantine".to_string()) && !disabled,
        "{roles:?} {disabled}"
    );
    // The broker kicked its session; it came back and its command
    // subscription is refused, while its telemetry still flows.
    let status = fleet.wait_status("dev-1", Duration::from_secs(10), |s| {
        s["connected"] == true && s["subscribed"] == false && s["connects"].as_u64() >= Some(2)
    });
    let telemetry = fleet.record("fleet/dev-1/telemetry/heartbeat");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        telemetry.lines().len() >= 2,
        "quarantined dev-1 must still report: {status:#}"
    );
    fleet.send_command("dev-1", "probe-quarantined", &json!({"kind": "report"}));
    fleet.send_command("dev-2", "probe-neighbour", &json!({"kind": "report"}));
    fleet.wait_status("dev-2", Duration::from_secs(5), |s| {
        obeyed(s, "probe-neighbour")
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !obeyed(&fleet.status("dev-1"), "probe-quarantined"),
        "a quarantined device received a command"
    );

    // Two security leads approve the revocation.
    approve(
        &server.api(Some(&server.token("sam", "approver"))),
        &request,
        "confirmed compromise",
    )
    .await;
    approve(
        &server.api(Some(&server.token("tess", "approver"))),
        &request,
        "agreed, revoke",
    )
    .await;
    let done = finished(&rita, &run, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");

    let revoke = &step(&done, "revoke")["outputs"];
    assert_eq!(revoke["verified"], true, "{revoke:#}");
    assert_eq!(revoke["broker_reloaded"], true, "{revoke:#}");
    let serial = revoke["serial"].as_str().expect("serial");
    let inventory = fleet.inventory(all_dev);
    assert_eq!(inventory["devices"][0]["cert_serial"], serial);

    // Its live session was dropped and it cannot come back with that
    // certificate; every other device is unaffected.
    let revoked = fleet.wait_status("dev-1", Duration::from_secs(10), |s| {
        s["connected"] == false && s["refused_connects"].as_u64() >= Some(1)
    });
    assert!(
        revoked["last_error"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("revoked"),
        "{revoked:#}"
    );
    assert!(
        fleet.client("dev-1").1,
        "the broker client must be disabled"
    );
    for n in 2..=20 {
        let status = fleet.status(&format!("dev-{n}"));
        assert_eq!(status["connected"], true, "dev-{n}: {status:#}");
        assert_eq!(status["refused_connects"], 0, "dev-{n}: {status:#}");
    }
    fleet.send_command("dev-17", "after-revocation", &json!({"kind": "report"}));
    fleet.wait_status("dev-17", Duration::from_secs(5), |s| {
        obeyed(s, "after-revocation")
    });

    let mail = sink.mail_to("otto@fleet.test", "isolated and certificate revoked");
    assert!(mail.contains(serial), "{mail}");
}

const ROLLBACK: &str = "cordon: v1
name: rollback-wave-fast
version: 1.0.0
description: The rollback wave of playbooks/rollback-firmware-wave.yaml without its gate and with short pauses.
inputs:
  group: {type: string}
  image: {type: string}
steps:
  - id: rollback
    foreach:
      items: '${{ inventory.select(\"tag=\" + inputs.group) }}'
      concurrency: 4
      waves: [1, 50%, 100%]
      max_failures: 1
      pause: 1s
    uses: rollback-firmware@1
    with:
      device: '${{ item.id }}'
      image: '${{ inputs.image }}'
      report_timeout: 20s
    timeout: 1m
";

fn line_3(id: &str) -> Vec<&'static str> {
    let n: u32 = id.trim_start_matches("dev-").parse().expect("dev-N");
    if n <= 10 {
        vec!["line-3"]
    } else {
        vec!["line-4"]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_wave_stops_at_the_failure_threshold_and_rolls_forward() {
    // Sorted ids: wave 1 is dev-1; wave 2 (up to 50%) dev-10, dev-2, dev-3,
    // dev-4; wave 3 the rest. dev-3 and dev-4 fail their install.
    let devices = Devices {
        count: 20,
        fail_install: vec!["dev-3".into(), "dev-4".into()],
        ..Devices::default()
    };
    let (fleet, _sink, server) = setup(&devices, line_3, &[ROLLBACK]).await;
    let rita = server.api(Some(&server.token("rita", "responder")));
    let run = start(
        &rita,
        "rollback-wave-fast",
        json!({"group": "line-3", "image": "1.1.0"}),
        false,
    )
    .await;
    let done = finished(&rita, &run, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "failed", "{done:#}");

    let installs = |device: &str| -> Vec<String> {
        fleet.status(device)["commands"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|c| c["order"]["kind"] == "install-firmware")
                    .map(|c| {
                        format!(
                            "{}:{}",
                            c["order"]["version"].as_str().unwrap_or(""),
                            c["outcome"]["status"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // The devices that rolled back were rolled forward again (compensation).
    for device in ["dev-1", "dev-10", "dev-2"] {
        assert_eq!(installs(device), ["1.1.0:done", "2.0.0:done"], "{device}");
    }
    for device in ["dev-3", "dev-4"] {
        assert_eq!(installs(device), ["1.1.0:failed"], "{device}");
    }
    // The third wave never started; other groups were never touched.
    for n in 5..=9 {
        assert!(
            installs(&format!("dev-{n}")).is_empty(),
            "dev-{n} was in the third wave"
        );
    }
    for n in 11..=20 {
        assert!(
            installs(&format!("dev-{n}")).is_empty(),
            "dev-{n} is not in the group"
        );
    }
    for n in 1..=20 {
        let status = fleet.status(&format!("dev-{n}"));
        assert_eq!(
            status["state"]["firmware"]["current"], "2.0.0",
            "dev-{n}: {status:#}"
        );
    }
}

const QUARANTINE_HARD: &str = "cordon: v1
name: quarantine-hard
version: 1.0.0
inputs:
  device: {type: device}
steps:
  - id: isolate
    uses: isolate@1
    with: {device: '${{ inputs.device }}', mode: hard, reason: forensics}
    compensation: {enabled: false}
";

const RESTORE: &str = "cordon: v1
name: restore-fast
version: 1.0.0
description: playbooks/restore-device.yaml without its two-minute settle.
inputs:
  device: {type: device}
steps:
  - id: restore
    uses: restore-device@1
    with: {device: '${{ inputs.device }}', healthy_within: 30s}
    timeout: 1m
  - id: healthy
    needs: [restore]
    uses: wait-for@1
    with:
      device: '${{ inputs.device }}'
      condition: {healthy: true, config.version: cfg-2}
      timeout: 10s
  - id: verify
    needs: [healthy]
    uses: check-health@1
    with: {device: '${{ inputs.device }}', window: 10s, expect_firmware: 2.0.0}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_brings_an_isolated_device_back_healthy() {
    let devices = Devices {
        count: 20,
        compromised: vec!["dev-3".into()],
        ..Devices::default()
    };
    let (fleet, _sink, server) = setup(&devices, all_dev, &[QUARANTINE_HARD, RESTORE]).await;
    let rita = server.api(Some(&server.token("rita", "responder")));

    let isolate = start(&rita, "quarantine-hard", json!({"device": "dev-3"}), false).await;
    let done = finished(&rita, &isolate, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        fleet.client("dev-3"),
        (vec!["quarantine".to_string()], true)
    );
    let before = fleet.wait_status("dev-3", Duration::from_secs(10), |s| {
        s["subscribed"] == false
    });
    assert_eq!(before["state"]["healthy"], false, "{before:#}");

    let restore = start(&rita, "restore-fast", json!({"device": "dev-3"}), false).await;
    let done = finished(&rita, &restore, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        step(&done, "restore")["outputs"]["restored_backup"],
        "cfg-2"
    );
    assert_eq!(step(&done, "verify")["outputs"]["healthy"], true);
    assert_eq!(
        fleet.client("dev-3"),
        (vec!["device-dev-3".to_string()], false)
    );
    let after = fleet.wait_status("dev-3", Duration::from_secs(10), |s| {
        s["subscribed"] == true
    });
    assert_eq!(after["state"]["config"]["version"], "cfg-2", "{after:#}");
    fleet.send_command("dev-3", "back-in-service", &json!({"kind": "report"}));
    fleet.wait_status("dev-3", Duration::from_secs(5), |s| {
        obeyed(s, "back-in-service")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_plan_the_exact_commands_and_send_none() {
    let devices = Devices {
        count: 6,
        ..Devices::default()
    };
    let (fleet, _sink, server) = setup(
        &devices,
        line_3,
        &[
            QUARANTINE_HARD,
            ROLLBACK,
            RESTORE,
            &example("isolate-compromised-device"),
        ],
    )
    .await;
    let rita = server.api(Some(&server.token("rita", "responder")));
    let traffic = fleet.record("fleet/+/cmd/#");
    let roles_before: Vec<_> = fleet.devices.iter().map(|d| fleet.client(d)).collect();

    let isolate = start(&rita, "quarantine-hard", json!({"device": "dev-2"}), true).await;
    let isolate = finished(&rita, &isolate, Duration::from_secs(30)).await;
    assert_eq!(isolate["status"], "succeeded", "{isolate:#}");
    let plan = step(&isolate, "isolate")["outputs"]["_plan"].to_string();
    for kind in [
        "broker.quarantine",
        "broker.remove_roles",
        "broker.disable_client",
    ] {
        assert!(
            plan.contains(kind) && plan.contains("dev-2"),
            "{kind} missing from {plan}"
        );
    }

    let rollback = start(
        &rita,
        "rollback-wave-fast",
        json!({"group": "line-3", "image": "1.1.0"}),
        true,
    )
    .await;
    let rollback = finished(&rita, &rollback, Duration::from_secs(60)).await;
    assert_eq!(rollback["status"], "succeeded", "{rollback:#}");
    for n in 1..=6 {
        // Items are the selected devices in id order.
        let plan = step(&rollback, &format!("rollback[{}]", n - 1))["outputs"]["_plan"].to_string();
        assert!(
            plan.contains("device.command")
                && plan.contains(&format!("fleet/dev-{n}/cmd/install-firmware"))
                && plan.contains("1.1.0"),
            "dev-{n}: {plan}"
        );
    }

    let restore = start(&rita, "restore-fast", json!({"device": "dev-4"}), true).await;
    let restore = finished(&rita, &restore, Duration::from_secs(30)).await;
    assert_eq!(restore["status"], "succeeded", "{restore:#}");
    let plan = step(&restore, "restore")["outputs"]["_plan"].to_string();
    assert!(
        plan.contains("broker.release") && plan.contains("restore-config"),
        "{plan}"
    );

    // The example containment playbook: a dry run waits at its gate like a
    // real one; once approved, the revocation is planned, not performed.
    let contain = start(
        &rita,
        "isolate-compromised-device",
        json!({"device": "dev-5"}),
        true,
    )
    .await;
    let request = pending_approval(&rita, &contain).await;
    approve(
        &server.api(Some(&server.token("sam", "approver"))),
        &request,
        "dry run",
    )
    .await;
    approve(
        &server.api(Some(&server.token("tess", "approver"))),
        &request,
        "dry run",
    )
    .await;
    let contain = finished(&rita, &contain, Duration::from_secs(30)).await;
    assert_eq!(contain["status"], "succeeded", "{contain:#}");
    let serial = fleet.inventory(line_3)["devices"][4]["cert_serial"]
        .as_str()
        .expect("serial")
        .to_string();
    let plan = step(&contain, "revoke")["outputs"]["_plan"].to_string();
    assert!(
        plan.contains("ca.revoke")
            && plan.contains(&serial)
            && plan.contains("broker.disable_client"),
        "{plan}"
    );
    let certificate = fleet.ca_get(&format!("/v1/certificates/{serial}"));
    assert_eq!(certificate["status"], "valid", "{certificate:#}");
    assert_eq!(certificate["in_crl"], false, "{certificate:#}");

    // Nothing reached a device or the broker's client records.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        traffic.lines().is_empty(),
        "dry runs sent commands: {:?}",
        traffic.lines()
    );
    let roles_after: Vec<_> = fleet.devices.iter().map(|d| fleet.client(d)).collect();
    assert_eq!(roles_before, roles_after);
    for device in &fleet.devices {
        let status = fleet.status(device);
        assert_eq!(
            status["commands"].as_array().map(Vec::len),
            Some(0),
            "{device}: {status:#}"
        );
        assert_eq!(status["connects"], 1, "{device} was kicked: {status:#}");
    }
}

const ROLLBACK_ONE: &str = "cordon: v1
name: rollback-one
version: 1.0.0
inputs:
  device: {type: string}
  image: {type: string, default: 1.1.0}
steps:
  - id: rollback
    uses: rollback-firmware@1
    with: {device: '${{ inputs.device }}', image: '${{ inputs.image }}', report_timeout: 2s}
    retry: {attempts: 2, backoff: 100ms}
    timeout: 30s
";

/// The errors of every attempt of `run`, in order.
fn attempt_errors(run: &Value) -> Vec<String> {
    run["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["state"].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_typed_errors_retried_only_when_transient() {
    let devices = Devices {
        count: 3,
        ..Devices::default()
    };
    let (mut fleet, _sink, server) =
        setup(&devices, all_dev, &[ROLLBACK_ONE, QUARANTINE_HARD]).await;
    let rita = server.api(Some(&server.token("rita", "responder")));

    // A device the inventory does not know: refused at once, not retried.
    let unknown = start(&rita, "rollback-one", json!({"device": "dev-99"}), false).await;
    let unknown = finished(&rita, &unknown, Duration::from_secs(30)).await;
    assert_eq!(unknown["status"], "failed", "{unknown:#}");
    let errors = attempt_errors(&unknown);
    assert_eq!(
        errors.len(),
        1,
        "a permanent error is not retried: {errors:?}"
    );
    assert!(
        errors[0].contains("dev-99 is not in the inventory"),
        "{errors:?}"
    );

    // An image the device does not hold: the device refuses, the step
    // fails for good and the device is unchanged.
    let refused = start(
        &rita,
        "rollback-one",
        json!({"device": "dev-1", "image": "9.9.9"}),
        false,
    )
    .await;
    let refused = finished(&rita, &refused, Duration::from_secs(30)).await;
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let errors = attempt_errors(&refused);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("refused the install-firmware command (rejected)"),
        "{errors:?}"
    );
    assert_eq!(
        fleet.status("dev-1")["state"]["firmware"]["current"],
        "2.0.0"
    );

    // A device that never answers (quarantined: it cannot receive commands):
    // a retryable timeout, retried, then the run fails saying so.
    let isolate = start(&rita, "quarantine-hard", json!({"device": "dev-2"}), false).await;
    assert_eq!(
        finished(&rita, &isolate, Duration::from_secs(30)).await["status"],
        "succeeded"
    );
    let silent = start(&rita, "rollback-one", json!({"device": "dev-2"}), false).await;
    let silent = finished(&rita, &silent, Duration::from_secs(30)).await;
    assert_eq!(silent["status"], "failed", "{silent:#}");
    let errors = attempt_errors(&silent);
    assert_eq!(errors.len(), 2, "a timeout is retried: {errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("did not answer")),
        "{errors:?}"
    );
    assert_eq!(
        fleet.status("dev-2")["commands"].as_array().map(Vec::len),
        Some(0)
    );

    // The fleet CA is down: unavailable, retried, and nothing reached the device.
    fleet.stop_authority();
    let no_ca = start(&rita, "rollback-one", json!({"device": "dev-3"}), false).await;
    let no_ca = finished(&rita, &no_ca, Duration::from_secs(30)).await;
    assert_eq!(no_ca["status"], "failed", "{no_ca:#}");
    let errors = attempt_errors(&no_ca);
    assert_eq!(errors.len(), 2, "an unreachable CA is retried: {errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("unavailable")),
        "{errors:?}"
    );
    assert_eq!(
        fleet.status("dev-3")["commands"].as_array().map(Vec::len),
        Some(0)
    );
}
