//! What the validator knows about the world outside the playbook: the
//! plugins it may call and the playbooks it may run as sub-playbooks.
//!
//! The validator does no IO, so the caller builds these. Today the plugin
//! catalog comes from the descriptors in `plugins/descriptors/`; the plugin
//! host will build it from the signed components' `describe`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::InputSpec;

/// What a plugin says about itself (the `describe` export of the WIT contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDescriptor {
    /// The plugin's name, as written in `uses: <name>@<major>`.
    pub name: String,
    /// The plugin's semantic version.
    pub version: semver::Version,
    /// What the plugin does.
    #[serde(default)]
    pub description: String,
    /// Capabilities the plugin needs (`mqtt:<connection>`, `http:<connection>`, `inventory:read`, `state:run`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Running it twice with the same idempotency key has the effect of running it once.
    #[serde(default)]
    pub idempotent: bool,
    /// It can undo its effect (`compensate`).
    #[serde(default)]
    pub compensable: bool,
    /// Its effect cannot be undone; the validator demands an approval gate upstream.
    #[serde(default)]
    pub irreversible: bool,
    /// JSON Schema of the `with` inputs.
    pub input_schema: Value,
    /// JSON Schema of the outputs.
    pub output_schema: Value,
}

impl PluginDescriptor {
    /// The output names the plugin declares, if its output schema lists them.
    pub fn output_names(&self) -> Option<Vec<&str>> {
        self.output_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| props.keys().map(String::as_str).collect())
    }
}

/// A descriptor with its input schema compiled once.
#[derive(Debug)]
pub(crate) struct CatalogEntry {
    pub(crate) descriptor: PluginDescriptor,
    pub(crate) inputs: jsonschema::Validator,
}

/// Why a catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A descriptor's input schema is not a valid JSON Schema.
    #[error("plugin {name}@{version}: input schema is invalid: {message}")]
    InvalidSchema {
        /// The plugin.
        name: String,
        /// Its version.
        version: semver::Version,
        /// What the schema compiler said.
        message: String,
    },
    /// Two descriptors share a name and version.
    #[error("plugin {name}@{version} is described twice")]
    Duplicate {
        /// The plugin.
        name: String,
        /// Its version.
        version: semver::Version,
    },
}

/// The plugins a playbook may use, by name and major version.
#[derive(Debug, Default)]
pub struct PluginCatalog {
    plugins: BTreeMap<String, Vec<CatalogEntry>>,
}

impl PluginCatalog {
    /// Builds a catalog, compiling every input schema.
    pub fn new(
        descriptors: impl IntoIterator<Item = PluginDescriptor>,
    ) -> Result<Self, CatalogError> {
        let mut plugins: BTreeMap<String, Vec<CatalogEntry>> = BTreeMap::new();
        for descriptor in descriptors {
            let inputs = jsonschema::validator_for(&descriptor.input_schema).map_err(|e| {
                CatalogError::InvalidSchema {
                    name: descriptor.name.clone(),
                    version: descriptor.version.clone(),
                    message: e.to_string(),
                }
            })?;
            let versions = plugins.entry(descriptor.name.clone()).or_default();
            if versions
                .iter()
                .any(|e| e.descriptor.version == descriptor.version)
            {
                return Err(CatalogError::Duplicate {
                    name: descriptor.name,
                    version: descriptor.version,
                });
            }
            versions.push(CatalogEntry { descriptor, inputs });
            versions.sort_by(|a, b| b.descriptor.version.cmp(&a.descriptor.version));
        }
        Ok(PluginCatalog { plugins })
    }

    /// The newest descriptor of `name` with major version `major`.
    pub fn get(&self, name: &str, major: u64) -> Option<&PluginDescriptor> {
        self.entry(name, major).map(|e| &e.descriptor)
    }

    pub(crate) fn entry(&self, name: &str, major: u64) -> Option<&CatalogEntry> {
        self.plugins
            .get(name)?
            .iter()
            .find(|e| e.descriptor.version.major == major)
    }

    /// All versions known for `name`, newest first.
    pub fn versions(&self, name: &str) -> Vec<&semver::Version> {
        self.plugins
            .get(name)
            .map(|v| v.iter().map(|e| &e.descriptor.version).collect())
            .unwrap_or_default()
    }

    /// Every plugin name.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.plugins.keys().map(String::as_str)
    }

    /// Every descriptor, by name then newest version first.
    pub fn descriptors(&self) -> impl Iterator<Item = &PluginDescriptor> {
        self.plugins.values().flatten().map(|e| &e.descriptor)
    }
}

/// The playbooks a playbook may run as sub-playbooks, with their inputs.
#[derive(Debug, Default, Clone)]
pub struct PlaybookIndex {
    playbooks: HashMap<String, BTreeMap<semver::Version, BTreeMap<String, InputSpec>>>,
}

impl PlaybookIndex {
    /// Records one version of a playbook and its declared inputs.
    pub fn insert(
        &mut self,
        name: &str,
        version: semver::Version,
        inputs: BTreeMap<String, InputSpec>,
    ) {
        self.playbooks
            .entry(name.to_string())
            .or_default()
            .insert(version, inputs);
    }

    /// The inputs of `name@version`, if known.
    pub fn inputs(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Option<&BTreeMap<String, InputSpec>> {
        self.playbooks.get(name)?.get(version)
    }

    /// Whether any version of `name` is known.
    pub fn has(&self, name: &str) -> bool {
        self.playbooks.contains_key(name)
    }

    /// Known versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Vec<&semver::Version> {
        self.playbooks
            .get(name)
            .map(|v| v.keys().collect())
            .unwrap_or_default()
    }

    /// Every known name.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.playbooks.keys().map(String::as_str)
    }
}

impl PlaybookIndex {
    /// Adds the playbook in `source` if it can be read far enough to know its
    /// name, version and inputs (a broken file is skipped: validating it
    /// reports its problems).
    pub fn add_source(&mut self, source: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(source) else {
            return false;
        };
        let outcome = crate::yaml::read_document(text, crate::yaml::ReadLimits::default());
        let Some(root) = outcome.root else {
            return false;
        };
        let json = root.to_json();
        let name = json.get("name").and_then(Value::as_str);
        let version = json
            .get("version")
            .and_then(Value::as_str)
            .and_then(|v| semver::Version::parse(v).ok());
        let (Some(name), Some(version)) = (name, version) else {
            return false;
        };
        let inputs = json
            .get("inputs")
            .and_then(|i| serde_json::from_value::<BTreeMap<String, InputSpec>>(i.clone()).ok())
            .unwrap_or_default();
        self.insert(name, version, inputs);
        true
    }
}
