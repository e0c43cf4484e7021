//! `cordon-plugin-inspect FILE.wasm...`: prints what each plugin component
//! imports and exports, one line per item with the functions it uses, and
//! checks the component against the contract in `plugins/wit`:
//!
//! - it is a valid component;
//! - it exports exactly `cordon:plugin/action@0.1.0`, with `describe`,
//!   `execute` and `compensate`;
//! - every import is a known interface of `cordon:plugin@0.1.0` or a WASI
//!   interface (`wasi:*`).
//!
//! Exits 1 if any component breaks a rule. The listing is what the host's
//! linker will see: the host denies a plugin any import that its declared
//! and granted capabilities do not cover, so the lines here show which
//! capabilities a component actually needs. `build.sh` compares them with
//! `expected-imports.txt`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use wasmparser::component_types::{ComponentEntityType, ComponentInstanceTypeId};
use wasmparser::types::Types;
use wasmparser::{Parser, Payload, Validator};

/// The contract's package prefix and version.
const PACKAGE: &str = "cordon:plugin/";
const VERSION: &str = "@0.1.0";
/// The interfaces a plugin may import (see `plugins/wit/world.wit`).
const IMPORTABLE: &[&str] = &[
    "types",
    "log",
    "intent",
    "mqtt",
    "http",
    "inventory",
    "scratch",
];
/// The one interface a plugin exports, and its functions.
const EXPORT: &str = "cordon:plugin/action@0.1.0";
const EXPORT_FUNCTIONS: &[&str] = &["compensate", "describe", "execute"];

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() || paths.iter().any(|arg| arg.starts_with('-')) {
        eprintln!("usage: cordon-plugin-inspect FILE.wasm...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for path in &paths {
        let file = Path::new(path)
            .file_name()
            .map_or(path.clone(), |name| name.to_string_lossy().into_owned());
        match std::fs::read(path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| inspect(&bytes))
        {
            Ok(report) => {
                for line in &report.lines {
                    println!("{file}: {line}");
                }
                for problem in &report.problems {
                    eprintln!("{file}: ERROR: {problem}");
                }
                failed |= !report.problems.is_empty();
            }
            Err(error) => {
                eprintln!("{file}: ERROR: {error}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What one component imports and exports, and what is wrong with it.
#[derive(Debug, Default)]
struct Report {
    /// `import NAME: f, g` / `export NAME: f, g`, imports first.
    lines: Vec<String>,
    /// Broken rules.
    problems: Vec<String>,
}

fn inspect(bytes: &[u8]) -> Result<Report, String> {
    let types = Validator::new()
        .validate_all(bytes)
        .map_err(|error| format!("not a valid component: {error}"))?;
    let (imports, exports) = top_level_names(bytes)?;
    let mut report = Report::default();

    for name in &imports {
        let functions = instance_functions(&types, name, Direction::Import)?;
        report
            .lines
            .push(format!("import {name}: {}", listing(&functions)));
        let allowed = name.starts_with("wasi:")
            || name
                .strip_prefix(PACKAGE)
                .and_then(|rest| rest.strip_suffix(VERSION))
                .is_some_and(|interface| IMPORTABLE.contains(&interface));
        if !allowed {
            report.problems.push(format!(
                "imports {name}, which is neither cordon:plugin{VERSION} nor WASI"
            ));
        }
    }

    match exports.as_slice() {
        [name] if name == EXPORT => {
            let functions = instance_functions(&types, name, Direction::Export)?;
            report
                .lines
                .push(format!("export {name}: {}", listing(&functions)));
            if functions != EXPORT_FUNCTIONS {
                report.problems.push(format!(
                    "{EXPORT} exports {functions:?}, not {EXPORT_FUNCTIONS:?}"
                ));
            }
        }
        _ => report
            .problems
            .push(format!("exports {exports:?}, not exactly [{EXPORT:?}]")),
    }
    Ok(report)
}

/// The names in the outermost component's import and export sections.
/// Nested modules and components are skipped: their imports are satisfied
/// inside the component and never reach the host's linker.
fn top_level_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|error| error.to_string())? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(
                        import
                            .map_err(|error| error.to_string())?
                            .name
                            .name
                            .to_owned(),
                    );
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(
                        export
                            .map_err(|error| error.to_string())?
                            .name
                            .name
                            .to_owned(),
                    );
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Import,
    Export,
}

/// The sorted names of the functions in the instance imported or exported
/// as `name`.
fn instance_functions(
    types: &Types,
    name: &str,
    direction: Direction,
) -> Result<Vec<String>, String> {
    let types = types.as_ref();
    let item = match direction {
        Direction::Import => types.component_item_for_import(name),
        Direction::Export => types.component_item_for_export(name),
    }
    .ok_or_else(|| format!("no type for {name}"))?;
    let ComponentEntityType::Instance(id) = item.ty else {
        return Err(format!("{name} is not an instance"));
    };
    let id: ComponentInstanceTypeId = id;
    let mut functions: Vec<String> = types[id]
        .exports
        .iter()
        .filter(|(_, item)| matches!(item.ty, ComponentEntityType::Func(_)))
        .map(|(name, _)| name.clone())
        .collect();
    functions.sort();
    Ok(functions)
}

fn listing(functions: &[String]) -> String {
    if functions.is_empty() {
        "(types only)".to_owned()
    } else {
        functions.join(", ")
    }
}
