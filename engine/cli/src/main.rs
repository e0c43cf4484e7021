//! `cordon`: incident-response playbooks for IoT and OT fleets.

mod approvals_cmd;
mod audit;
mod audit_cmd;
mod catalog;
mod cli;
mod client;
mod config;
mod database;
mod demo_cmd;
mod files;
mod graph_cmd;
#[cfg(feature = "crash-harness")]
mod harness;
mod inventory_cmd;
mod link_key;
mod node;
mod plugin_cmd;
mod plugins;
mod progress;
mod runs_cmd;
mod serve_cmd;
mod token_cmd;
mod validate_cmd;
mod versions_cmd;
mod worker_cmd;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};

/// Exit codes, stable for scripts.
pub(crate) mod exit {
    /// Everything checked out.
    pub const OK: u8 = 0;
    /// The playbook has problems (diagnostics were printed).
    pub const PROBLEMS: u8 = 1;
    /// The command was used wrongly or refused: unknown flag, unreadable file,
    /// unknown playbook or run, bad inputs (clap uses 2 too). Nothing was written.
    pub const USAGE: u8 = 2;
    /// The run waited for was cancelled.
    pub const CANCELLED: u8 = 3;
    /// The person stopped waiting (Ctrl-C); the run itself goes on.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "crash-harness")]
    if let Err(e) = harness::arm_failpoint() {
        eprintln!("error: {e:#}");
        return ExitCode::from(exit::USAGE);
    }
    // Commands write into a buffer that is written once at the end, so a
    // closed pipe (`cordon demo | head`) is an ordinary exit, not a panic.
    let mut out = Output::default();
    let result = match cli.command {
        Command::Validate(args) => validate_cmd::run(&args, &mut out),
        Command::Graph(args) => graph_cmd::run(&args, &mut out),
        Command::Schema => {
            out.stdout
                .push_str(&cordon_playbook::schema::playbook_schema_text());
            Ok(exit::OK)
        }
        Command::Explain { code } => explain(code.as_deref(), &mut out),
        Command::Demo { dir } => demo_cmd::run(&dir, &mut out),
        Command::Publish(args) => versions_cmd::publish(&args, &mut out),
        Command::Versions { name, database } => versions_cmd::versions(&name, &database, &mut out),
        Command::Show {
            reference,
            database,
        } => versions_cmd::show(&reference, &database, &mut out),
        Command::Diff { from, to, database } => versions_cmd::diff(&from, &to, &database, &mut out),
        Command::Run(args) => runs_cmd::run(&args, &mut out),
        Command::Runs(args) => runs_cmd::runs(&args, &mut out),
        Command::Cancel(args) => runs_cmd::control(&args, runs_cmd::Control::Cancel, &mut out),
        Command::Pause(args) => runs_cmd::control(&args, runs_cmd::Control::Pause, &mut out),
        Command::Resume(args) => runs_cmd::control(&args, runs_cmd::Control::Resume, &mut out),
        Command::Rerun(args) => runs_cmd::rerun(&args, &mut out),
        Command::Worker(args) => worker_cmd::run(&args),
        Command::Approvals(args) => approvals_cmd::list(&args, &mut out),
        Command::Approve(args) => {
            approvals_cmd::decide(&args, cordon_runtime::approval::Verdict::Approve, &mut out)
        }
        Command::Deny(args) => {
            approvals_cmd::decide(&args, cordon_runtime::approval::Verdict::Deny, &mut out)
        }
        Command::Plugin(command) => plugin_cmd::run(&command, &mut out),
        Command::Audit(command) => audit_cmd::run(&command, &mut out),
        Command::Inventory(command) => inventory_cmd::run(&command, &mut out),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Token(command) => token_cmd::run(&command, &mut out),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.stdout.as_bytes())
        .and_then(|()| stdout.flush());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

/// What a command prints: written once, stdout first, when it is done.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The command's result.
    pub stdout: String,
    /// Summaries and complaints meant for a person.
    pub stderr: String,
}

fn explain(code: Option<&str>, out: &mut Output) -> anyhow::Result<u8> {
    use std::fmt::Write as _;

    use cordon_playbook::codes::{Code, reference_markdown};
    match code {
        None => out.stdout.push_str(&reference_markdown()),
        Some(wanted) => {
            let code = Code::ALL
                .iter()
                .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "`{wanted}` is not a Cordon diagnostic code (see `cordon explain`)"
                    )
                })?;
            writeln!(
                out.stdout,
                "{} — {} ({})\n\n{}\n\nhelp: {}",
                code.as_str(),
                code.title(),
                code.severity(),
                code.explanation(),
                code.hint()
            )?;
        }
    }
    Ok(exit::OK)
}
