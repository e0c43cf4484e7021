//! `cordon graph`.

use std::fmt::Write as _;

use anyhow::Context as _;
use cordon_playbook::{Context, validate};

use crate::catalog::playbook_index;
use crate::cli::{GraphArgs, GraphFormat};
use crate::exit;

pub fn run(args: &GraphArgs, out: &mut crate::Output) -> anyhow::Result<u8> {
    let plugins = crate::plugins::load_blocking(&args.catalog)?.catalog;
    let index = playbook_index(std::slice::from_ref(&args.file));
    let ctx = Context {
        playbooks: Some(&index),
        ..Context::new(&plugins)
    };
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let validation = validate(&args.file.display().to_string(), &bytes, &ctx);
    let Some(valid) = validation.valid() else {
        for d in &validation.diagnostics {
            out.stderr.push_str(&d.render());
        }
        writeln!(
            out.stderr,
            "cannot draw {}: it does not validate",
            args.file.display()
        )?;
        return Ok(exit::PROBLEMS);
    };
    let plan = cordon_graph::compile(valid, &plugins);
    match args.format {
        GraphFormat::Mermaid => out.stdout.push_str(&cordon_graph::to_mermaid(&plan)),
        GraphFormat::Dot => out.stdout.push_str(&cordon_graph::to_dot(&plan)),
        GraphFormat::Json => writeln!(out.stdout, "{}", serde_json::to_string_pretty(&plan)?)?,
    }
    Ok(exit::OK)
}
