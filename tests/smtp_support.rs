//! The SMTP sink for end-to-end tests: `tests/servers/smtp_sink.sh` (a real
//! SMTP server on loopback that stores each mail in a Maildir), started in
//! a directory of its own and stopped by its PID when dropped, panics
//! included. Mails are read back as text, quoted-printable soft line
//! breaks joined, so links and long lines can be searched whole.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running sink.
pub struct Sink {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers/smtp_sink.sh")
}

impl Sink {
    /// Starts a sink storing its mail under `dir`.
    pub fn start_in(dir: PathBuf) -> Sink {
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run smtp_sink.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.join("smtp.env")).expect("smtp.env");
        let port = env
            .lines()
            .find_map(|l| l.strip_prefix("SMTP_PORT="))
            .and_then(|p| p.parse().ok())
            .expect("SMTP_PORT");
        Sink { dir, port }
    }

    /// Starts a sink in a fresh temporary directory (removed when dropped).
    pub fn start() -> Sink {
        Sink::start_in(
            std::env::temp_dir().join(format!("cordon-smtp-{}", uuid::Uuid::new_v4().simple())),
        )
    }

    /// Every stored mail (headers and body), quoted-printable soft breaks joined.
    pub fn all(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("maildir/new"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|m| {
                        m.replace("=\r\n", "")
                            .replace("=\n", "")
                            .replace("=3D", "=")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stored mails, after waiting up to 5 s for `n` of them.
    pub fn mails(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mails = self.all();
            if mails.len() >= n || Instant::now() > deadline {
                return mails;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to 15 s for a mail to `to` whose text contains `needle`.
    pub fn mail_to(&self, to: &str, needle: &str) -> String {
        let began = Instant::now();
        loop {
            if let Some(mail) = self
                .all()
                .into_iter()
                .find(|m| m.contains(&format!("X-RcptTo: {to}")) && m.contains(needle))
            {
                return mail;
            }
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "no mail to {to} containing {needle:?}; mails: {:#?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}
