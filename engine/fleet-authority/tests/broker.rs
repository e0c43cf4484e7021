//! The authority against a real Mosquitto 2.0: revoke a device over the API,
//! and the broker refuses its new connections while others still connect.
//!
//! The test starts its own broker on a free loopback port (mTLS listener on
//! the authority's PKI, `crlfile` = the authority's `crl.pem`) and the real
//! `cordon-fleet-authority serve` binary, and kills both by their child
//! handles when it ends, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cordon_fleet::command::{Gate, SignedCommand};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn mosquitto_binary() -> &'static str {
    ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("mosquitto is not installed (/usr/sbin/mosquitto): apt-get install mosquitto")
        })
}

/// Starts Mosquitto with an mTLS listener on the authority's PKI in `pki`;
/// writes its PID to `pid_file`. Returns the child and the port.
fn start_mosquitto(pki: &Path, work: &Path, pid_file: &Path) -> (Killed, u16) {
    let binary = mosquitto_binary();
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let conf = work.join("mosquitto.conf");
        let log = work.join("broker.log");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous false\npersistence false\nuser root\n\
                 log_dest file {log}\nlog_type all\n\
                 listener {port} 127.0.0.1\ncafile {pki}/ca.crt\ncertfile {pki}/server.crt\n\
                 keyfile {pki}/server.key\ncrlfile {pki}/crl.pem\nrequire_certificate true\n\
                 use_identity_as_username true\n",
                log = log.display(),
                pki = pki.display(),
            ),
        )
        .expect("mosquitto.conf");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut child = Killed(child);
        std::fs::write(pid_file, child.0.id().to_string()).expect("pid file");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.0.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(child);
        failures.push(std::fs::read_to_string(&log).unwrap_or_default());
    }
    panic!("mosquitto did not start: {failures:?}");
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cordon-fleet-authority")
}

