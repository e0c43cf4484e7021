//! `cordon plugin new|build|keygen|sign|inspect`: the plugin author's loop.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use cordon_plugin_host::signing::{self, Manifest, TrustedKeys};
use cordon_plugin_host::{PluginFile, Sandbox, SandboxConfig, signature_path};
use serde_json::json;

use crate::cli::PluginCommand;
use crate::{Output, exit};

pub fn run(command: &PluginCommand, out: &mut Output) -> anyhow::Result<u8> {
    match command {
        PluginCommand::New { name, dir } => new(name, dir, out),
        PluginCommand::Build { dir, plugins } => build(dir, plugins, out),
        PluginCommand::Keygen { out: path } => keygen(path, out),
        PluginCommand::Sign {
            file,
            key,
            release,
            expires_in_days,
        } => sign(file, key, *release, *expires_in_days, out),
        PluginCommand::Inspect {
            file,
            trusted_keys,
            json,
        } => inspect(file, trusted_keys, *json, out),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn new(name: &str, dir: &Path, out: &mut Output) -> anyhow::Result<u8> {
    if !cordon_plugin_host::capability::valid_connection_name(name) {
        bail!(
            "`{name}` is not a plugin name: 1 to 63 characters from a-z, 0-9 and -, starting with a letter"
        );
    }
    let workspace = std::fs::read_to_string(dir.join("Cargo.toml")).with_context(|| {
        format!(
            "{} is not the plugin workspace (no Cargo.toml)",
            dir.display()
        )
    })?;
    if !workspace.contains("\"actions/*\"") {
        bail!(
            "{}/Cargo.toml does not list \"actions/*\" among its members",
            dir.display()
        );
    }
    let crate_dir = dir.join("actions").join(name);
    if crate_dir.exists() {
        bail!("{} exists already", crate_dir.display());
    }
    std::fs::create_dir_all(crate_dir.join("src"))?;
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        template::CARGO.replace("{name}", name),
    )?;
    let title = name.replace('-', " ");
    let ty: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let source = template::LIB
        .replace("{name}", name)
        .replace("{title}", &title)
        .replace("{Type}", &ty);
    std::fs::write(crate_dir.join("src/lib.rs"), source)?;
    writeln!(
        out.stdout,
        "created {} (crate cordon-plugin-{name})",
        crate_dir.display()
    )?;
    writeln!(
        out.stdout,
        "next: edit src/lib.rs, then `cordon plugin build --dir {}`",
        dir.display()
    )?;
    Ok(exit::OK)
}

/// Builds with cargo (release, `wasm32-wasip2`), copies each component to
/// `dist/NAME.wasm` and checks it by calling its `describe`. Like
/// `plugins/build.sh` (which CI uses, and which also checks imports against
/// a reviewed list), it remaps machine-specific paths so that a component's
/// digest depends only on its sources, the lock file and the toolchain.
fn build(dir: &Path, only: &[String], out: &mut Output) -> anyhow::Result<u8> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("no plugin workspace at {}", dir.display()))?;
    let status = std::process::Command::new("rustup")
        .args(["--quiet", "target", "add", "wasm32-wasip2"])
        .current_dir(&dir)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        bail!("cannot install the wasm32-wasip2 target with rustup");
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")))
        .unwrap_or_default();
    // CARGO_ENCODED_RUSTFLAGS separates flags with 0x1f.
    let flags = format!(
        "--remap-path-prefix={}=/cargo\x1f--remap-path-prefix={}=/plugins",
        cargo_home.display(),
        dir.display()
    );
    let crates = plugin_crates(&dir)?;
    let wanted: Vec<&String> = crates
        .iter()
        .filter(|c| only.is_empty() || only.contains(c))
        .collect();
    if let Some(missing) = only.iter().find(|n| !crates.contains(n)) {
        bail!(
            "no plugin crate cordon-plugin-{missing} in {}",
            dir.display()
        );
    }
    let mut cargo = std::process::Command::new("cargo");
    cargo
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .env_remove("RUSTFLAGS");
    for name in &wanted {
        cargo.args(["--package", &format!("cordon-plugin-{name}")]);
    }
    if !cargo.status().context("cannot run cargo")?.success() {
        return Ok(exit::PROBLEMS);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("target"))
        .join("wasm32-wasip2/release");
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist)?;
    let sandbox = authoring_sandbox(TrustedKeys::default())?;
    let runtime = runtime()?;
    for name in wanted {
        let path = target.join(format!("cordon_plugin_{}.wasm", name.replace('-', "_")));
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let inspection = runtime
            .block_on(sandbox.inspect(&bytes))
            .map_err(|e| anyhow!("{name}: error[{}]: {e}", e.code()))?;
        let to = dist.join(format!("{name}.wasm"));
        std::fs::write(&to, &bytes)?;
        let d = &inspection.descriptor;
        writeln!(
            out.stdout,
            "{} {}@{} {} bytes {}",
            to.display(),
            d.name,
            d.version,
            inspection.size,
            inspection.digest
        )?;
    }
    Ok(exit::OK)
}

