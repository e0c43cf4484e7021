//! `cordon validate`.

use std::fmt::Write as _;

use anyhow::Context as _;
use cordon_playbook::{Context, Diagnostic, validate};

use crate::catalog::playbook_index;
use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::exit;

pub fn run(args: &ValidateArgs, out: &mut crate::Output) -> anyhow::Result<u8> {
    let plugins = crate::plugins::load_blocking(&args.catalog)?.catalog;
    let index = playbook_index(&args.files);
    let ctx = Context {
        playbooks: Some(&index),
        ..Context::new(&plugins)
    };
    let mut all: Vec<Diagnostic> = Vec::new();
    for file in &args.files {
        let (name, bytes) = if file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("cannot read standard input")?;
            ("<stdin>".to_string(), bytes)
        } else {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            (file.display().to_string(), bytes)
        };
        let validation = validate(&name, &bytes, &ctx);
        all.extend(validation.diagnostics);
    }
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    match args.format {
        DiagnosticFormat::Json => writeln!(out.stdout, "{}", serde_json::to_string_pretty(&all)?)?,
        DiagnosticFormat::Github => {
            for d in &all {
                let level = if d.is_error() { "error" } else { "warning" };
                // Workflow-command values escape `%`, CR and LF; properties also `:` and `,`.
                let data = |s: &str| {
                    s.replace('%', "%25")
                        .replace('\r', "%0D")
                        .replace('\n', "%0A")
                };
                let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
                writeln!(
                    out.stdout,
                    "::{level} file={},line={},col={},title={}::{} (help: {})",
                    prop(&d.file),
                    d.line,
                    d.col,
                    prop(&format!("{} {}", d.code, d.code.title())),
                    data(&d.message),
                    data(&d.hint)
                )?;
            }
        }
        DiagnosticFormat::Text => {
            for d in &all {
                write!(out.stdout, "{}", d.render())?;
            }
            writeln!(
                out.stderr,
                "{} file(s) checked: {errors} error(s), {warnings} warning(s)",
                args.files.len()
            )?;
        }
    }
    let failed = errors > 0 || (args.strict && warnings > 0);
    Ok(if failed { exit::PROBLEMS } else { exit::OK })
}
