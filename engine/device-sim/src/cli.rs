//! Command-line options and the files they name, checked before any device
//! starts: a typo in a device list or a key file should stop the simulator
//! at once, not show up later as devices that refuse everything.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use cordon_fleet::firmware::SignedImage;
use cordon_fleet::keys::{self, VerifyingKey};

/// Simulated fleet devices on a real MQTT broker over mutual TLS. Each
/// device publishes heartbeats and obeys only commands signed by the
/// command key.
#[derive(Debug, Parser)]
#[command(name = "cordon-device-sim", version)]
pub struct Cli {
    /// The broker's mTLS listener, HOST:PORT.
    #[arg(long)]
    pub broker: String,
    /// The fleet CA certificate (PEM) the broker's certificate chains to.
    #[arg(long)]
    pub ca: PathBuf,
    /// Directory holding `<id>.crt` and `<id>.key` (PEM) for every device.
    #[arg(long)]
    pub certs: PathBuf,
    /// Device ids, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "device_count",
        required_unless_present = "device_count"
    )]
    pub devices: Vec<String>,
    /// Simulate dev-1 … dev-N.
    #[arg(long)]
    pub device_count: Option<usize>,
    /// The public key commands must be signed with (`ed25519:<hex>`).
    #[arg(long)]
    pub command_key: PathBuf,
    /// The public key firmware manifests must be signed with.
    #[arg(long)]
    pub release_key: PathBuf,
    /// JSON array of signed firmware images: every device holds all of them.
    #[arg(long)]
    pub images: PathBuf,
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// Devices whose every install fails ("flash write failed").
    #[arg(long, value_delimiter = ',')]
    pub fail_install: Vec<String>,
    /// Devices that start with a tampered configuration, unhealthy.
    #[arg(long, value_delimiter = ',')]
    pub compromised: Vec<String>,
    /// Write `<id>.json` state files here after every change.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The anti-rollback floor (security version) of every device.
    #[arg(long, default_value_t = 2)]
    pub floor: u32,
    /// The firmware version every device runs at start.
    #[arg(long, default_value = "2.0.0")]
    pub current: String,
    /// The name the broker's certificate must be valid for.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// MQTT keep-alive in seconds (at least 5, rumqttc's minimum): how soon
    /// a dead link is noticed.
    #[arg(long, default_value_t = 5)]
    pub keep_alive_secs: u64,
}

/// Everything the options name, read and checked.
#[derive(Debug)]
pub struct Setup {
    /// Broker host (an address or a name to resolve).
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// The devices, in order.
    pub devices: Vec<String>,
    /// The command key.
    pub command_key: VerifyingKey,
    /// The release key.
    pub release_key: VerifyingKey,
    /// The firmware images.
    pub images: Vec<SignedImage>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Keep-alive.
    pub keep_alive: Duration,
}

impl Cli {
    /// Reads and checks what the options name.
    pub fn setup(&self) -> anyhow::Result<Setup> {
        let (host, port) = self
            .broker
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, port)| !host.is_empty() && *port != 0)
            .with_context(|| format!("--broker {} is not HOST:PORT", self.broker))?;
        // `[::1]:1883` names an IPv6 address; the brackets are not the host.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();

        let devices = match self.device_count {
            Some(0) => bail!("--device-count must be at least 1"),
            Some(n) => (1..=n).map(|i| format!("dev-{i}")).collect(),
            None => self.devices.clone(),
        };
        let mut seen = std::collections::HashSet::new();
        for id in &devices {
            if !cordon_fleet::valid_device_id(id) {
                bail!("{id:?} is not a valid device id (a-z, 0-9, -; at most 63)");
            }
            if !seen.insert(id.as_str()) {
                bail!("device {id} is listed twice");
            }
        }
        for (flag, list) in [
            ("--fail-install", &self.fail_install),
            ("--compromised", &self.compromised),
        ] {
            if let Some(unknown) = list.iter().find(|id| !seen.contains(id.as_str())) {
                bail!("{flag} names {unknown}, which is not a simulated device");
            }
        }
        for id in &devices {
            for ext in ["crt", "key"] {
                let path = self.certs.join(format!("{id}.{ext}"));
                if !path.is_file() {
                    bail!("missing {} for device {id}", path.display());
                }
            }
        }

        let read_key = |path: &PathBuf| -> anyhow::Result<VerifyingKey> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            keys::parse_public(&text).with_context(|| format!("{}", path.display()))
        };
        let images_text = std::fs::read_to_string(&self.images)
            .with_context(|| format!("cannot read {}", self.images.display()))?;
        let images: Vec<SignedImage> = serde_json::from_str(&images_text).with_context(|| {
            format!(
                "{} is not a JSON array of signed images",
                self.images.display()
            )
        })?;
        if self.heartbeat_ms == 0 {
            bail!("--heartbeat-ms must be at least 1");
        }
        if self.keep_alive_secs < 5 {
            bail!("--keep-alive-secs must be at least 5");
        }
        Ok(Setup {
            host,
            port,
            devices,
            command_key: read_key(&self.command_key)?,
            release_key: read_key(&self.release_key)?,
            images,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            keep_alive: Duration::from_secs(self.keep_alive_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_and_counts() {
        let cli = Cli::try_parse_from([
            "sim",
            "--broker",
            "127.0.0.1:8883",
            "--ca",
            "ca",
            "--certs",
            "c",
            "--devices",
            "dev-1,dev-2",
            "--command-key",
            "k",
            "--release-key",
            "r",
            "--images",
            "i",
            "--fail-install",
            "dev-2",
        ])
        .expect("parse");
        assert_eq!(cli.devices, ["dev-1", "dev-2"]);
        assert_eq!(cli.fail_install, ["dev-2"]);
        assert_eq!(
            (cli.floor, cli.current.as_str(), cli.heartbeat_ms),
            (2, "2.0.0", 1000)
        );
        assert!(
            Cli::try_parse_from([
                "sim",
                "--broker",
                "b:1",
                "--ca",
                "ca",
                "--certs",
                "c",
                "--devices",
                "a",
                "--device-count",
                "3",
                "--command-key",
                "k",
                "--release-key",
                "r",
                "--images",
                "i",
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "sim",
                "--broker",
                "b:1",
                "--ca",
                "ca",
                "--certs",
                "c",
                "--command-key",
                "k",
                "--release-key",
                "r",
                "--images",
                "i",
            ])
            .is_err()
        );
    }

    #[test]
    fn bad_options_are_refused_before_any_file_is_read() {
        let parse = |args: &[&str]| {
            let mut all = vec![
                "sim",
                "--ca",
                "ca",
                "--certs",
                "/nonexistent",
                "--command-key",
                "k",
                "--release-key",
                "r",
                "--images",
                "i",
            ];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
                .expect("parse")
                .setup()
                .expect_err("refused")
                .to_string()
        };
        assert!(parse(&["--broker", "nope", "--devices", "dev-1"]).contains("HOST:PORT"));
        assert!(parse(&["--broker", "h:1", "--devices", "Dev/1"]).contains("not a valid"));
        assert!(parse(&["--broker", "h:1", "--devices", "a,a"]).contains("twice"));
        assert!(
            parse(&["--broker", "h:1", "--devices", "a", "--compromised", "b"])
                .contains("not a simulated device")
        );
        assert!(parse(&["--broker", "h:1", "--device-count", "2"]).contains("missing"));
    }
}
