//! Building the validator's context from files: the built-in plugin
//! descriptors (see `plugins.rs` for the whole catalog) and the index of
//! sibling playbooks.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cordon_playbook::{PlaybookIndex, PluginDescriptor};

/// The descriptors of the plugins shipped in `plugins/`, compiled in so the
/// binary validates from any directory. Each file is exactly what its
/// component's `describe` returns (a test of `cli_plugins` checks it), and a
/// loaded signed component's own `describe` replaces the entry of the same
/// name and version.
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
    (
        "wait-for.json",
        include_str!("../../../plugins/descriptors/wait-for.json"),
    ),
];

/// The built-in descriptors (until the shipped plugins are signed
/// components, a loaded component with the same name and version replaces its entry).
pub fn builtin_descriptors() -> anyhow::Result<Vec<PluginDescriptor>> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            serde_json::from_str::<PluginDescriptor>(text)
                .with_context(|| format!("built-in descriptor {name}"))
        })
        .collect()
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
