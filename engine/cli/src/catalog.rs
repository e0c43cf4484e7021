//! Building the validator's context from files: the plugin catalog (built-in
//! descriptors plus any `--plugins DIR`) and the index of sibling playbooks.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cordon_playbook::{PlaybookIndex, PluginCatalog, PluginDescriptor};

/// The descriptors of the plugins shipped in `plugins/`, compiled in so the
/// binary validates from any directory. The plugin host will replace these
/// with the signed components' own `describe`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "check-health.json",
        include_str!("../../../plugins/descriptors/check-health.json"),
    ),
    (
        "http-request.json",
        include_str!("../../../plugins/descriptors/http-request.json"),
    ),
    (
        "isolate.json",
        include_str!("../../../plugins/descriptors/isolate.json"),
    ),
    (
        "restore-device.json",
        include_str!("../../../plugins/descriptors/restore-device.json"),
    ),
    (
        "revoke-cert.json",
        include_str!("../../../plugins/descriptors/revoke-cert.json"),
    ),
    (
        "rollback-firmware.json",
        include_str!("../../../plugins/descriptors/rollback-firmware.json"),
    ),
];

pub fn plugin_catalog(dirs: &[PathBuf]) -> anyhow::Result<PluginCatalog> {
    let mut descriptors = Vec::new();
    for (name, text) in BUILTIN {
        descriptors.push(
            serde_json::from_str::<PluginDescriptor>(text)
                .with_context(|| format!("built-in descriptor {name}"))?,
        );
    }
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read plugin directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let descriptor: PluginDescriptor = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a plugin descriptor", file.display()))?;
            descriptors.retain(|d: &PluginDescriptor| {
                !(d.name == descriptor.name && d.version == descriptor.version)
            });
            descriptors.push(descriptor);
        }
    }
    Ok(PluginCatalog::new(descriptors)?)
}

/// Every readable `*.yaml`/`*.yml` beside the given files, and the files
/// themselves, indexed by name and version for sub-playbook references.
pub fn playbook_index(files: &[PathBuf]) -> PlaybookIndex {
    let mut index = PlaybookIndex::default();
    let mut seen = std::collections::HashSet::new();
    let dirs = files.iter().map(|f| {
        f.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let siblings = dirs
        .filter_map(|d| {
            std::fs::read_dir(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &d
            })
            .ok()
        })
        .flat_map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect::<Vec<_>>()
        });
    for path in files.iter().cloned().chain(siblings) {
        if !seen.insert(path.clone()) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() <= 1024 * 1024
        {
            index.add_source(&bytes);
        }
    }
    index
}
