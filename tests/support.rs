//! Helpers shared by the cross-crate tests: the repository's plugin catalog
//! and playbook fixtures, loaded the way the CLI loads them.

use std::path::{Path, PathBuf};

use cordon_playbook::{
    Context, PlaybookIndex, PluginCatalog, PluginDescriptor, Validation, validate,
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The catalog built from `plugins/descriptors/*.json`.
pub fn catalog() -> PluginCatalog {
    let dir = repo_root().join("plugins/descriptors");
    let descriptors = yaml_or_json_files(&dir, "json").into_iter().map(|path| {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str::<PluginDescriptor>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    PluginCatalog::new(descriptors).unwrap_or_else(|e| panic!("catalog: {e}"))
}

/// The sorted files with extension `ext` in `dir`.
pub fn yaml_or_json_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// An index of the playbooks in `dir`, for sub-playbook references.
pub fn index_of(dir: &Path) -> PlaybookIndex {
    let mut index = PlaybookIndex::default();
    for file in yaml_or_json_files(dir, "yaml") {
        if let Ok(bytes) = std::fs::read(&file) {
            index.add_source(&bytes);
        }
    }
    index
}

/// Validates a repository file, naming it by its path relative to the root
/// so snapshots do not depend on where the repository is checked out.
pub fn validate_repo_file(
    path: &Path,
    catalog: &PluginCatalog,
    index: &PlaybookIndex,
) -> Validation {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let root = repo_root();
    let name = path
        .strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string();
    let ctx = Context {
        playbooks: Some(index),
        ..Context::new(catalog)
    };
    validate(&name, &bytes, &ctx)
}

/// The codes a fixture declares on its first line: `# expect: G203, X303`.
pub fn expected_codes(source: &str) -> Option<Vec<String>> {
    let first = source.lines().next()?;
    let list = first.strip_prefix("# expect:")?;
    let mut codes: Vec<String> = list
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    codes.sort();
    Some(codes)
}
