//! The simulator against a real Mosquitto over mTLS: readiness, heartbeats,
//! every kind of refusal, correlation data, reconnection, revocation and a
//! refused subscription. Needs `/usr/sbin/mosquitto`, `openssl` and `bash`.

mod support;

use std::time::{Duration, Instant};

use cordon_fleet::command::{Command, Order, Refusal, SignedCommand};
use cordon_fleet::report::{Heartbeat, Outcome, Reply};
use cordon_fleet::topics;
use support::{Broker, Fleet, Observer, Sim, correlation, now, state_file, wait_state};

const WAIT: Duration = Duration::from_secs(5);

fn install(version: &str, allow_below_floor: bool) -> Order {
    Order::InstallFirmware {
        version: version.into(),
        allow_below_floor,
    }
}

/// Sends `payload` on `device`'s command topic with `corr` as correlation
/// data; returns the reply of `device` carrying the same correlation data,
/// and how long it took.
async fn ask(
    observer: &mut Observer,
    device: &str,
    payload: Vec<u8>,
    corr: &str,
) -> (Reply, Duration) {
    let started = Instant::now();
    observer
        .send(
            &topics::command(device, "any"),
            payload,
            Some(corr.as_bytes()),
        )
        .await;
    let message = observer
        .next_where(&topics::reply(device), WAIT, |m| {
            correlation(m).as_deref() == Some(corr.as_bytes())
        })
        .await;
    let elapsed = started.elapsed();
    (
        serde_json::from_slice(&message.payload).expect("reply json"),
        elapsed,
    )
}

