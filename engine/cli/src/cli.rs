//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cordon runs incident-response playbooks for IoT and OT fleets: isolate a
/// compromised device, revoke its certificate after approval, roll firmware
/// back in waves, restore it, and prove what was done.
#[derive(Debug, Parser)]
#[command(name = "cordon", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks before anything runs: YAML, schema, graph, expressions, plugins and safety rules.
    ///
    /// Prints one line per problem, `FILE:LINE:COL: error[CODE]: message`, with a `help:` hint.
    /// Exit status: 0 no errors, 1 errors found (or warnings with --strict), 2 usage error.
    Validate(ValidateArgs),
    /// Draw a playbook's execution graph. Approval gates and irreversible steps stand out.
    Graph(GraphArgs),
    /// Print the playbook JSON Schema (for editors and CI).
    Schema,
    /// Run Cordon's main job on the embedded defaults: validate and draw every example playbook.
    Demo {
        /// The folder of playbooks to use.
        #[arg(long, default_value = "playbooks")]
        dir: PathBuf,
    },
    /// Explain a diagnostic code, or list them all (`cordon explain G203`).
    Explain {
        /// A code such as `G203`; without one, the whole reference is printed as Markdown.
        code: Option<String>,
    },
}

/// Where plugin descriptors come from.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// A directory of plugin descriptor files (`*.json`) to add to the built-in catalog. Repeatable.
    #[arg(long = "plugins", value_name = "DIR", env = "CORDON_PLUGINS")]
    pub plugin_dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbook files to check; `-` reads one playbook from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
    /// Treat warnings as errors (exit 1 when any is found).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// `FILE:LINE:COL: error[CODE]: message` lines with `help:` hints.
    Text,
    /// One JSON array of `{code, severity, message, file, line, col, hint}`.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…`), shown as annotations on pull requests.
    Github,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The playbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders on GitHub and in most wikis).
    Mermaid,
    /// Graphviz DOT (`cordon graph f.yaml --format dot | dot -Tsvg`).
    Dot,
    /// The compiled execution plan as JSON.
    Json,
}
