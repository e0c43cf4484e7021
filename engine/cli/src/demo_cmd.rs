//! `cordon demo`: Cordon's main job on the embedded defaults. For now it
//! validates every example playbook and draws its execution graph; later
//! stages add publishing, a run against the reference fleet, approvals and
//! the audit proof.

use std::path::PathBuf;

use std::fmt::Write as _;

use anyhow::Context as _;
use cordon_playbook::{Context, validate};

use crate::catalog::playbook_index;
use crate::exit;

pub fn run(dir: &std::path::Path, out: &mut crate::Output) -> anyhow::Result<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot read {} (run the demo from the repository root, or pass --dir)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let plugins = cordon_playbook::PluginCatalog::new(crate::catalog::builtin_descriptors()?)?;
    let index = playbook_index(&files);
    let ctx = Context {
        playbooks: Some(&index),
        ..Context::new(&plugins)
    };
    writeln!(
        out.stdout,
        "Cordon demo: validating and compiling {} playbook(s) from {}\n",
        files.len(),
        dir.display()
    )?;
    let mut failed = 0;
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let validation = validate(&file.display().to_string(), &bytes, &ctx);
        for d in &validation.diagnostics {
            write!(out.stdout, "{}", d.render())?;
        }
        let Some(valid) = validation.valid() else {
            failed += 1;
            continue;
        };
        let plan = cordon_graph::compile(valid, &plugins);
        let irreversible = plan.nodes().iter().filter(|n| n.irreversible).count();
        writeln!(
            out.stdout,
            "## {}@{} ({})\n{} step(s) in {} stage(s), {} approval gate(s), {} irreversible step(s), {} failure handler(s)\n",
            plan.playbook(),
            plan.version(),
            file.display(),
            plan.nodes().len(),
            plan.stages().len(),
            plan.gates().len(),
            irreversible,
            plan.handlers().len()
        )?;
        writeln!(
            out.stdout,
            "```mermaid\n{}```\n",
            cordon_graph::to_mermaid(&plan)
        )?;
    }
    if failed > 0 {
        writeln!(out.stderr, "{failed} playbook(s) failed validation")?;
        return Ok(exit::PROBLEMS);
    }
    writeln!(out.stdout, "All {} playbook(s) valid.", files.len())?;
    Ok(exit::OK)
}
