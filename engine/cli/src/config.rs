//! The node's configuration file (`--config FILE` or `CORDON_CONFIG`):
//! where signed plugins are, which keys are trusted, what each plugin is
//! granted, and the sandbox's limits. Relative paths are relative to the
//! file. Without a file, nothing is granted, no key is trusted and no mail
//! is sent.
//!
//! ```yaml
//! plugins:
//!   dirs: [plugins/dist]
//!   trusted_keys: [keys/plugins.pub]
//!   grants:
//!     isolate: [mqtt:fleet-broker, inventory:read, state:run]
//!   limits: {memory_mib: 64, timeout_ms: 30000, output_kib: 1024}
//! connections:
//!   fleet-broker: {kind: mqtt, host: 127.0.0.1, port: 8883, username: cordon, password: "…", tls: {ca_file: /etc/cordon/ca.pem}}
//!   fleet-ca: {kind: http, base_url: "https://127.0.0.1:9443/api", headers: {authorization: "Bearer …"}}
//! server: {listen: "127.0.0.1:8080", public_url: "https://cordon.example.net", body_limit_kib: 2048}
//! users:
//!   alice: {email: alice@example.net, roles: [responder, security-lead], groups: [security]}
//! smtp: {host: smtp.example.org, tls: starttls, username: cordon, password_env: CORDON_SMTP_PASSWORD, from: "Cordon <cordon@example.org>"}
//! webhooks:
//!   alertmanager: {format: alertmanager, auth: {bearer: {token_env: CORDON_AM_TOKEN}}, rate_limit: {rate_per_sec: 20, burst: 40}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cordon_plugin_host::Capability;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The plugin sandbox.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Named connections (MQTT brokers, HTTP APIs) with their credentials:
    /// plugins name them, only the host sees addresses and secrets.
    #[serde(default)]
    pub connections: BTreeMap<String, cordon_plugin_host::ConnectionConfig>,
    /// `cordon serve`: listen address, public URL, body limit.
    #[serde(default)]
    pub server: cordon_server::ServerConfig,
    /// Who may hold API tokens, with their groups and roles (approval gates name them).
    #[serde(default)]
    pub users: cordon_server::Directory,
    /// The SMTP server `notify` steps send mail through; without it they
    /// fail, saying so.
    #[serde(default)]
    pub smtp: Option<cordon_notify::SmtpConfig>,
    /// Monitoring sources that may `POST /hooks/<name>` (`cordon serve`):
    /// format, authentication, rate and body limits.
    #[serde(default)]
    pub webhooks: cordon_server::WebhooksConfig,
}

/// The plugin sandbox's part.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directories of signed components (`NAME.wasm` + `NAME.wasm.sig`) and descriptors (`*.json`).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Public key files (`ed25519:<hex>`) whose plugin signatures are accepted.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// Where compiled components are cached (default: `compiled/` in Cordon's data directory).
    pub cache_dir: Option<PathBuf>,
    /// Capabilities granted per plugin name.
    #[serde(default)]
    pub grants: BTreeMap<String, Vec<Capability>>,
    /// Limits on every plugin call.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Limits, each defaulting to the sandbox's default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Linear memory per instance, MiB (default 64).
    pub memory_mib: Option<u64>,
    /// Wall-clock time per call, milliseconds (default 30000).
    pub timeout_ms: Option<u64>,
    /// Instruction budget per call (default: none).
    pub fuel: Option<u64>,
    /// Largest output, KiB (default 1024).
    pub output_kib: Option<usize>,
}

impl Config {
    /// Reads `path` (`None`: the empty configuration).
    pub fn read(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        let mut config: Config = serde_yaml::from_str(&text)
            .with_context(|| format!("configuration {} is not valid", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let plugins = &mut config.plugins;
        for p in plugins
            .dirs
            .iter_mut()
            .chain(plugins.trusted_keys.iter_mut())
            .chain(plugins.cache_dir.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(ca) = config.smtp.as_mut().and_then(|s| s.ca_file.as_mut())
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
        Ok(config)
    }

    /// The sandbox's limits.
    pub fn limits(&self) -> cordon_plugin_host::Limits {
        let mut limits = cordon_plugin_host::Limits::default();
        let given = &self.plugins.limits;
        if let Some(mib) = given.memory_mib {
            limits.memory_bytes = mib << 20;
        }
        if let Some(ms) = given.timeout_ms {
            limits.timeout = std::time::Duration::from_millis(ms);
        }
        limits.fuel = given.fuel;
        if let Some(kib) = given.output_kib {
            limits.output_bytes = kib << 10;
        }
        limits
    }

    /// The grants.
    pub fn grants(&self) -> cordon_plugin_host::Grants {
        let mut grants = cordon_plugin_host::Grants::none();
        for (plugin, capabilities) in &self.plugins.grants {
            for capability in capabilities {
                grants = grants.grant(plugin, capability.clone());
            }
        }
        grants
    }
}
