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
    /// Validate a playbook and store it as an immutable version (name, semver, SHA-256 of its content).
    ///
    /// Publishing the same name and version again with the same content changes nothing;
    /// with different content it is refused (exit 1): publish a new version instead.
    Publish(PublishArgs),
    /// List the published versions of a playbook, oldest first.
    Versions {
        /// The playbook's name.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print a published version exactly as it was published, with its digest and plugin pins.
    Show {
        /// `NAME@VERSION`, or `NAME` for the newest version.
        reference: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Show what changed between two published versions, step by step.
    Diff {
        /// The older version, `NAME@VERSION`.
        from: String,
        /// The newer version, `NAME@VERSION` (or just `VERSION` for the same playbook).
        to: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
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

/// Where Cordon keeps its state.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH?mode=rwc` or `postgres://USER@HOST/DB`.
    /// Default: `cordon.db` in Cordon's data directory ($CORDON_HOME, else e.g. ~/.local/share/cordon).
    #[arg(long = "database", value_name = "URL", env = "CORDON_DATABASE")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The playbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Who publishes (recorded with the version). Default: $USER.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
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
