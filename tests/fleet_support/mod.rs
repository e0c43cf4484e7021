//! The reference fleet on loopback, for end-to-end tests: a Mosquitto broker
//! with mutual TLS, a CRL and dynamic security; the fleet CA
//! (`cordon-fleet-authority`); and N simulated devices
//! (`cordon-device-sim`), each with its own client certificate. Everything
//! binds to 127.0.0.1 on free ports, lives in one scratch directory, and is
//! stopped (by PID) and removed when the [`Fleet`] is dropped.
//!
//! Broker policy (as in `shared/recipes/mosquitto.sh`, with Cordon's own
//! identity): the default ACL denies everything; device `D` (certificate
//! CN = `D`) has the role `device-D` (publish `fleet/D/telemetry/#`,
//! subscribe and receive `fleet/D/cmd/#`); the role `quarantine` denies
//! subscribe and receive on `#`; `cordon-ops` (password, on the plain
//! admin listener only) is the dynamic-security admin and has the role
//! `fleet-operator` (publish `fleet/+/cmd/#`, subscribe and receive
//! `fleet/#`). The CA refuses to issue `cordon*` names, so no device
//! certificate can become `cordon-ops`.

#![allow(dead_code)] // each test binary uses a part

mod broker;
mod plugins;

use broker::{ctl_at, grant_operator_role, policy, start_broker};
pub use plugins::signed_plugins;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A sibling binary of `cordon` in the same target directory (cargo builds
/// every workspace binary for `cargo test --workspace`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let cordon = PathBuf::from(env!("CARGO_BIN_EXE_cordon"));
    let path = cordon.with_file_name(name);
    assert!(
        path.exists(),
        "{} missing: build it with `cargo build -p {name}` (tests/run builds the workspace)",
        path.display()
    );
    path
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Stops a child: SIGTERM, a moment to finish, then SIGKILL; always reaped.
pub(crate) fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Options of the simulated devices.
#[derive(Debug, Default, Clone)]
pub struct Devices {
    /// How many (`dev-1` … `dev-N`).
    pub count: usize,
    /// Devices whose firmware installs fail.
    pub fail_install: Vec<String>,
    /// Devices that start with a tampered configuration (unhealthy).
    pub compromised: Vec<String>,
}

/// The running fleet.
pub struct Fleet {
    /// The scratch directory (removed on drop).
    pub dir: PathBuf,
    broker: Child,
    authority: Child,
    sim: Child,
    /// The plain admin listener (Cordon's `fleet-broker` connection).
    pub admin_port: u16,
    /// The mutual-TLS device listener.
    pub tls_port: u16,
    /// `cordon-ops`'s password (only in Cordon's connection configuration).
    pub admin_password: String,
    /// The fleet CA's base URL.
    pub ca_url: String,
    /// The fleet CA's bearer token.
    pub ca_token: String,
    /// Device ids.
    pub devices: Vec<String>,
}

impl Fleet {
    /// Starts the broker, the CA and the devices; returns once every device
    /// is connected and subscribed.
    pub fn start(devices: &Devices) -> Fleet {
        let dir = std::env::temp_dir().join(format!("cordon-fleet-{}", random_hex()));
        std::fs::create_dir_all(dir.join("state")).expect("scratch dir");
        let pki = dir.join("pki");
        let init = Command::new(sibling_binary("cordon-fleet-authority"))
            .arg("init")
            .arg(&pki)
            .args(["--device-count", &devices.count.to_string()])
            .output()
            .expect("run cordon-fleet-authority init");
        assert!(
            init.status.success(),
            "init: {}",
            String::from_utf8_lossy(&init.stderr)
        );

        let admin_password = random_hex();
        let dynsec = dir.join("dynamic-security.json");
        let ctrl = Command::new("mosquitto_ctrl")
            .args(["dynsec", "init"])
            .arg(&dynsec)
            .args(["cordon-ops", &admin_password])
            .output()
            .expect("mosquitto_ctrl (Debian's mosquitto package)");
        assert!(
            ctrl.status.success(),
            "dynsec init: {}",
            String::from_utf8_lossy(&ctrl.stderr)
        );

        let (broker, admin_port, tls_port) = start_broker(&dir, &pki, &dynsec);
        let ids: Vec<String> = (1..=devices.count).map(|i| format!("dev-{i}")).collect();
        let mut fleet_partial = PartialFleet {
            broker: Some(broker),
            authority: None,
            sim: None,
            dir: dir.clone(),
        };
        ctl_at(admin_port, &admin_password, &policy(&ids));
        grant_operator_role(admin_port, &admin_password);

        let ca_token = random_hex();
        std::fs::write(dir.join("ca.token"), &ca_token).expect("token file");
        let ready = dir.join("ca.url");
        let authority = Command::new(sibling_binary("cordon-fleet-authority"))
            .arg("serve")
            .arg("--dir")
            .arg(&pki)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--broker",
                &format!("127.0.0.1:{tls_port}"),
            ])
            .arg("--token-file")
            .arg(dir.join("ca.token"))
            .arg("--broker-pid-file")
            .arg(dir.join("broker.pid"))
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("authority.log")).expect("log"))
            .spawn()
            .expect("start cordon-fleet-authority");
        fleet_partial.authority = Some(authority);
        let began = Instant::now();
        let ca_url = loop {
            if let Ok(url) = std::fs::read_to_string(&ready)
                && !url.trim().is_empty()
            {
                break url.trim().to_string();
            }
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "the fleet CA did not start: {}",
                std::fs::read_to_string(dir.join("authority.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };

        let mut sim = Command::new(sibling_binary("cordon-device-sim"));
        sim.args(["--broker", &format!("127.0.0.1:{tls_port}")])
            .arg("--ca")
            .arg(pki.join("ca.crt"))
            .arg("--certs")
            .arg(pki.join("devices"))
            .args(["--device-count", &devices.count.to_string()])
            .arg("--command-key")
            .arg(pki.join("command.pub"))
            .arg("--release-key")
            .arg(pki.join("release.pub"))
            .arg("--images")
            .arg(pki.join("images.json"))
            .args(["--heartbeat-ms", "250"])
            .arg("--state-dir")
            .arg(dir.join("state"));
        if !devices.fail_install.is_empty() {
            sim.args(["--fail-install", &devices.fail_install.join(",")]);
        }
        if !devices.compromised.is_empty() {
            sim.args(["--compromised", &devices.compromised.join(",")]);
        }
        let mut sim = sim
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sim.log")).expect("log"))
            .spawn()
            .expect("start cordon-device-sim");
        let stdout = sim.stdout.take().expect("stdout");
        fleet_partial.sim = Some(sim);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("device-sim ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            panic!(
                "the devices did not come up: {}",
                std::fs::read_to_string(dir.join("sim.log")).unwrap_or_default()
            );
        }
        let (broker, authority, sim) = fleet_partial.take();
        Fleet {
            dir,
            broker,
            authority,
            sim,
            admin_port,
            tls_port,
            admin_password,
            ca_url,
            ca_token,
            devices: ids,
        }
    }

    /// The `connections:` and plugin grants a Cordon node needs for this
    /// fleet (YAML, to put in a configuration file).
    pub fn cordon_config(&self) -> String {
        format!(
            "connections:
  fleet-broker: {{kind: mqtt, host: 127.0.0.1, port: {port}, username: cordon-ops, password: '{password}'}}
  fleet-ca: {{kind: http, base_url: '{url}', headers: {{authorization: 'Bearer {token}'}}}}
",
            port = self.admin_port,
            password = self.admin_password,
            url = self.ca_url,
            token = self.ca_token,
        )
    }

    /// Every device as an inventory record (for `POST /api/v1/inventory`),
    /// with the certificate serial the CA issued it; `tags` gives each
    /// device's tags.
    pub fn inventory(&self, tags: impl Fn(&str) -> Vec<&'static str>) -> Value {
        let registry: Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.join("pki/authority.json")).expect("registry"),
        )
        .expect("registry JSON");
        let devices: Vec<Value> = self
            .devices
            .iter()
            .map(|id| {
                let serial = registry["certificates"]
                    .as_array()
                    .and_then(|all| all.iter().find(|r| r["cn"] == id.as_str()))
                    .and_then(|r| r["serial"].as_str())
                    .expect("the CA issued every device a certificate");
                json!({"id": id, "type": "plc", "site": "plant-a", "tags": tags(id),
                       "criticality": "high", "firmware": "2.0.0", "cert_serial": serial,
                       "owner": "ot"})
            })
            .collect();
        json!({"devices": devices})
    }

    /// What the simulator last wrote about `device`.
    pub fn status(&self, device: &str) -> Value {
        let path = self.dir.join("state").join(format!("{device}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("device state file"))
            .expect("state JSON")
    }

    /// Polls `device`'s state file until `check` holds (or panics after `within`).
    pub fn wait_status(
        &self,
        device: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let began = Instant::now();
        loop {
            let status = self.status(device);
            if check(&status) {
                return status;
            }
            assert!(
                began.elapsed() < within,
                "{device} never got there: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a dynamic-security command document as `cordon-ops`; the response.
    pub fn ctl(&self, document: &Value) -> Value {
        ctl_at(self.admin_port, &self.admin_password, document)
    }

    /// The broker's view of a client: `(roles, disabled)`.
    pub fn client(&self, device: &str) -> (Vec<String>, bool) {
        let response =
            self.ctl(&json!({"commands": [{"command": "getClient", "username": device}]}));
        let client = &response["responses"][0]["data"]["client"];
        let roles = client["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["rolename"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (roles, client["disabled"].as_bool().unwrap_or(false))
    }

    /// Has the CA sign `order` for `device` and publishes it on the
    /// device's command topic as `cordon-ops`, as a plugin would.
    pub fn send_command(&self, device: &str, id: &str, order: &Value) {
        let signed = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "POST"])
            .arg(format!("{}/v1/commands", self.ca_url))
            .args(["-H", &format!("authorization: Bearer {}", self.ca_token)])
            .args(["-H", "content-type: application/json"])
            .args([
                "-d",
                &json!({"id": id, "device": device, "order": order}).to_string(),
            ])
            .output()
            .expect("curl");
        assert!(
            signed.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&signed.stdout)
        );
        let kind = order["kind"].as_str().expect("order kind");
        let publish = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.admin_port.to_string(),
                "-V",
                "mqttv5",
                "-q",
                "1",
            ])
            .args(["-u", "cordon-ops", "-P", &self.admin_password])
            .args(["-t", &format!("fleet/{device}/cmd/{kind}")])
            .arg("-m")
            .arg(String::from_utf8_lossy(&signed.stdout).as_ref())
            .output()
            .expect("mosquitto_pub");
        assert!(
            publish.status.success(),
            "publish: {}",
            String::from_utf8_lossy(&publish.stderr)
        );
    }

    /// `GET` on the fleet CA's API (authenticated); the JSON answer.
    pub fn ca_get(&self, path: &str) -> Value {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body"])
            .arg(format!("{}{path}", self.ca_url))
            .args(["-H", &format!("authorization: Bearer {}", self.ca_token)])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("CA JSON")
    }

    /// Starts recording every message on `filter` (as `cordon-ops`) into a
    /// file; read it with [`Recorder::lines`].
    pub fn record(&self, filter: &str) -> Recorder {
        let path = self.dir.join(format!("recorded-{}.txt", random_hex()));
        let child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &self.admin_port.to_string(),
            ])
            .args([
                "-V",
                "mqttv5",
                "-u",
                "cordon-ops",
                "-P",
                &self.admin_password,
                "-v",
            ])
            .args(["-t", filter])
            .stdout(std::fs::File::create(&path).expect("record file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        // The subscription must be in place before the caller acts.
        std::thread::sleep(Duration::from_millis(300));
        Recorder { child, path }
    }

    /// Stops the fleet CA (to test what happens when it is unavailable).
    pub fn stop_authority(&mut self) {
        stop(&mut self.authority);
    }

    /// The broker's log so far.
    pub fn broker_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        stop(&mut self.sim);
        stop(&mut self.authority);
        stop(&mut self.broker);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What [`Fleet::start`] has started so far, stopped if it panics midway.
struct PartialFleet {
    dir: PathBuf,
    broker: Option<Child>,
    authority: Option<Child>,
    sim: Option<Child>,
}

impl PartialFleet {
    fn take(&mut self) -> (Child, Child, Child) {
        (
            self.broker.take().expect("broker"),
            self.authority.take().expect("authority"),
            self.sim.take().expect("sim"),
        )
    }
}

impl Drop for PartialFleet {
    fn drop(&mut self) {
        for child in [&mut self.sim, &mut self.authority, &mut self.broker]
            .into_iter()
            .flatten()
        {
            stop(child);
        }
        let _ = &self.dir;
    }
}

/// A `mosquitto_sub` recording into a file; stopped on drop.
pub struct Recorder {
    child: Child,
    path: PathBuf,
}

impl Recorder {
    /// Every `topic payload` line recorded so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