fn refused(reply: &Reply) -> Refusal {
    match &reply.outcome {
        Outcome::Refused { code, .. } => *code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn done(reply: &Reply) {
    assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obeys_signed_commands_and_refuses_the_rest() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fleet = Fleet::new();
    let broker = Broker::start(&fleet.path("pki"), false, None);
    let mut observer = Observer::connect(broker.plain).await;

    let started = Instant::now();
    let mut sim = Sim::start(
        &fleet,
        &broker,
        &[
            "--devices",
            "dev-1,dev-2,dev-3",
            "--fail-install",
            "dev-3",
            "--heartbeat-ms",
            "200",
        ],
    );
    sim.wait_ready(3, &fleet);
    eprintln!(
        "measured: start -> ready for 3 devices: {:?}",
        started.elapsed()
    );

    // Heartbeats from all three, on the version they were provisioned with.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 {
        let message = tokio::time::timeout(WAIT, observer.messages.recv())
            .await
            .expect("heartbeats in time")
            .expect("observer");
        if message.topic.ends_with(b"/telemetry/heartbeat") {
            let beat: Heartbeat = serde_json::from_slice(&message.payload).expect("heartbeat");
            assert_eq!(beat.state.firmware.current, "2.0.0");
            assert_eq!(beat.state.firmware.floor, 2);
            seen.insert(beat.device);
        }
    }

    // A signed install: done, correlation data copied, heartbeat follows.
    let payload = fleet.signed("run-1/install/1", "dev-1", install("1.1.0", false));
    let (reply, took) = ask(&mut observer, "dev-1", payload.clone(), "corr-install").await;
    done(&reply);
    eprintln!("measured: install command -> reply: {took:?} (includes the simulated flash)");
    assert_eq!(reply.command_id.as_deref(), Some("run-1/install/1"));
    assert_eq!(reply.state.firmware.current, "1.1.0");
    let beat = observer
        .next_where(&topics::heartbeat("dev-1"), WAIT, |m| {
            serde_json::from_slice::<Heartbeat>(&m.payload)
                .is_ok_and(|b| b.state.firmware.current == "1.1.0")
        })
        .await;
    let beat: Heartbeat = serde_json::from_slice(&beat.payload).expect("heartbeat");
    assert_eq!(beat.state.firmware.security_version, 2);

    // The same bytes again: replayed.
    let (reply, _) = ask(&mut observer, "dev-1", payload.clone(), "corr-replay").await;
    assert_eq!(refused(&reply), Refusal::Replayed);
    assert_eq!(reply.command_id.as_deref(), Some("run-1/install/1"));

    // Unsigned (no signature) and forged (order changed after signing).
    let mut unsigned: SignedCommand =
        serde_json::from_slice(&fleet.signed("unsigned", "dev-1", Order::RestoreConfig))
            .expect("json");
    unsigned.signature.clear();
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        serde_json::to_vec(&unsigned).expect("json"),
        "corr-unsigned",
    )
    .await;
    assert_eq!(refused(&reply), Refusal::BadSignature);
    let mut forged: SignedCommand =
        serde_json::from_slice(&fleet.signed("forged", "dev-1", Order::Report)).expect("json");
    forged.command.order = install("1.0.0", true);
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        serde_json::to_vec(&forged).expect("json"),
        "corr-forged",
    )
    .await;
    assert_eq!(refused(&reply), Refusal::BadSignature);
    assert_eq!(reply.state.firmware.current, "1.1.0");

    // Signed for dev-2, sent to dev-1.
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        fleet.signed("other", "dev-2", Order::Report),
        "corr-wrong",
    )
    .await;
    assert_eq!(refused(&reply), Refusal::WrongDevice);

    // Expired.
    let old = Command::new("old", "dev-1", Order::Report, now() - 120, 60).expect("command");
    let bytes = serde_json::to_vec(&SignedCommand::sign(old, &fleet.command_key)).expect("json");
    let (reply, _) = ask(&mut observer, "dev-1", bytes, "corr-expired").await;
    assert_eq!(refused(&reply), Refusal::Expired);

    // Not a command at all.
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        b"{not json".to_vec(),
        "corr-garbage",
    )
    .await;
    assert_eq!(refused(&reply), Refusal::Malformed);
    assert_eq!(reply.command_id, None);

    // Below the floor: rejected, then allowed by the signed override.
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        fleet.signed("floor", "dev-1", install("1.0.0", false)),
        "corr-floor",
    )
    .await;
    assert_eq!(refused(&reply), Refusal::Rejected);
    assert_eq!(reply.state.firmware.current, "1.1.0");
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        fleet.signed("override", "dev-1", install("1.0.0", true)),
        "corr-override",
    )
    .await;
    done(&reply);
    assert_eq!(
        (
            reply.state.firmware.current.as_str(),
            reply.state.firmware.security_version
        ),
        ("1.0.0", 1)
    );
    assert_eq!(reply.state.firmware.floor, 2);

    // A device with a broken flash fails and keeps its image.
    let (reply, _) = ask(
        &mut observer,
        "dev-3",
        fleet.signed("flash", "dev-3", install("2.1.0", false)),
        "corr-flash",
    )
    .await;
    assert_eq!(
        reply.outcome,
        Outcome::Failed {
            reason: "flash write failed".into()
        }
    );
    assert_eq!(reply.state.firmware.current, "2.0.0");

    // A command without correlation data gets a reply without it.
    observer
        .send(
            &topics::command("dev-2", "report"),
            fleet.signed("plain", "dev-2", Order::Report),
            None,
        )
        .await;
    let message = observer
        .next_where(&topics::reply("dev-2"), WAIT, |m| {
            serde_json::from_slice::<Reply>(&m.payload)
                .is_ok_and(|r| r.command_id.as_deref() == Some("plain"))
        })
        .await;
    assert_eq!(correlation(&message), None);

    // Command -> reply latency on loopback (a report does no simulated work).
    let mut latencies = Vec::new();
    for i in 0..30 {
        let (reply, took) = ask(
            &mut observer,
            "dev-2",
            fleet.signed(&format!("report-{i}"), "dev-2", Order::Report),
            &format!("corr-report-{i}"),
        )
        .await;
        done(&reply);
        latencies.push(took);
    }
    latencies.sort();
    eprintln!(
        "measured: report command -> reply over 30: p50 {:?}, p90 {:?}, max {:?}",
        latencies[15], latencies[27], latencies[29]
    );

    // The state file says the same.
    let state = wait_state(&fleet, "dev-1", WAIT, |s| {
        s["refusals"].as_array().is_some_and(|r| r.len() == 7)
    });
    assert_eq!(state["device"], "dev-1");
    assert_eq!(state["connected"], true);
    assert_eq!(state["subscribed"], true);
    assert_eq!(state["connects"], 1);
    assert_eq!(state["refused_connects"], 0);
    assert_eq!(state["state"]["firmware"]["current"], "1.0.0");
    let codes: Vec<_> = state["refusals"]
        .as_array()
        .expect("refusals")
        .iter()
        .map(|r| r["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        codes,
        [
            "replayed",
            "bad_signature",
            "bad_signature",
            "wrong_device",
            "expired",
            "malformed",
            "rejected"
        ]
    );
    let commands = state["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert_eq!(commands[0]["id"], "run-1/install/1");
    assert_eq!(commands[0]["order"]["kind"], "install-firmware");
    assert_eq!(commands[0]["outcome"]["status"], "done");
    assert_eq!(commands[1]["outcome"]["status"], "refused");
    assert_eq!(
        state_file(&fleet, "dev-3")["commands"][0]["outcome"]["status"],
        "failed"
    );

    // SIGTERM: every device disconnects, exit 0.
    assert_eq!(sim.terminate(), Some(0));
    let state = state_file(&fleet, "dev-1");
    assert_eq!(state["connected"], false);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_counts_refused_connects_and_notices_a_refused_subscription() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fleet = Fleet::new();
    // Dynamic security as the fleet runs it: one literal role per device,
    // and dev-3 quarantined (a priority-100 role denying subscribe and
    // receive), so it may publish telemetry but gets no commands.
    let device_role = |d: &str| {
        serde_json::json!({"rolename": d, "acls": [
            {"acltype": "publishClientSend", "topic": format!("fleet/{d}/telemetry/#"), "allow": true},
            {"acltype": "subscribePattern", "topic": format!("fleet/{d}/cmd/#"), "allow": true},
            {"acltype": "publishClientReceive", "topic": format!("fleet/{d}/cmd/#"), "allow": true},
        ]})
    };
    let policy = serde_json::json!({
        "defaultACLAccess": {"publishClientSend": false, "publishClientReceive": false, "subscribe": false, "unsubscribe": true},
        "clients": [
            {"username": "dev-1", "roles": [{"rolename": "dev-1"}]},
            {"username": "dev-2", "roles": [{"rolename": "dev-2"}]},
            {"username": "dev-3", "roles": [{"rolename": "dev-3"}, {"rolename": "quarantine", "priority": 100}]},
        ],
        "groups": [{"groupname": "observers", "roles": [{"rolename": "observer"}]}],
        "anonymousGroup": "observers",
        "roles": [
            device_role("dev-1"), device_role("dev-2"), device_role("dev-3"),
            {"rolename": "quarantine", "acls": [
                {"acltype": "subscribePattern", "topic": "#", "allow": false},
                {"acltype": "publishClientReceive", "topic": "#", "allow": false},
            ]},
            {"rolename": "observer", "acls": [
                {"acltype": "publishClientSend", "topic": "#", "allow": true},
                {"acltype": "subscribePattern", "topic": "#", "allow": true},
                {"acltype": "publishClientReceive", "topic": "#", "allow": true},
            ]},
        ],
    });
    let acl = policy.to_string();
    let acl = acl.as_str();
    let pki = fleet.path("pki");
    let broker = Broker::start(&pki, true, Some(acl));
    let mut sim = Sim::start(
        &fleet,
        &broker,
        &["--devices", "dev-1,dev-2,dev-3", "--heartbeat-ms", "200"],
    );
    sim.wait_ready(3, &fleet);

    let state = wait_state(&fleet, "dev-3", WAIT, |s| {
        s["connected"] == true && s["last_error"].is_string()
    });
    assert_eq!(state["subscribed"], false);
    assert!(
        state["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused the command subscription"),
        "{state:#}"
    );
    {
        let mut observer = Observer::connect(broker.plain).await;
        observer
            .next_where(&topics::heartbeat("dev-3"), WAIT, |_| true)
            .await;
    }

    // Revoke dev-2 and re-read the CRL: its live session survives that.
    let out = std::process::Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers/pki.sh"))
        .arg(&pki)
        .args(["revoke", "dev-2"])
        .output()
        .expect("pki.sh revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    broker.reload();

    // Restart the broker on the same ports: dev-1 comes back, dev-2's new
    // connections fail at TLS and are counted.
    let ports = (broker.plain, broker.tls);
    drop(broker);
    let restarted = Instant::now();
    let broker = Broker::start_on(&pki, true, Some(acl), Some(ports));
    let state = wait_state(&fleet, "dev-1", Duration::from_secs(10), |s| {
        s["connects"] == 2 && s["subscribed"] == true
    });
    eprintln!(
        "measured: broker restart -> dev-1 resubscribed: {:?}",
        restarted.elapsed()
    );
    assert_eq!(state["connected"], true);
    let state = wait_state(&fleet, "dev-2", Duration::from_secs(10), |s| {
        s["refused_connects"].as_u64().is_some_and(|n| n >= 2)
    });
    assert_eq!(state["connected"], false);
    assert_eq!(state["connects"], 1);
    eprintln!("dev-2 after revocation: {}", state["last_error"]);

    // dev-1 still obeys after its reconnect.
    let mut observer = Observer::connect(broker.plain).await;
    let (reply, _) = ask(
        &mut observer,
        "dev-1",
        fleet.signed("after", "dev-1", Order::RestoreConfig),
        "corr-after",
    )
    .await;
    done(&reply);

    assert_eq!(sim.terminate(), Some(0));
}
