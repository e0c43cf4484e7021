//! Shared set-up: signed copies of the built components, sandboxes, calls.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cordon_plugin_host::signing::{self, Manifest, SigningKey};
use cordon_plugin_host::{
    Grants, Invocation, Limits, LoadedPlugin, MemoryFloors, PluginFile, Sandbox, SandboxConfig,
    Services,
};
use serde_json::Value;

/// The version every fixture crate has (the plugin workspace's).
pub const VERSION: &str = "0.1.0";

/// A built component in `plugins/dist/`.
pub fn dist(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run plugins/build.sh (tests/run does)",
        path.display()
    );
    path
}

/// The key the tests sign with, and trust.
pub fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[42; 32]))
}

/// A manifest for `bytes` with sensible defaults.
pub fn manifest(name: &str, bytes: &[u8], capabilities: &[&str]) -> Manifest {
    Manifest {
        name: name.into(),
        version: VERSION.into(),
        release_counter: 1,
        digest: signing::digest(bytes),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        expires: Utc::now() + chrono::Duration::days(30),
    }
}

/// The component `name` as a file signed with `manifest` (changed by `edit`).
pub fn signed(name: &str, capabilities: &[&str], edit: impl FnOnce(&mut Manifest)) -> PluginFile {
    let path = dist(name);
    let bytes = std::fs::read(&path).expect("component");
    let mut manifest = manifest(name, &bytes, capabilities);
    edit(&mut manifest);
    PluginFile {
        path,
        signature: Some(signing::sign(manifest, key())),
        bytes,
    }
}

/// One compiled-code cache per test binary: each component compiles once.
fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
        .to_path_buf()
}

/// Limits for tests: a short timeout, the default memory limit.
pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// A sandbox trusting the test key, with these limits and grants.
pub fn sandbox(limits: Limits, grants: Grants) -> Sandbox {
    Sandbox::new(SandboxConfig {
        limits,
        cache_dir: Some(cache_dir()),
        max_instances: 16,
        trusted_keys: signing::TrustedKeys::new(vec![key().verifying_key()]),
        grants,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

/// Loads a signed component.
pub async fn load(sandbox: &Sandbox, name: &str, capabilities: &[&str]) -> LoadedPlugin {
    let file = signed(name, capabilities, |_| {});
    sandbox
        .load(&file, None, &MemoryFloors::default())
        .await
        .unwrap_or_else(|e| panic!("{name} did not load: {e}"))
}

/// A call with this input.
pub fn invocation(input: Value) -> Invocation {
    Invocation {
        run: "run-1".into(),
        step: "step".into(),
        attempt: 1,
        key: "run-1/step/1".into(),
        dry_run: false,
        input,
        services: Services::default(),
    }
}

/// Fixed instant helpers.
pub fn past() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(1)
}

/// A free TCP port on loopback (bound, read, released: another process may
/// take it in between, so starters retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A private Mosquitto broker on a free loopback port (anonymous, no
/// persistence), started as a child process and killed by PID on drop. The
/// tests never use a broker the machine may already run.
pub struct Mosquitto {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker where anonymous clients may do anything.
    pub fn start() -> Mosquitto {
        Mosquitto::start_with("")
    }

    /// Starts a broker with `extra` configuration lines after its listener
    /// line (so listener settings such as `cafile` apply to it); files it
    /// names belong to the caller.
    pub fn start_with(extra: &str) -> Mosquitto {
        let binary = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or("mosquitto");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            // `user root` only matters when started as root: Mosquitto would
            // otherwise switch to the `mosquitto` user.
            let config = format!(
                "persistence false\nuser root\nlog_dest stderr\nallow_anonymous true\nlistener {port} 127.0.0.1\n{extra}\n"
            );
            let config_path = dir.path().join("mosquitto.conf");
            std::fs::write(&config_path, config).expect("config file");
            let log = std::fs::File::create(dir.path().join("broker.log")).expect("log file");
            let mut child = std::process::Command::new(binary)
                .arg("-c")
                .arg(&config_path)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {binary} ({e}): install Debian's mosquitto package")
                });
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Mosquitto {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
            failures
                .push(std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default());
        }
        panic!("mosquitto did not start: {failures:?}");
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's own MQTT 5 client, subscribed to one filter; messages arrive on
/// `messages`. Its event-loop task ends when it is dropped.
pub struct MqttWatcher {
    /// Kept: with its last client gone, rumqttc's event loop stops.
    _client: rumqttc::v5::AsyncClient,
    pub messages: tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttWatcher {
    /// Connects to the broker on `port` and subscribes to `filter` (QoS 1);
    /// returns once the broker acknowledged the subscription.
    pub async fn subscribe(port: u16, filter: &str) -> MqttWatcher {
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::{AsyncClient, Event, MqttOptions};

        static WATCHERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WATCHERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("test-watcher-{}-{n}", std::process::id());
        let (client, mut events) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", port), 16);
        client
            .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let (messages_tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut subscribed = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(message))) => {
                        let _ = messages_tx.send(message);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test watcher lost its broker: {e}"),
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), subscribed_rx)
            .await
            .expect("SUBACK in time")
            .expect("watcher alive");
        MqttWatcher {
            _client: client,
            messages,
            task,
        }
    }
}

impl Drop for MqttWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request a [`HttpServer`] saw.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET`, …
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length
/// bodies only) that records every request. By the path's last segment:
/// `big` answers 5 MiB, `redirect` a 302, `slow` waits 3 s; anything else answers 200 `ok` with
/// a `set-cookie` and an `x-served` header.
pub struct HttpServer {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<SeenRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HttpServer {
    /// Starts it on a free port.
    pub fn start() -> HttpServer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = std::sync::Arc::<std::sync::Mutex<Vec<SeenRequest>>>::default();
        let stop = std::sync::Arc::<std::sync::atomic::AtomicBool>::default();
        let (seen_in, stop_in) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_in.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = seen_in.clone();
                std::thread::spawn(move || serve_connection(stream, &seen));
            }
        });
        HttpServer { port, seen, stop }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_connection(stream: std::net::TcpStream, seen: &std::sync::Mutex<Vec<SeenRequest>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let head_only = method == "HEAD";
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().expect("lock").push(SeenRequest {
            method,
            target: target.clone(),
            headers,
            body,
        });
        let path = target.split('?').next().unwrap_or("");
        // By the last segment, whatever base path the test configured.
        let (head, body): (String, Vec<u8>) = match path.rsplit('/').next().unwrap_or("") {
            "big" => ("200 OK".into(), vec![b'x'; 5 << 20]),
            "redirect" => ("302 Found\r\nlocation: /elsewhere".into(), Vec::new()),
            last => {
                if last == "slow" {
                    std::thread::sleep(Duration::from_secs(3));
                }
                (
                    "200 OK\r\nset-cookie: session=s3cret\r\nx-served: yes".into(),
                    b"ok".to_vec(),
                )
            }
        };
        let response = format!("HTTP/1.1 {head}\r\ncontent-length: {}\r\n\r\n", body.len());
        let body = if head_only { &[][..] } else { &body[..] };
        if writer.write_all(response.as_bytes()).is_err() || writer.write_all(body).is_err() {
            return;
        }
    }
}