/// The plugins of a workspace: its `cdylib` crates named `cordon-plugin-NAME`
/// one or two folders down (as `plugins/build.sh` finds them), by NAME.
fn plugin_crates(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut manifests = Vec::new();
    for first in std::fs::read_dir(dir)? {
        let first = first?.path();
        if !first.is_dir() {
            continue;
        }
        manifests.push(first.join("Cargo.toml"));
        for second in std::fs::read_dir(&first)? {
            manifests.push(second?.path().join("Cargo.toml"));
        }
    }
    let mut names = Vec::new();
    for manifest in manifests {
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if !text
            .lines()
            .any(|l| l.trim() == r#"crate-type = ["cdylib"]"#)
        {
            continue;
        }
        let name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = \"")?.strip_suffix('"'))
            .and_then(|n| n.strip_prefix("cordon-plugin-"));
        if let Some(name) = name {
            names.push(name.to_string());
        }
    }
    names.sort();
    if names.is_empty() {
        bail!(
            "no plugin crate in {} (crates named cordon-plugin-NAME with crate-type cdylib)",
            dir.display()
        );
    }
    Ok(names)
}

fn keygen(path: &Path, out: &mut Output) -> anyhow::Result<u8> {
    let key = signing::generate_key()?;
    let public = path.with_extension("pub");
    if path.exists() || public.exists() {
        bail!(
            "{} or {} exists already; not overwriting a key",
            path.display(),
            public.display()
        );
    }
    crate::files::write_private(path, &signing::secret_key_text(&key))?;
    std::fs::write(&public, signing::public_key_text(&key.verifying_key()))?;
    writeln!(
        out.stdout,
        "secret key {} (keep it offline), public key {} (key id {})",
        path.display(),
        public.display(),
        signing::key_id(&key.verifying_key())
    )?;
    Ok(exit::OK)
}

/// A sandbox for authors' tools: no cache, no grants, no trusted key.
fn authoring_sandbox(trusted: TrustedKeys) -> anyhow::Result<Sandbox> {
    Ok(Sandbox::new(SandboxConfig {
        max_instances: 2,
        trusted_keys: trusted,
        ..SandboxConfig::default()
    })?)
}

fn sign(file: &Path, key: &Path, release: u64, days: u32, out: &mut Output) -> anyhow::Result<u8> {
    let secret =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let key = signing::parse_secret_key(&secret)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let sandbox = authoring_sandbox(TrustedKeys::default())?;
    let inspection = runtime()?
        .block_on(sandbox.inspect(&bytes))
        .map_err(|e| anyhow!("error[{}]: {e}", e.code()))?;
    let d = &inspection.descriptor;
    let manifest = Manifest {
        name: d.name.clone(),
        version: d.version.to_string(),
        release_counter: release,
        digest: inspection.digest.clone(),
        capabilities: d.capabilities.clone(),
        expires: chrono::Utc::now() + chrono::Duration::days(i64::from(days)),
    };
    let signature = signing::sign(manifest, &key);
    let path = signature_path(file);
    std::fs::write(&path, serde_json::to_string_pretty(&signature)? + "\n")?;
    writeln!(
        out.stdout,
        "signed {}@{} release {release} ({}) with key {} -> {}",
        d.name,
        d.version,
        inspection.digest,
        signature.key,
        path.display()
    )?;
    Ok(exit::OK)
}

