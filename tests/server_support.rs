//! Starting the real `cordon serve` for tests: a scratch directory with its
//! own database and configuration, the server on `127.0.0.1:0`, its URL
//! read from the `listening on` line, tokens made with `cordon token
//! create`, and an HTTP client. The process is killed by PID when the
//! [`Server`] is dropped; [`Server::stop`] sends SIGTERM and waits instead,
//! and [`Server::restart`] starts it again on the same database.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `cordon serve` process over a scratch directory.
pub struct Server {
    dir: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Everything the server wrote to stderr, across restarts.
    log: Arc<Mutex<String>>,
    /// How long the last start took, until the `listening on` line.
    pub started_in: Duration,
}

/// The configuration every test server gets: three people, a small body limit.
pub const CONFIG: &str = "server:
  body_limit_kib: 16
users:
  alice: {email: alice@example.net, roles: [responder, security-lead], groups: [security]}
  victor: {roles: [auditor]}
  root: {}
";

impl Server {
    /// A server over a fresh scratch directory, with [`CONFIG`].
    pub fn start() -> Server {
        Server::start_with(CONFIG)
    }

    /// A server over a fresh scratch directory with this configuration.
    pub fn start_with(config: &str) -> Server {
        let dir =
            std::env::temp_dir().join(format!("cordon-server-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("cordon.yaml"), config).expect("config");
        let mut server = Server {
            dir,
            child: None,
            url: String::new(),
            log: Arc::default(),
            started_in: Duration::ZERO,
        };
        server.spawn();
        server
    }

    /// The environment every `cordon` of this scratch directory runs with.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cordon"));
        command
            .current_dir(&self.dir)
            .env(
                "CORDON_DATABASE",
                format!("sqlite://{}?mode=rwc", self.dir.join("c.db").display()),
            )
            .env("CORDON_HOME", &self.dir)
            .env("USER", "root")
            .env_remove("CORDON_CONFIG")
            .env_remove("CORDON_PLUGINS")
            .env_remove("CORDON_SERVER")
            .env_remove("CORDON_TOKEN")
            .env_remove("CORDON_LISTEN")
            .env_remove("CORDON_TEST_LEDGER")
            .env_remove("CORDON_CRASH_AT");
        command
    }

    fn spawn(&mut self) {
        let began = Instant::now();
        let mut child = self
            .command()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                "cordon.yaml",
                "--poll",
                "20ms",
                "--grace",
                "2s",
            ])
            // Verbose, so a token that leaked into any log line would show.
            .env(
                "CORDON_LOG",
                "debug,hyper=info,h2=info,sqlx=info,sea_orm=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cordon serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut log = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("cordon serve did not start:\n{}", self.log()),
        }
        self.started_in = began.elapsed();
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `cordon ARGS` on this server's database and directory.
    pub fn cordon(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run cordon")
    }

    /// `cordon ARGS` with extra environment variables.
    pub fn cordon_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run cordon")
    }

    /// A new token for `user` with `role`, made with `cordon token create`.
    pub fn token(&self, user: &str, role: &str) -> String {
        self.token_with(user, role, &[])
    }

    /// [`Server::token`] with extra flags (`--expires 1s`).
    pub fn token_with(&self, user: &str, role: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--user", user, "--role", role];
        args.extend_from_slice(extra);
        let out = self.cordon(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let token = text(&out.stdout);
        assert_eq!(
            token.lines().count(),
            1,
            "only the token on stdout: {token}"
        );
        token.trim().to_string()
    }

    /// An HTTP client of this server presenting `token` (`None`: no header).
    pub fn api(&self, token: Option<&str>) -> Api {
        // reqwest here has no TLS provider of its own (one stack: rustls with ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            http: reqwest::Client::new(),
            base: self.url.clone(),
            token: token.map(str::to_string),
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let began = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if began.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("cordon serve did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same database and configuration.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL by PID, then reap it.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client of the test server.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// An answer: status, headers and the body (JSON when it parses, else text).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// `GET {base}{path}`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST {base}{path}` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, "application/json", body.to_string().into_bytes())
            .await
    }

    /// `POST {base}{path}` with any body and content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Publishes a playbook (needs an admin token).
    pub async fn publish(&self, yaml: &str) -> Answer {
        self.post_raw(
            "/api/v1/playbooks",
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
        .await
    }

    /// Starts `playbook` and waits (up to 15 s) for its gate's pending
    /// approval request; the run id and the request.
    pub async fn start_at_gate(&self, playbook: &str) -> (String, Value) {
        let started = self
            .post_json("/api/v1/runs", &serde_json::json!({"playbook": playbook}))
            .await;
        assert!(started.status < 300, "{}", started.text);
        let run = started.body["id"].as_str().expect("run id").to_string();
        let began = Instant::now();
        loop {
            let pending = self.get(&format!("/api/v1/approvals?run={run}")).await;
            assert_eq!(pending.status, 200, "{}", pending.text);
            if let Some(request) = pending.body.as_array().and_then(|a| a.first()) {
                return (run, request.clone());
            }
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "no approval request for {run}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls run `id` until its status is `wanted` (or the time is up).
    pub async fn wait_for(&self, id: &str, wanted: &str, within: Duration) -> Value {
        let began = Instant::now();
        loop {
            let run = self.get(&format!("/api/v1/runs/{id}")).await;
            assert_eq!(run.status, 200, "{}", run.text);
            if run.body["status"] == wanted {
                return run.body;
            }
            assert!(
                began.elapsed() < within,
                "run {id} is {} after {within:?}, not {wanted}",
                run.body["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
pub fn urlencoded(form: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
