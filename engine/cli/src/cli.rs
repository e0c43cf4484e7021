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
    /// Start a run of a published playbook (the newest version unless `@VERSION` is given).
    ///
    /// Without --wait the run is queued for a worker (`cordon worker`, or a server) and its id printed.
    /// With --wait this command drives it itself, prints each step as it moves, and exits with the
    /// run's outcome: 0 succeeded, 1 failed, 3 cancelled.
    Run(RunArgs),
    /// List runs, newest first, or show one (`cordon runs show ID`).
    Runs(RunsArgs),
    /// Cancel a run. Completed compensable steps are undone unless the playbook says otherwise.
    Cancel(ControlArgs),
    /// Hold a run: no new step starts until it is resumed (steps in flight finish).
    Pause(ControlArgs),
    /// Release a paused run.
    Resume(ControlArgs),
    /// Start a new run of a finished run's pinned version, from one of its steps.
    ///
    /// Steps that succeeded and do not depend on `--from` are carried over with their outputs.
    Rerun(RerunArgs),
    /// Be an engine node: claim runs that can move and drive them, until SIGINT or SIGTERM.
    ///
    /// Several workers (on one machine or several) may share one PostgreSQL database: each run is
    /// leased to one node at a time, and a node that dies loses its leases after `--lease`.
    Worker(WorkerArgs),
    /// List approval requests (pending ones by default), or show one with the plan it guards.
    Approvals(ApprovalsArgs),
    /// Approve a gate's request: shows the plan it guards, then decides on exactly that plan.
    ///
    /// Exit status: 0 recorded, 2 refused (not an approver, the run's initiator, the plan changed,
    /// a comment or input missing, already decided or closed); nothing is written when refused.
    Approve(DecideArgs),
    /// Deny a gate's request (any deny rejects the gate and fails the run).
    Deny(DecideArgs),
    /// Write, build, sign and inspect plugins (signed WebAssembly components).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The tamper-evident audit log: export, verify offline, prove, query.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The asset inventory: import devices from YAML or CSV, list them (by selector), show one.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Serve the HTTP API (with its OpenAPI document at /openapi.json) and be an engine node,
    /// until SIGINT or SIGTERM.
    ///
    /// Prints `listening on http://ADDR` to stderr once it accepts requests. On a signal it stops
    /// accepting, finishes requests in flight, gives runs in hand `--grace`, and hands their leases
    /// back, so the next start (or another node) resumes every run.
    Serve(ServeArgs),
    /// API tokens in the database: create one (printed once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
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

/// `cordon serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen, `HOST:PORT` (port 0: any free port; the printed line has the real one).
    /// Default: the configuration's `server.listen`, else 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", env = "CORDON_LISTEN")]
    pub listen: Option<String>,
    /// The URL people reach this server at (for links). Default: the configuration's `server.public_url`.
    #[arg(long, value_name = "URL", env = "CORDON_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// `cordon token …`: bearer tokens for the HTTP API, straight in the database
