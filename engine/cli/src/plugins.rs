//! Signed plugin components on this node: found in the plugin directories,
//! verified and loaded into the sandbox, and turned into the validator's
//! catalog and the engine's executor. The host's state (release floors,
//! scratch entries, the inventory) lives in the database.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cordon_playbook::{PluginCatalog, PluginDescriptor};
use cordon_plugin_host::signing::TrustedKeys;
use cordon_plugin_host::{
    AuditSink, ConnectionHub, ConnectionsConfig, DeviceDirectory, MemoryFloors, Outcome,
    PluginExecutor, PluginFile, ReleaseFloors, Sandbox, SandboxConfig, ScratchStore, Services,
};
use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
use cordon_runtime::inventory::StoredInventory;
use cordon_storage::{NewEvent, Store};
use serde_json::{Value, json};

use crate::catalog::builtin_descriptors;
use crate::cli::CatalogArgs;
use crate::config::Config;

/// The plugins of this node.
pub struct Plugins {
    /// Descriptors: the built-in ones, `*.json` in the plugin directories,
    /// and, overriding those, the loaded components' own `describe`.
    pub catalog: PluginCatalog,
    /// Runs plugin steps (`None`: no component loaded).
    pub executor: Option<PluginExecutor>,
    /// `(name, major)` → (version, digest) of the component a publish pins.
    pub components: BTreeMap<(String, u64), (String, String)>,
}

/// Every `*.wasm` and `*.json` in the directories, sorted.
fn files(dirs: &[PathBuf], extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read plugin directory {}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        files.sort();
        found.extend(files);
    }
    Ok(found)
}

/// Where compiled components are cached by default.
fn default_cache_dir() -> Option<PathBuf> {
    crate::files::data_dir().map(|d| d.join("compiled"))
}

/// Loads the plugins `args` and the configuration name. With a store, the
/// release floors, scratch state and inventory are the database's;
/// without one (validation), floors are kept in memory and nothing is raised
/// for good.
pub async fn load(args: &CatalogArgs, store: Option<&Store>) -> anyhow::Result<Plugins> {
    let config = Config::read(args.config.as_deref())?;
    let dirs: Vec<PathBuf> = args
        .plugin_dirs
        .iter()
        .chain(&config.plugins.dirs)
        .cloned()
        .collect();
    let mut descriptors = builtin_descriptors()?;
    for file in files(&dirs, "json")? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let descriptor: PluginDescriptor = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a plugin descriptor", file.display()))?;
        replace(&mut descriptors, descriptor);
    }
    let mut components = BTreeMap::new();
    let wasm = files(&dirs, "wasm")?;
    let executor = if wasm.is_empty() {
        None
    } else {
        let keys: Vec<PathBuf> = args
            .trusted_keys
            .iter()
            .chain(&config.plugins.trusted_keys)
            .cloned()
            .collect();
        let sandbox = Sandbox::new(SandboxConfig {
            limits: config.limits(),
            cache_dir: config.plugins.cache_dir.clone().or_else(default_cache_dir),
            trusted_keys: TrustedKeys::read(&keys)?,
            grants: config.grants(),
            ..SandboxConfig::default()
        })?;
        let floors: Box<dyn ReleaseFloors> = match store {
            Some(store) => Box::new(StoreFloors(store.clone())),
            None => Box::new(MemoryFloors::default()),
        };
        let mut loaded = Vec::new();
        for path in wasm {
            let file = match PluginFile::read(&path, sandbox.config().max_component_bytes) {
                Ok(file) => file,
                Err(e) => {
                    eprintln!(
                        "warning: plugin {} refused: error[{}]: {e}",
                        path.display(),
                        e.code()
                    );
                    continue;
                }
            };
            match sandbox.load(&file, None, floors.as_ref()).await {
                Ok(plugin) => {
                    let d = &plugin.descriptor;
                    components.insert(
                        (d.name.clone(), d.version.major),
                        (d.version.to_string(), plugin.digest().to_string()),
                    );
                    replace(&mut descriptors, d.clone());
                    loaded.push(Arc::new(plugin));
                }
                Err(e) => eprintln!(
                    "warning: plugin {} refused: error[{}]: {e}",
                    path.display(),
                    e.code()
                ),
            }
        }
        let services = match store {
            Some(store) => Services {
                inventory: Some(Arc::new(StoreDirectory(store.clone()))),
                scratch: Some(Arc::new(StoreScratch(store.clone()))),
                connections: connections(&config)?,
            },
            None => Services::default(),
        };
        let executor = PluginExecutor::new(Arc::new(sandbox), loaded, services);
        Some(match store {
            Some(store) => executor.with_audit(Arc::new(StoreAudit(store.clone()))),
            None => executor,
        })
    };
    Ok(Plugins {
        catalog: PluginCatalog::new(descriptors)?,
        executor,
        components,
    })
}

