//! A real SMTP server on loopback for the tests: `tests/servers/smtp_sink.sh`
//! (aiosmtpd writing every mail to a Maildir), started in a temporary
//! directory and stopped by its PID when the guard drops, panics included.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it; tests may unwrap

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cordon_notify::SmtpConfig;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running SMTP sink; stopped on drop.
#[derive(Debug)]
pub struct Sink {
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `maildir/new` holds one file per accepted mail.
    pub maildir: PathBuf,
    pid: u32,
}

impl Sink {
    /// A plain sink (no STARTTLS).
    pub fn start() -> Sink {
        Sink::launch(&[])
    }

    /// A sink that requires STARTTLS, with the server certificate of `pki`.
    pub fn start_tls(pki: &Pki) -> Sink {
        let cert = pki.dir.path().join("server.crt");
        let key = pki.dir.path().join("server.key");
        Sink::launch(&[
            ("SMTP_TLS_CERT", cert.as_path()),
            ("SMTP_TLS_KEY", key.as_path()),
        ])
    }

    fn launch(env: &[(&str, &Path)]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(root().join("tests/servers/smtp_sink.sh"));
        command.arg("start").arg(dir.path());
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "smtp_sink.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = read_env(&dir.path().join("smtp.env"));
        Sink {
            port: vars["SMTP_PORT"].parse().unwrap(),
            maildir: PathBuf::from(&vars["SMTP_MAILDIR"]).join("new"),
            pid: vars["SMTP_PID"].parse().unwrap(),
            dir,
        }
    }

    /// A configuration for this sink: plain text, sender `Cordon <cordon@fleet.test>`.
    pub fn config(&self) -> SmtpConfig {
        serde_yaml::from_str(&format!(
            "{{host: 127.0.0.1, port: {}, tls: none, from: 'Cordon <cordon@fleet.test>', timeout_ms: 5000}}",
            self.port
        ))
        .unwrap()
    }

    /// The mails delivered so far, oldest first by file name order.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| Delivered::parse(&std::fs::read(f).unwrap()))
            .collect()
    }

    /// Waits (up to 5 s) until `n` mails are delivered, and returns them.
    /// The sink renames a mail into `new/` before it answers 250, so after
    /// a successful send the file is normally there already.
    pub fn wait_for(&self, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mails = self.delivered();
            if mails.len() >= n || Instant::now() > deadline {
                assert_eq!(mails.len(), n, "mails in {}", self.maildir.display());
                return mails;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let stopped = Command::new(root().join("tests/servers/smtp_sink.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !stopped {
            // The script failed: stop the sink by its PID ourselves.
            let _ = Command::new("kill")
                .arg("-9")
                .arg(self.pid.to_string())
                .status();
        }
    }
}

/// A throwaway CA and server certificate (`tests/servers/pki.sh`), for
/// 127.0.0.1.
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Creates one.
    pub fn create() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(root().join("tests/servers/pki.sh"))
            .arg(dir.path())
            .env("PKI_DEVICE_COUNT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pki.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pki { dir }
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

/// One delivered mail, parsed as a mail client would.
#[derive(Debug)]
pub struct Delivered {
    /// Header name (lower case) → every value, decoded.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The top-level content type (`text/plain`, `multipart/alternative`).
    pub content_type: String,
    /// `(content type, decoded body)` of each leaf part, in order.
    pub parts: Vec<(String, String)>,
}

impl Delivered {
    fn parse(raw: &[u8]) -> Delivered {
        let mail = mailparse::parse_mail(raw).unwrap();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &mail.headers {
            headers
                .entry(h.get_key().to_ascii_lowercase())
                .or_default()
                .push(h.get_value());
        }
        let mut parts = Vec::new();
        collect(&mail, &mut parts);
        Delivered {
            headers,
            content_type: mail.ctype.mimetype.clone(),
            parts,
        }
    }

    /// The one value of header `name`.
    pub fn header(&self, name: &str) -> &str {
        let values = self
            .headers
            .get(&name.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers));
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        &values[0]
    }

    /// The decoded body of the part of type `ctype`.
    pub fn part(&self, ctype: &str) -> &str {
        self.parts
            .iter()
            .find(|(t, _)| t == ctype)
            .map(|(_, body)| body.as_str())
            .unwrap_or_else(|| panic!("no {ctype} part in {:?}", self.parts))
    }
}

fn collect(part: &mailparse::ParsedMail<'_>, out: &mut Vec<(String, String)>) {
    if part.subparts.is_empty() {
        out.push((part.ctype.mimetype.clone(), part.get_body().unwrap()));
    } else {
        for sub in &part.subparts {
            collect(sub, out);
        }
    }
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
