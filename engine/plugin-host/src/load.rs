//! Loading a plugin: verify, compile (or load from the cache), check its
//! imports against its grants, ask it to describe itself, pre-link it.
//! Nothing of the component runs before its imports have been checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use cordon_playbook::PluginDescriptor;
use cordon_runtime::executor::BoxFuture;
use wasmtime::Store;
use wasmtime::component::Component;

use crate::bindings::PluginPre;
use crate::cache::CacheOutcome;
use crate::capability::{Capability, Effective};
use crate::descriptor;
use crate::error::LoadError;
use crate::host::{HostState, Services};
use crate::sandbox::Sandbox;
use crate::signing::{self, Manifest, SignatureFile};

/// A component file and its detached signature, read from disk.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// Where the component is.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its signature (`<path>.sig`), if there is one.
    pub signature: Option<SignatureFile>,
}

impl PluginFile {
    /// Reads `path` and `<path>.sig`. A signature file that is not a
    /// signature is `bad_signature`; a component over `max_bytes` is refused
    /// before it is read whole.
    pub fn read(path: &Path, max_bytes: u64) -> Result<PluginFile, LoadError> {
        let io = |e: std::io::Error| LoadError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > max_bytes {
            return Err(LoadError::TooLarge {
                bytes: size,
                limit: max_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let sig_path = signature_path(path);
        let signature = match std::fs::read_to_string(&sig_path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| LoadError::BadSignature(format!("{}: {e}", sig_path.display())))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        Ok(PluginFile {
            path: path.to_path_buf(),
            bytes,
            signature,
        })
    }
}

/// Where a component's detached signature lives.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// The highest release counter accepted per plugin name, kept where plugins
/// cannot write (the database).
pub trait ReleaseFloors: Send + Sync + std::fmt::Debug {
    /// The floor of `name`, if any release was accepted.
    fn floor(&self, name: String) -> BoxFuture<Result<Option<u64>, String>>;
    /// Raises the floor of `name` to `counter` (never lowers it).
    fn raise(&self, name: String, counter: u64, digest: String) -> BoxFuture<Result<(), String>>;
}

/// A verified, compiled, described and pre-linked plugin.
pub struct LoadedPlugin {
    /// The verified signed manifest.
    pub manifest: Manifest,
    /// What the component says it is (the validator's catalog entry).
    pub descriptor: PluginDescriptor,
    /// Declared ∩ granted.
    pub grants: Effective,
    /// Where the compiled code came from.
    pub cache: CacheOutcome,
    pub(crate) pre: PluginPre<HostState>,
    pub(crate) input: jsonschema::Validator,
    pub(crate) output: jsonschema::Validator,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("manifest", &self.manifest)
            .field("grants", &self.grants)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The component's digest, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }
}

/// Interfaces every plugin may import: the WASI baseline of Rust's standard
/// library (streams, stdio, environment, exit, clocks, randomness; the WASI
/// context gives them nothing to reach) and the capability-free parts of
/// the contract.
const ALWAYS_ALLOWED: &[&str] = &[
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "cordon:plugin/types@",
    "cordon:plugin/log@",
    "cordon:plugin/intent@",
];

/// The imports a component is not allowed, each with why.
fn refused_imports(
    component: &Component,
    sandbox: &Sandbox,
    declared: &[Capability],
    grants: &Effective,
) -> Vec<String> {
    let ty = component.component_type();
    let granted: BTreeSet<&str> = grants.interfaces().into_iter().map(|i| i.name()).collect();
    let declared: BTreeSet<&str> = declared.iter().map(|c| c.interface().name()).collect();
    let mut refused = Vec::new();
    for (name, _) in ty.imports(&sandbox.engine) {
        if ALWAYS_ALLOWED.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let interface = name
            .strip_prefix("cordon:plugin/")
            .and_then(|rest| rest.split('@').next());
        let why = match interface {
            Some(i) if granted.contains(i) => continue,
            Some(i) if declared.contains(i) => "declared but not granted by the operator",
            Some(_) => "not declared by the plugin",
            None if name.starts_with("wasi:filesystem/") => "no plugin may use the filesystem",
            None if name.starts_with("wasi:sockets/") => {
                "no plugin may open sockets; use a named connection"
            }
            None => "not part of the plugin contract",
        };
        refused.push(format!("{name} ({why})"));
    }
    refused
}

impl Sandbox {
    /// Loads a plugin: verifies it (size, digest, `pin`, signature, release
    /// floor, expiry), compiles it or loads it from the cache, refuses it if
    /// it imports anything its effective grants do not link, then calls
    /// `describe` (with every Cordon import trapping) and checks that the
    /// descriptor is valid and matches the signed manifest. Raises the
    /// release floor only once everything passed.
    pub async fn load(
        &self,
        file: &PluginFile,
        pin: Option<&str>,
        floors: &dyn ReleaseFloors,
    ) -> Result<LoadedPlugin, LoadError> {
        let sig_path = signature_path(&file.path).display().to_string();
        let floor = match &file.signature {
            Some(sig) => {
                floors
                    .floor(sig.manifest.name.clone())
                    .await
                    .map_err(|e| LoadError::Io {
                        path: "release floors".into(),
                        message: e,
                    })?
            }
            None => None,
        };
        let check = signing::Check {
            bytes: &file.bytes,
            signature: file.signature.as_ref(),
            sig_path: &sig_path,
            pin,
            max_bytes: self.config.max_component_bytes,
            floor,
            now: Utc::now(),
        };
        let manifest = signing::verify(&check, &self.config.trusted_keys)?;
        let declared: Vec<Capability> = manifest
            .capabilities
            .iter()
            .map(|c| c.parse::<Capability>())
            .collect::<Result<_, _>>()
            .map_err(|e| LoadError::ManifestMismatch(e.to_string()))?;
        let grants = Effective::new(&declared, &self.config.grants.of(&manifest.name));
        let digest_hex = manifest.digest.trim_start_matches("sha256:").to_string();
        let (component, cache) = self
            .cache
            .component(&self.engine, &digest_hex, &file.bytes)?;
        let refused = refused_imports(&component, self, &declared, &grants);
        if !refused.is_empty() {
            return Err(LoadError::Denied(refused));
        }
        let (descriptor, capabilities) = self.describe(&component).await?;
        let mut signed: Vec<String> = manifest.capabilities.clone();
        let mut described: Vec<String> = capabilities.iter().map(ToString::to_string).collect();
        signed.sort();
        described.sort();
        if descriptor.name != manifest.name
            || descriptor.version.to_string() != manifest.version
            || signed != described
        {
            return Err(LoadError::ManifestMismatch(format!(
                "signed {}@{} {:?}, component says {}@{} {:?}",
                manifest.name,
                manifest.version,
                signed,
                descriptor.name,
                descriptor.version,
                described
            )));
        }
        let linker = self
            .linker(&grants)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| LoadError::Denied(vec![format!("{e:#}")]))?;
        let compile_schema = |schema| {
            jsonschema::validator_for(schema).map_err(|e| LoadError::Describe(e.to_string()))
        };
        let input = compile_schema(&descriptor.input_schema)?;
        let output = compile_schema(&descriptor.output_schema)?;
        floors
            .raise(
                manifest.name.clone(),
                manifest.release_counter,
                manifest.digest.clone(),
            )
            .await
            .map_err(|e| LoadError::Io {
                path: "release floors".into(),
                message: e,
            })?;
        Ok(LoadedPlugin {
            manifest,
            descriptor,
            grants,
            cache,
            pre,
            input,
            output,
        })
    }

    /// Calls `describe` in a fresh instance whose Cordon imports all trap.
    pub(crate) async fn describe(
        &self,
        component: &Component,
    ) -> Result<(PluginDescriptor, Vec<Capability>), LoadError> {
        let describe_error = |e: wasmtime::Error| LoadError::Describe(format!("{e:#}"));
        let linker = self.describe_linker(component).map_err(describe_error)?;
        let pre = linker
            .instantiate_pre(component)
            .and_then(PluginPre::new)
            .map_err(describe_error)?;
        let context = crate::host::AttemptContext {
            plugin: "(describe)".into(),
            run: String::new(),
            dry_run: true,
            deadline: Instant::now()
                + self
                    .config
                    .limits
                    .timeout
                    .min(std::time::Duration::from_secs(10)),
            grants: Effective::none(),
            services: Services::default(),
            limits: self.config.limits.clone(),
        };
        let mut store: Store<HostState> = self.store(context);
        let work = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .cordon_plugin_action()
                .call_describe(&mut store)
                .await
        };
        let limit = self.config.limits.timeout;
        let raw = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| LoadError::Describe(format!("describe did not return within {limit:?}")))?
            .map_err(describe_error)?;
        descriptor::check(raw).map_err(LoadError::Describe)
    }
}

/// Release floors kept in memory (tests, and single-shot tools).
#[derive(Debug, Default)]
pub struct MemoryFloors(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl ReleaseFloors for MemoryFloors {
    fn floor(&self, name: String) -> BoxFuture<Result<Option<u64>, String>> {
        let floor = self
            .0
            .lock()
            .map(|m| m.get(&name).copied())
            .map_err(|e| e.to_string());
        Box::pin(async move { floor })
    }

    fn raise(&self, name: String, counter: u64, _digest: String) -> BoxFuture<Result<(), String>> {
        let result = self
            .0
            .lock()
            .map(|mut m| {
                let floor = m.entry(name).or_insert(counter);
                *floor = (*floor).max(counter);
            })
            .map_err(|e| e.to_string());
        Box::pin(async move { result })
    }
}