/// The named connections of the configuration, if it has any.
fn connections(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn cordon_plugin_host::Connections>>> {
    if config.connections.is_empty() {
        return Ok(None);
    }
    let hub = ConnectionHub::new(&ConnectionsConfig {
        connections: config.connections.clone(),
    })?;
    Ok(Some(Arc::new(hub)))
}

/// [`load`] for commands that are not otherwise async.
pub fn load_blocking(args: &CatalogArgs) -> anyhow::Result<Plugins> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(load(args, None))
}

impl Plugins {
    /// The executor for an engine node.
    pub fn executor(&self) -> Option<Arc<dyn Executor>> {
        self.executor
            .clone()
            .map(|e| Arc::new(e) as Arc<dyn Executor>)
    }
}

/// Adds a descriptor, replacing one with the same name and version.
fn replace(descriptors: &mut Vec<PluginDescriptor>, descriptor: PluginDescriptor) {
    descriptors.retain(|d| !(d.name == descriptor.name && d.version == descriptor.version));
    descriptors.push(descriptor);
}

/// Plugin outcomes into the audit log: what the call declared and logged,
/// and any denial, as one event per call.
#[derive(Debug)]
struct StoreAudit(Store);

impl AuditSink for StoreAudit {
    fn record(
        &self,
        plugin: &str,
        call: &StepCall,
        outcome: &Outcome,
    ) -> BoxFuture<Result<(), String>> {
        let store = self.0.clone();
        let record = &outcome.record;
        let event = NewEvent {
            actor: format!("plugin:{plugin}"),
            kind: "plugin.outcome".into(),
            run: Some(call.run.clone()),
            step: Some(call.step.clone()),
            device: call
                .inputs
                .get("device")
                .and_then(Value::as_str)
                .map(str::to_string),
            data: json!({
                "idempotency_key": call.key.as_str(),
                "ok": outcome.result.is_ok(),
                "error": outcome.result.as_ref().err(),
                "intents": record.intents,
                "logs": record.logs,
                "logs_dropped": record.logs_dropped,
                "denied": record.denied,
                "stderr": record.stderr,
                "elapsed_ms": outcome.elapsed.as_secs_f64() * 1e3,
            }),
        };
        let secrets = call.secrets.clone();
        Box::pin(async move {
            store
                .append_events(&[event], &secrets, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[derive(Debug)]
struct StoreFloors(Store);

impl ReleaseFloors for StoreFloors {
    fn floor(&self, name: String) -> BoxFuture<Result<Option<u64>, String>> {
        let store = self.0.clone();
        Box::pin(async move { store.release_floor(&name).await.map_err(|e| e.to_string()) })
    }

    fn raise(&self, name: String, counter: u64, digest: String) -> BoxFuture<Result<(), String>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .raise_release_floor(&name, counter, &digest, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[derive(Debug)]
struct StoreScratch(Store);

impl ScratchStore for StoreScratch {
    fn get(
        &self,
        run: String,
        plugin: String,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, String>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .scratch_get(&run, &plugin, &key)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn set(
        &self,
        run: String,
        plugin: String,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<Result<(), String>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .scratch_set(&run, &plugin, &key, &value, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn delete(&self, run: String, plugin: String, key: String) -> BoxFuture<Result<(), String>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .scratch_delete(&run, &plugin, &key)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The inventory as plugins read it: records without anything secret.
#[derive(Debug)]
struct StoreDirectory(Store);

impl DeviceDirectory for StoreDirectory {
    fn get(&self, id: String) -> BoxFuture<Result<Option<Value>, String>> {
        let store = self.0.clone();
        Box::pin(async move {
            let device = store.device(&id).await.map_err(|e| e.to_string())?;
            Ok(device.as_ref().map(crate::inventory_cmd::device_json))
        })
    }

    fn select(&self, selector: String) -> BoxFuture<Result<Result<Vec<String>, String>, String>> {
        let store = self.0.clone();
        Box::pin(async move {
            let devices = store.devices().await.map_err(|e| e.to_string())?;
            Ok(StoredInventory::new(devices).ids(&selector))
        })
    }
}
