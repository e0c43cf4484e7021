//! The fleet's broker: Mosquitto with an admin listener (password) and a
//! mutual-TLS device listener (certificate, CRL), dynamic security, and the
//! fleet policy applied through `$CONTROL`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{free_port, stop};

fn dynsec_plugin() -> PathBuf {
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ] {
        let path = Path::new(dir).join("mosquitto_dynamic_security.so");
        if path.exists() {
            return path;
        }
    }
    panic!("mosquitto_dynamic_security.so not found: install Debian's mosquitto package")
}

pub(super) fn start_broker(dir: &Path, pki: &Path, dynsec: &Path) -> (Child, u16, u16) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let (admin_port, tls_port) = (free_port(), free_port());
        let config = format!(
            "per_listener_settings false
allow_anonymous false
persistence false
user root
set_tcp_nodelay true
log_dest file {log}
log_type all
plugin {plugin}
plugin_opt_config_file {dynsec}
listener {admin_port} 127.0.0.1
listener {tls_port} 127.0.0.1
cafile {pki}/ca.crt
certfile {pki}/server.crt
keyfile {pki}/server.key
crlfile {pki}/crl.pem
require_certificate true
use_identity_as_username true
",
            log = dir.join("broker.log").display(),
            plugin = dynsec_plugin().display(),
            dynsec = dynsec.display(),
            pki = pki.display(),
        );
        std::fs::write(dir.join("mosquitto.conf"), config).expect("broker config");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.out")).expect("log"))
            .spawn()
            .expect("start mosquitto (Debian's mosquitto package)");
        std::fs::write(dir.join("broker.pid"), child.id().to_string()).expect("pid file");
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", admin_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
            {
                return (child, admin_port, tls_port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop(&mut child);
        failures.push(std::fs::read_to_string(dir.join("mosquitto.out")).unwrap_or_default());
    }
    panic!("mosquitto did not start: {failures:?}");
}

pub(super) fn ctl_at(port: u16, password: &str, document: &Value) -> Value {
    let output = Command::new("mosquitto_rr")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "cordon-ops",
            "-P",
            password,
        ])
        .args([
            "-t",
            "$CONTROL/dynamic-security/v1",
            "-e",
            "$CONTROL/dynamic-security/v1/response",
        ])
        .args(["-W", "5", "-m", &document.to_string()])
        .output()
        .expect("mosquitto_rr (Debian's mosquitto-clients package)");
    assert!(
        output.status.success(),
        "no $CONTROL response: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: Value = serde_json::from_slice(&output.stdout).expect("$CONTROL response JSON");
    if let Some(all) = response["responses"].as_array() {
        for r in all {
            let getting = r["command"] == "getClient";
            assert!(getting || r.get("error").is_none(), "dynsec refused: {r}");
        }
    }
    response
}

/// Gives `cordon-ops` the `fleet-operator` role. The broker kicks a client
/// whose roles change, here the one asking, so the response never arrives:
/// publish the command and read the client back until the role shows.
pub(super) fn grant_operator_role(port: u16, password: &str) {
    let command = json!({"commands": [{"command": "addClientRole", "username": "cordon-ops",
                                       "rolename": "fleet-operator", "priority": 0}]});
    let publish = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "cordon-ops",
            "-P",
            password,
        ])
        .args([
            "-t",
            "$CONTROL/dynamic-security/v1",
            "-m",
            &command.to_string(),
        ])
        .output()
        .expect("mosquitto_pub");
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let began = Instant::now();
    loop {
        let response = ctl_at(
            port,
            password,
            &json!({"commands": [{"command": "getClient", "username": "cordon-ops"}]}),
        );
        if response.to_string().contains("fleet-operator") {
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "cordon-ops never got fleet-operator: {response}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fleet policy as one `$CONTROL` document.
pub(super) fn policy(devices: &[String]) -> Value {
    let mut commands = vec![
        json!({"command": "setDefaultACLAccess", "acls": [
            {"acltype": "publishClientSend", "allow": false},
            {"acltype": "publishClientReceive", "allow": false},
            {"acltype": "subscribe", "allow": false},
            {"acltype": "unsubscribe", "allow": true}]}),
        json!({"command": "createRole", "rolename": "quarantine",
               "acls": [{"acltype": "subscribePattern", "topic": "#", "priority": 0, "allow": false},
                        {"acltype": "publishClientReceive", "topic": "#", "priority": 0, "allow": false}]}),
        json!({"command": "createRole", "rolename": "fleet-operator",
               "acls": [{"acltype": "publishClientSend", "topic": "fleet/+/cmd/#", "priority": 0, "allow": true},
                        {"acltype": "subscribePattern", "topic": "fleet/#", "priority": 0, "allow": true},
                        {"acltype": "publishClientReceive", "topic": "fleet/#", "priority": 0, "allow": true}]}),
    ];
    for d in devices {
        commands.push(json!({"command": "createRole", "rolename": format!("device-{d}"), "acls": [
            {"acltype": "publishClientSend", "topic": format!("fleet/{d}/telemetry/#"), "priority": 0, "allow": true},
            {"acltype": "subscribePattern", "topic": format!("fleet/{d}/cmd/#"), "priority": 0, "allow": true},
            {"acltype": "publishClientReceive", "topic": format!("fleet/{d}/cmd/#"), "priority": 0, "allow": true}]}));
        commands.push(json!({"command": "createClient", "username": d,
                             "roles": [{"rolename": format!("device-{d}"), "priority": 0}]}));
    }
    json!({"commands": commands})
}