fn inspect(
    file: &Path,
    keys: &[std::path::PathBuf],
    as_json: bool,
    out: &mut Output,
) -> anyhow::Result<u8> {
    let trusted = TrustedKeys::read(keys)?;
    let sandbox = authoring_sandbox(trusted.clone())?;
    let plugin = PluginFile::read(file, sandbox.config().max_component_bytes)
        .map_err(|e| anyhow!("error[{}]: {e}", e.code()))?;
    let inspection = runtime()?
        .block_on(sandbox.inspect(&plugin.bytes))
        .map_err(|e| anyhow!("error[{}]: {e}", e.code()))?;
    let sig_path = signature_path(file).display().to_string();
    let status = match &plugin.signature {
        None => "unsigned".to_string(),
        Some(sig) if keys.is_empty() => format!(
            "signed by key {} (not checked: no --trust key given)",
            sig.key
        ),
        Some(sig) => {
            let check = signing::Check {
                bytes: &plugin.bytes,
                signature: Some(sig),
                sig_path: &sig_path,
                pin: None,
                max_bytes: sandbox.config().max_component_bytes,
                floor: None,
                now: chrono::Utc::now(),
            };
            match signing::verify(&check, &trusted) {
                Ok(_) => format!("valid, signed by trusted key {}", sig.key),
                Err(e) => format!("INVALID: error[{}]: {e}", e.code()),
            }
        }
    };
    let d = &inspection.descriptor;
    if as_json {
        let value = json!({
            "file": file.display().to_string(),
            "digest": inspection.digest,
            "size": inspection.size,
            "descriptor": d,
            "imports": inspection.imports,
            "signature": {"status": status, "manifest": plugin.signature.as_ref().map(|s| &s.manifest)},
        });
        out.stdout
            .push_str(&(serde_json::to_string_pretty(&value)? + "\n"));
    } else {
        let o = &mut out.stdout;
        writeln!(o, "{}", file.display())?;
        writeln!(o, "  plugin       {}@{}", d.name, d.version)?;
        writeln!(o, "  description  {}", d.description)?;
        writeln!(o, "  digest       {}", inspection.digest)?;
        writeln!(o, "  size         {} bytes", inspection.size)?;
        let caps = if d.capabilities.is_empty() {
            "(none)".to_string()
        } else {
            d.capabilities.join(", ")
        };
        writeln!(o, "  capabilities {caps}")?;
        writeln!(
            o,
            "  flags        idempotent={} compensable={} irreversible={}",
            d.idempotent, d.compensable, d.irreversible
        )?;
        writeln!(o, "  imports")?;
        for import in &inspection.imports {
            writeln!(o, "    {import}")?;
        }
        writeln!(o, "  signature    {status}")?;
        if let Some(sig) = &plugin.signature {
            let m = &sig.manifest;
            writeln!(
                o,
                "  manifest     release {} expires {}",
                m.release_counter,
                m.expires.to_rfc3339()
            )?;
        }
    }
    Ok(exit::OK)
}

/// The files `cordon plugin new` writes.
mod template {
    pub const CARGO: &str = r#"[package]
name = "cordon-plugin-{name}"
description = "Cordon plugin {name}."
version = "0.1.0"
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
cordon-plugin-sdk.workspace = true
schemars.workspace = true
serde.workspace = true
serde_json.workspace = true

[lints]
workspace = true
"#;

    pub const LIB: &str = r#"//! `{name}`: describe here what it does to a device.

#![forbid(unsafe_code)]

use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, intent, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The step's input (`with:` in the playbook).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device.
    pub device: String,
}

/// The step's output (`steps.<id>.outputs`).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device acted on.
    pub device: String,
}

/// The plugin.
#[derive(Debug)]
pub struct {Type};

impl Plugin for {Type} {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "{name}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "{title}: describe what it does to a device.";
    // Declare what it uses, such as Capability::Mqtt("fleet-broker").
    const CAPABILITIES: &'static [Capability] = &[];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        // Declare each side effect before causing it: in a dry run this is the plan.
        intent::declare("device.example", &input.device, &serde_json::json!({}))?;
        log::info("acting on the device", &[("device", input.device.as_str())]);
        if !call.dry_run {
            // Act here, through the host interfaces your capabilities link.
        }
        Ok(Output { device: input.device })
    }
}

export_plugin!({Type});
"#;
}
