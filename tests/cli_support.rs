//! What the CLI tests share: a scratch directory with its own database, and
//! `cordon` run in it as a user types it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory with its own database, removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("cordon-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch { dir }
    }

    pub fn cordon(&self, args: &[&str]) -> Output {
        self.cordon_with(args, &[])
    }

    /// `cordon` with extra environment variables.
    pub fn cordon_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(&self.dir)
            .env(
                "CORDON_DATABASE",
                format!("sqlite://{}?mode=rwc", self.dir.join("c.db").display()),
            )
            // The compiled-plugin cache and any default state stay in the scratch dir.
            .env("CORDON_HOME", &self.dir)
            .env("USER", "alice")
            .env_remove("CORDON_CONFIG")
            .env_remove("CORDON_PLUGINS")
            .env_remove("CORDON_TEST_LEDGER")
            .env_remove("CORDON_CRASH_AT")
            .output()
            .expect("run cordon")
    }

    /// Writes and publishes a playbook.
    pub fn publish(&self, file: &str, yaml: &str) {
        std::fs::write(self.dir.join(file), yaml).expect("write playbook");
        let out = self.cordon(&["publish", file]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