/// (so an admin can bootstrap before any token exists).
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once, on stdout (nothing else goes there). Only its hash is stored.
    Create {
        /// The user it speaks for (a name of the server's `users:` directory).
        #[arg(long)]
        user: String,
        /// Its API role: viewer, responder, approver or admin.
        #[arg(long)]
        role: cordon_server::ApiRole,
        /// A name to recognise it by. Default: the user's name.
        #[arg(long)]
        name: Option<String>,
        /// How long it lasts (`30d`, `12h`). Default: until revoked.
        #[arg(long, value_name = "DURATION")]
        expires: Option<cordon_playbook::model::Duration>,
        /// Who creates it (recorded in the audit log). Default: $USER.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a token for good.
    Revoke {
        /// The token's id (`cordon token list`).
        id: String,
        /// Who revokes it (recorded in the audit log). Default: $USER.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `cordon approvals [ID]`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Show this request (with its plan) instead of listing.
    pub id: Option<String>,
    /// `pending` (default), `approved`, `rejected`, `expired`, `cancelled` or `all`.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only this run's requests.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `cordon approve ID` / `cordon deny ID`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The approval request (see `cordon approvals`).
    pub id: String,
    /// Why (required where the gate says so).
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub comment: Option<String>,
    /// Structured input the gate asks for, `NAME=VALUE`. Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub input: Vec<String>,
    /// The plan digest you reviewed (`cordon approvals ID`); refused if the plan changed since.
    /// Default: the plan as shown now.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Talking to a Cordon server instead of the embedded database.
#[derive(Clone, Args)]
pub struct RemoteArgs {
    /// A Cordon server's URL (`http://127.0.0.1:8080`): the command goes through its API.
    #[arg(long, value_name = "URL", env = "CORDON_SERVER")]
    pub server: Option<String>,
    /// The API token for --server (prefer the environment variable: flags show in `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CORDON_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl std::fmt::Debug for RemoteArgs {
    // The token stays out of any `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteArgs")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "[secret]"))
            .finish()
    }
}

/// `cordon inventory …`.
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Add or update devices from a YAML (`devices:` list) or CSV file (header
    /// `id,type,site,tags,criticality,firmware,cert_serial,owner,drill`; tags separated by `;`).
    /// Every problem is reported with its line; nothing is written unless the whole file is valid.
    Import {
        /// The file (`.yaml`, `.yml` or `.csv`).
        file: PathBuf,
        /// Who imports (recorded in the audit log). Default: $USER.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List devices, optionally those a selector picks (`tag=line-3,criticality>=high`).
    List {
        /// A selector, as in `inventory.select(...)`.
        #[arg(long, value_name = "SELECTOR")]
        select: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// One device's record.
    Show {
        /// The device id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `cordon audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export events and signed checkpoints as JSON Lines (signs a checkpoint first, so all is covered).
    ///
    /// The whole log, or with a filter the matching events each with an inclusion proof.
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Print the checkpoint-signing public key (signed-note format), for auditors to keep out of band.
    Pubkey,
    /// Check an export offline: every hash, the chain, the roots, the signatures, the consistency
    /// between checkpoints (or each inclusion proof). Needs no database. Exit 0 valid, 1 not.
    Verify {
        /// The export (`-` for standard input).
        file: PathBuf,
        /// The public key file (`cordon audit pubkey > audit.pub`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// An inclusion proof of one event against a signed checkpoint, as an export `verify` checks.
    Prove {
        /// The event's sequence number.
        seq: u64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List events, oldest first.
    Query {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint over the log now (nodes also sign after runs and periodically).
    Checkpoint {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Which audit events.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Only this run's events.
    #[arg(long)]
    pub run: Option<String>,
    /// Only this device's events.
    #[arg(long)]
    pub device: Option<String>,
    /// Only this actor's events (`user:alice`, `node:NAME`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events from this time on (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl AuditFilterArgs {
    /// Whether anything narrows the selection.
    pub fn is_filtered(&self) -> bool {
        self.run.is_some()
            || self.device.is_some()
            || self.actor.is_some()
            || self.since.is_some()
            || self.limit.is_some()
    }
}

/// `cordon plugin …`: the plugin author's loop.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate from a template, in the plugin workspace (`DIR/actions/NAME`).
    New {
        /// The plugin's name: `[a-z][a-z0-9-]{0,62}`.
        name: String,
        /// The plugin workspace.
        #[arg(long, default_value = "plugins", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Build plugins to `wasm32-wasip2` components in `DIR/dist` and check each one's `describe`.
    Build {
        /// The plugin workspace.
        #[arg(long, default_value = "plugins", value_name = "DIR")]
        dir: PathBuf,
        /// Only this plugin (its name, as in `cordon plugin new NAME`). Repeatable.
        #[arg(long = "plugin", short = 'p', value_name = "NAME")]
        plugins: Vec<String>,
    },
    /// Create a signing key: `PATH` (secret, mode 0600) and `PATH.pub`.
    Keygen {
        /// Where to write the secret key.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Sign a component: writes `FILE.sig`, a manifest (name, version, capabilities from the
    /// component's own `describe`, its SHA-256, the release counter, the expiry) and its signature.
    Sign {
        /// The component (`.wasm`).
        file: PathBuf,
        /// The secret key file (`ed25519-secret:<hex>`).
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// The release counter: raise it with every release; hosts refuse a lower one
        /// once they accepted a higher one.
        #[arg(long, value_name = "N")]
        release: u64,
        /// Days until the signature expires.
        #[arg(long, default_value_t = 365, value_name = "DAYS")]
        expires_in_days: u32,
    },
    /// Show what a component is: digest, size, descriptor, imports, and its signature's status.
    Inspect {
        /// The component (`.wasm`).
        file: PathBuf,
        /// A trusted public key to check the signature against. Repeatable.
        #[arg(long = "trust", value_name = "KEYFILE")]
        trusted_keys: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cordon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook, `NAME` (newest version) or `NAME@VERSION`.
    #[arg(value_name = "NAME[@VERSION]")]
    pub reference: String,
    /// An input, `NAME=VALUE`; the value is read as the input's declared type. Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Drive the run here, show its steps as they move, and exit with its outcome.
    #[arg(long)]
    pub wait: bool,
    /// Plugins record what they would do instead of doing it.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `cordon runs`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// Only runs in this state (queued, running, waiting, paused, compensating, succeeded, failed, cancelled). Repeatable.
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its steps, every attempt with its idempotency key, timings and errors.
    Show {
        /// The run id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// `cordon cancel|pause|resume ID`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The run id.
    pub id: String,
    /// Keep driving the run here afterwards (for example through its compensation) until it stops moving.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `cordon rerun ID --from STEP`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The finished run.
    pub id: String,
    /// The step to start again from; it and everything downstream of it run anew.
    #[arg(long, value_name = "STEP")]
    pub from: String,
    /// Drive the new run here and exit with its outcome.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `cordon worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// This node's name, unique among the nodes sharing a database. Default: HOSTNAME-PID.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long a run's lease lasts without renewal: the longest another node waits to take over from a dead one.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub lease: cordon_playbook::model::Duration,
    /// How often to look for runs that can move.
    #[arg(long, value_name = "DURATION", default_value = "250ms")]
    pub poll: cordon_playbook::model::Duration,
    /// How many runs this node drives at once.
    #[arg(long, default_value_t = 64)]
    pub capacity: usize,
    /// On SIGINT/SIGTERM, how long runs in hand get to reach a stopping point before their leases are handed back.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub grace: cordon_playbook::model::Duration,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// What an engine node needs: its database and its plugins.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Who acts (recorded on cancels, pauses and reruns). Default: $USER.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// Where plugins come from, and what they may do.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// A directory of signed plugin components (`NAME.wasm` + `NAME.wasm.sig`) and plugin
    /// descriptor files (`*.json`) to add to the built-in catalog. Repeatable.
    #[arg(long = "plugins", value_name = "DIR", env = "CORDON_PLUGINS")]
    pub plugin_dirs: Vec<PathBuf>,
    /// A public key (`ed25519:<hex>` file) whose plugin signatures are trusted. Repeatable.
    #[arg(long = "trust", value_name = "KEYFILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// The configuration file: plugin directories, trusted keys, grants per plugin, limits.
    #[arg(long = "config", value_name = "FILE", env = "CORDON_CONFIG")]
    pub config: Option<PathBuf>,
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
