//! Real parts for the simulator's tests: a throwaway PKI made by the repo's
//! `pki.sh` (openssl), a private Mosquitto on free loopback ports, the
//! simulator binary as a child process, and an MQTT 5 test client on the
//! broker's plain listener. Every child is killed by PID when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use cordon_fleet::command::{Command as FleetCommand, Order, SignedCommand};
use cordon_fleet::firmware::{Manifest, SignedImage};
use cordon_fleet::keys::{self, SigningKey};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// A child process killed (and reaped) on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on loopback (released again: starters retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Everything a simulator run needs on disk.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub command_key: SigningKey,
    pub release_key: SigningKey,
}

impl Fleet {
    /// PKI for dev-1..dev-3 (and the broker), keys and four signed images.
    pub fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers/pki.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path().join("pki"))
            .env("PKI_DEVICE_COUNT", "3")
            .output()
            .expect("run pki.sh");
        assert!(
            out.status.success(),
            "pki.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let command_key = keys::generate().expect("key");
        let release_key = keys::generate().expect("key");
        std::fs::write(
            dir.path().join("command.pub"),
            keys::public_text(&command_key.verifying_key()),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("release.pub"),
            keys::public_text(&release_key.verifying_key()),
        )
        .expect("write");
        let images: Vec<SignedImage> = [("1.0.0", 1), ("1.1.0", 2), ("2.0.0", 2), ("2.1.0", 3)]
            .into_iter()
            .map(|(version, security_version)| {
                SignedImage::sign(
                    Manifest {
                        version: version.into(),
                        security_version,
                        sha256: "5a".repeat(32),
                    },
                    &release_key,
                )
            })
            .collect();
        std::fs::write(
            dir.path().join("images.json"),
            serde_json::to_vec_pretty(&images).expect("json"),
        )
        .expect("write");
        Fleet {
            dir,
            command_key,
            release_key,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A signed command payload for `device`.
    pub fn signed(&self, id: &str, device: &str, order: Order) -> Vec<u8> {
        let command = FleetCommand::new(id, device, order, now(), 60).expect("command");
        serde_json::to_vec(&SignedCommand::sign(command, &self.command_key)).expect("json")
    }
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A private Mosquitto 2.0: a plain anonymous listener for the test's own
/// client and an mTLS listener (certificate CN as username) for devices.
pub struct Broker {
    pub plain: u16,
    pub tls: u16,
    pub child: Guard,
    pub log: PathBuf,
}

impl Broker {
    /// Starts it with the PKI in `pki`; `crl` adds the CRL file, `dynsec`
    /// a dynamic-security policy (its JSON file's first content).
    pub fn start(pki: &Path, crl: bool, dynsec: Option<&str>) -> Broker {
        Broker::start_on(pki, crl, dynsec, None)
    }

    /// Starts it, on the given ports when asked (a restart), else on free ones.
    pub fn start_on(
        pki: &Path,
        crl: bool,
        dynsec: Option<&str>,
        ports: Option<(u16, u16)>,
    ) -> Broker {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let (plain, tls) = ports.unwrap_or_else(|| (free_port(), free_port()));
            let config = pki.join(format!("mosquitto-{tls}.conf"));
            let log = pki.join(format!("broker-{tls}.log"));
            let crl_line = if crl {
                format!("crlfile {}\n", pki.join("crl.pem").display())
            } else {
                String::new()
            };
            let tls_settings = format!(
                "cafile {ca}\ncertfile {cert}\nkeyfile {key}\n{crl_line}\
                 require_certificate true\nuse_identity_as_username true\n",
                ca = pki.join("ca.crt").display(),
                cert = pki.join("server.crt").display(),
                key = pki.join("server.key").display(),
            );
            let text = match dynsec {
                // Dynamic security is global; anonymous clients (only the
                // plain listener lets them in) get the policy's anonymous
                // group.
                Some(policy) => {
                    let path = pki.join("dynamic-security.json");
                    if !path.exists() {
                        std::fs::write(&path, policy).expect("dynsec");
                    }
                    format!(
                        "per_listener_settings false\npersistence false\nuser root\nlog_dest stderr\nset_tcp_nodelay true\n\
                         allow_anonymous true\n\
                         plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n\
                         plugin_opt_config_file {}\n\
                         listener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\n{tls_settings}",
                        path.display()
                    )
                }
                None => format!(
                    "per_listener_settings true\npersistence false\nuser root\nlog_dest stderr\nset_tcp_nodelay true\n\
                     listener {plain} 127.0.0.1\nallow_anonymous true\n\
                     listener {tls} 127.0.0.1\nallow_anonymous false\n{tls_settings}"
                ),
            };
            std::fs::write(&config, text).expect("config");
            let out = std::fs::File::create(&log).expect("log");
            let child = Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .spawn()
                .expect("start /usr/sbin/mosquitto (Debian package mosquitto)");
            let mut child = Guard(child);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if child.0.try_wait().ok().flatten().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", plain)).is_ok()
                    && std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok()
                {
                    return Broker {
                        plain,
                        tls,
                        child,
                        log,
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(child);
            failures.push(std::fs::read_to_string(&log).unwrap_or_default());
        }
        panic!("mosquitto did not start: {failures:?}");
    }

    /// SIGHUP: re-read the CRL.
    pub fn reload(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.0.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

/// The simulator binary as a child, with its stdout lines on a channel.
pub struct Sim {
    pub child: Guard,
    pub lines: std_mpsc::Receiver<String>,
}

impl Sim {
    pub fn start(fleet: &Fleet, broker: &Broker, extra: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cordon-device-sim"))
            .arg("--broker")
            .arg(format!("127.0.0.1:{}", broker.tls))
            .arg("--ca")
            .arg(fleet.path("pki/ca.crt"))
            .arg("--certs")
            .arg(fleet.path("pki"))
            .arg("--command-key")
            .arg(fleet.path("command.pub"))
            .arg("--release-key")
            .arg(fleet.path("release.pub"))
            .arg("--images")
            .arg(fleet.path("images.json"))
            .arg("--state-dir")
            .arg(fleet.path("state"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(fleet.path("sim.log"))
                    .map(Stdio::from)
                    .expect("sim log"),
            )
            .spawn()
            .expect("start the simulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Sim {
            child: Guard(child),
            lines,
        }
    }

    /// Waits for the readiness line; returns how long it took from now.
    pub fn wait_ready(&self, devices: usize, fleet: &Fleet) -> Duration {
        let started = Instant::now();
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| {
                panic!(
                    "no readiness line ({e}); sim log:\n{}",
                    std::fs::read_to_string(fleet.path("sim.log")).unwrap_or_default()
                )
            });
        assert_eq!(line, format!("device-sim ready {devices} devices"));
        started.elapsed()
    }

    /// SIGTERM, then the exit code (within 10 s).
    pub fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the simulator did not exit after SIGTERM");
    }
}

/// The test's MQTT 5 client on the plain listener: publishes commands and
/// sees all device telemetry.
pub struct Observer {
    pub client: AsyncClient,
    pub messages: tokio::sync::mpsc::UnboundedReceiver<Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Observer {
    pub async fn connect(port: u16) -> Observer {
        let mut options = MqttOptions::new(
            format!("observer-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        options.set_clean_start(true);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        options.set_network_options(network);
        let (client, mut events) = AsyncClient::new(options, 64);
        client
            .subscribe("fleet/+/telemetry/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let (tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    // A restarted broker: reconnect (the test re-subscribes).
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), subscribed_rx)
            .await
            .expect("suback in time")
            .expect("suback");
        Observer {
            client,
            messages,
            task,
        }
    }

    /// Publishes `payload` on `topic` with `correlation` as MQTT 5
    /// correlation data (QoS 1).
    pub async fn send(&self, topic: &str, payload: Vec<u8>, correlation: Option<&[u8]>) {
        let properties = PublishProperties {
            correlation_data: correlation.map(|c| c.to_vec().into()),
            ..PublishProperties::default()
        };
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
            .await
            .expect("publish");
    }

    /// The next message on `topic` for which `pick` holds, within `wait`.
    pub async fn next_where(
        &mut self,
        topic: &str,
        wait: Duration,
        mut pick: impl FnMut(&Publish) -> bool,
    ) -> Publish {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing on {topic} within {wait:?}"))
                .expect("observer alive");
            if message.topic == topic.as_bytes() && pick(&message) {
                return message;
            }
        }
    }
}

/// The correlation data of a message.
pub fn correlation(message: &Publish) -> Option<Vec<u8>> {
    message
        .properties
        .as_ref()
        .and_then(|p| p.correlation_data.as_ref())
        .map(|c| c.to_vec())
}

/// A device's state file.
pub fn state_file(fleet: &Fleet, device: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(fleet.path(&format!("state/{device}.json"))).expect("state file");
    serde_json::from_str(&text).expect("state json")
}

/// Polls a device's state file until `pred` holds (or panics after `wait`).
pub fn wait_state(
    fleet: &Fleet,
    device: &str,
    wait: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let state = std::fs::read_to_string(fleet.path(&format!("state/{device}.json")))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(state) = state {
            if pred(&state) {
                return state;
            }
            if started.elapsed() > wait {
                panic!("state of {device} never matched: {state:#}");
            }
        } else if started.elapsed() > wait {
            panic!("no state file for {device}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