/// Starts `serve`; returns the child and its URL (from the ready file).
fn start_authority(dir: &Path, work: &Path, port: u16, pid_file: &Path) -> (Killed, String) {
    let token_file = work.join("token");
    std::fs::write(&token_file, TOKEN).expect("token");
    let ready = work.join("ready");
    let child = Command::new(bin())
        .args(["serve", "--dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token_file)
        .args([
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--broker-pid-file",
        ])
        .arg(pid_file)
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("authority.log")).expect("log"))
        .env("RUST_LOG", "info")
        .spawn()
        .expect("start the authority");
    let mut child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(url) = std::fs::read_to_string(&ready) {
            return (child, url);
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("the authority exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the authority did not become ready");
}

/// Whether a device gets a successful CONNACK over mutual TLS (MQTT v5),
/// using rumqttc's own TLS set-up (not the authority's probe code).
async fn connects(port: u16, dir: &Path, device: &str) -> Result<(), String> {
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let read = |p: PathBuf| std::fs::read(p).expect("pki file");
    let tls = rumqttc::TlsConfiguration::Simple {
        ca: read(dir.join("ca.crt")),
        alpn: None,
        client_auth: Some((
            read(dir.join(format!("devices/{device}.crt"))),
            read(dir.join(format!("devices/{device}.key"))),
        )),
    };
    let mut options = MqttOptions::new(format!("test-{device}"), "127.0.0.1", port);
    options.set_transport(rumqttc::Transport::Tls(tls));
    let (_client, mut events) = AsyncClient::new(options, 4);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack)))
                    if ack.code == ConnectReturnCode::Success =>
                {
                    return Ok(());
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(format!("{:?}", ack.code)),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()))
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_is_enforced_by_the_broker() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("authority");
    let out = Command::new(bin())
        .arg("init")
        .arg(&dir)
        .args(["--devices", "dev-1,dev-2", "--device-count", "3"])
        .output()
        .expect("init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pid_file = work.path().join("mosquitto.pid");
    let (_broker, port) = start_mosquitto(&dir, work.path(), &pid_file);
    let (mut authority, url) = start_authority(&dir, work.path(), port, &pid_file);
    let api = Api {
        http: reqwest::Client::new(),
        url,
    };

    for device in ["dev-1", "dev-2"] {
        connects(port, &dir, device)
            .await
            .unwrap_or_else(|e| panic!("{device}: {e}"));
    }

    // Authentication.
    let health = api
        .http
        .get(format!("{}/healthz", api.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let anonymous = api
        .http
        .get(format!("{}/v1/devices/dev-1/certificate", api.url))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["code"], "unauthorized");

    // Issuing: reserved, duplicate, new.
    for (name, code) in [
        ("admin", "reserved_name"),
        ("probe-x", "reserved_name"),
        ("Dev-9", "invalid_name"),
    ] {
        let (status, body) = api
            .post(&format!("/v1/devices/{name}/certificate"), json!({}))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some(code)),
            "{name}: {body}"
        );
    }
    let (status, body) = api.post("/v1/devices/dev-1/certificate", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_issued"))
    );
    let (status, body) = api.post("/v1/devices/dev-9/certificate", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cn"], "dev-9");
    assert!(body.get("key").is_none() && !body.to_string().contains("PRIVATE"));
    connects(port, &dir, "dev-9")
        .await
        .expect("dev-9 connects with its new certificate");

    // Revoke dev-2.
    let (status, record) = api.get("/v1/devices/dev-2/certificate").await;
    assert_eq!(status, 200, "{record}");
    let serial = record["serial"].as_str().expect("serial").to_string();
    let started = Instant::now();
    let (status, revoked) = api
        .post(
            &format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "key_compromise"}),
        )
        .await;
    let wall_ms = started.elapsed().as_millis();
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["reason"], "key_compromise");
    assert_eq!(revoked["already_revoked"], false);
    assert_eq!(revoked["broker_reloaded"], true);
    assert_eq!(revoked["probe"]["revoked_refused"], true);
    assert_eq!(revoked["probe"]["valid_accepted"], true);
    assert_eq!(revoked["crl"]["number"], 2);
    eprintln!(
        "revoke -> probe proven: probe {} ms in {} attempts, request {wall_ms} ms; refusal: {}",
        revoked["probe"]["ms"], revoked["probe"]["attempts"], revoked["probe"]["refusal"]
    );

    let refused = connects(port, &dir, "dev-2").await;
    assert!(refused.is_err(), "revoked dev-2 still connects");
    connects(port, &dir, "dev-1")
        .await
        .expect("dev-1 still connects");

    let (status, cert) = api.get(&format!("/v1/certificates/{serial}")).await;
    assert_eq!(status, 200, "{cert}");
    assert_eq!(cert["in_crl"], true);
    assert_eq!(cert["status"], "revoked");
    assert_eq!(cert["crl_number"], 2);
    let (status, cert) = api.get("/v1/certificates/ffffff").await;
    assert_eq!(
        (status, cert["code"].as_str()),
        (404, Some("unknown_certificate"))
    );

    // Idempotent: the second revoke re-publishes and re-proves.
    let (status, again) = api
        .post(
            &format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["already_revoked"], true);
    assert_eq!(again["reason"], "key_compromise");
    assert_eq!(again["crl"]["number"], 3);
    assert_eq!(again["probe"]["valid_accepted"], true);
    let (status, bad) = api
        .post(
            &format!("/v1/certificates/{serial}/revoke"),
            json!({"reason": "because"}),
        )
        .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")));

    // Refreshing the CRL.
    let (status, crl) = api.post("/v1/crl", json!({})).await;
    assert_eq!(status, 200, "{crl}");
    assert_eq!(crl["crl"]["number"], 4);
    assert_eq!(crl["probe"]["revoked_refused"], true);
    connects(port, &dir, "dev-1")
        .await
        .expect("dev-1 after refresh");

    // Commands: signed for a valid device, refused for revoked or unknown ones.
    let order = json!({"kind": "install-firmware", "version": "1.1.0", "allow_below_floor": false});
    let (status, signed) = api
        .post("/v1/commands", json!({"id": "run-1/step/1", "device": "dev-1", "order": order, "validity_secs": 100000}))
        .await;
    assert_eq!(status, 200, "{signed}");
    let parsed: SignedCommand = serde_json::from_value(signed.clone()).expect("a SignedCommand");
    assert_eq!(
        parsed.command.expires_at - parsed.command.issued_at,
        cordon_fleet::command::MAX_VALIDITY_SECS
    );
    let public = std::fs::read_to_string(dir.join("command.pub")).expect("command.pub");
    let mut gate = Gate::new(
        "dev-1",
        cordon_fleet::keys::parse_public(&public).expect("key"),
    );
    let payload = serde_json::to_vec(&signed).expect("bytes");
    let command = gate
        .admit(&payload, chrono::Utc::now().timestamp())
        .expect("admitted");
    assert_eq!(command.device, "dev-1");
    let (status, body) = api
        .post(
            "/v1/commands",
            json!({"id": "x", "device": "dev-2", "order": order}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("device_revoked"))
    );
    let (status, body) = api
        .post(
            "/v1/commands",
            json!({"id": "x", "device": "dev-77", "order": order}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_device"))
    );

    // SIGTERM: a graceful exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(authority.0.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = authority.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the authority ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_did_not_reload_is_reported_and_the_revocation_kept() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("authority");
    let out = Command::new(bin())
        .arg("init")
        .arg(&dir)
        .args(["--devices", "dev-1,dev-2,dev-3"])
        .output()
        .expect("init");
    assert!(out.status.success());
    let pid_file = work.path().join("mosquitto.pid");
    let (_broker, port) = start_mosquitto(&dir, work.path(), &pid_file);
    let (_authority, url) = start_authority(&dir, work.path(), port, &pid_file);
    let api = Api {
        http: reqwest::Client::new(),
        url,
    };
    let serial_of = |record: Value| record["serial"].as_str().expect("serial").to_string();

    // The PID file names a process that is not the broker (a `sleep` of our
    // own): the SIGHUP is delivered, the broker never re-reads the CRL, and
    // the probe sees the revoked sentinel still accepted (fail open).
    let decoy = Killed(Command::new("sleep").arg("30").spawn().expect("sleep"));
    std::fs::write(&pid_file, decoy.0.id().to_string()).expect("pid file");
    let dev2 = serial_of(api.get("/v1/devices/dev-2/certificate").await.1);
    let (status, body) = api
        .post(
            &format!("/v1/certificates/{dev2}/revoke"),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "probe_failed");
    assert!(
        body["message"].as_str().unwrap_or("").contains("sentinel"),
        "{body}"
    );
    assert_eq!(body["details"]["revocation_recorded"], true);
    assert_eq!(body["details"]["broker_reloaded"], true);
    let (_, cert) = api.get(&format!("/v1/certificates/{dev2}")).await;
    assert_eq!(
        (cert["status"].as_str(), cert["in_crl"].as_bool()),
        (Some("revoked"), Some(true))
    );
    // The broker has not re-read the CRL: the revoked device still gets in.
    connects(port, &dir, "dev-2")
        .await
        .expect("no reload, no enforcement");

    // No PID at all: the reload itself fails.
    std::fs::write(&pid_file, "not a pid").expect("pid file");
    let dev3 = serial_of(api.get("/v1/devices/dev-3/certificate").await.1);
    let (status, body) = api
        .post(
            &format!("/v1/certificates/{dev3}/revoke"),
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "broker_reload_failed");
    assert_eq!(body["details"]["revocation_recorded"], true);
    let (_, cert) = api.get(&format!("/v1/certificates/{dev3}")).await;
    assert_eq!(
        (cert["status"].as_str(), cert["in_crl"].as_bool()),
        (Some("revoked"), Some(true))
    );
}
