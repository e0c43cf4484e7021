//! An engine node inside the command line: the store, the plugin catalog,
//! the executor, and who acts.

use std::sync::Arc;
use std::time::Duration;

use cordon_notify::{Mailer, NotifyingExecutor, Recipients};
use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::executor::{Action, BoxFuture, Executor, StepCall};
use cordon_runtime::{Engine, SystemClock};
use cordon_storage::Store;
use serde_json::Value;

use crate::cli::{CatalogArgs, NodeArgs};
use crate::config::Config;
use crate::database::database_url;

/// An engine node and the store it drives runs in.
pub struct Node {
    /// The engine.
    pub engine: Engine,
    /// Its store (for reading runs back).
    pub store: Store,
    /// Who acts through this command.
    pub actor: String,
    /// The node's name (lease holder).
    pub name: String,
    /// The plugin descriptors and loaded components (what publishing pins).
    pub catalog: cordon_server::Catalog,
}

impl Node {
    /// Opens the database and builds the engine for node `name`.
    pub async fn open(args: &NodeArgs, name: String, lease: Duration) -> anyhow::Result<Node> {
        let url = database_url(&args.database)?;
        let store = Store::open(&url).await?;
        let plugins = crate::plugins::load(&args.catalog, Some(&store)).await?;
        let executor = executor(plugins.executor(), mailer(&args.catalog)?);
        let catalog = cordon_server::Catalog {
            plugins: Arc::new(plugins.catalog),
            components: plugins.components,
        };
        let engine = Engine::new(
            store.clone(),
            Arc::new(SystemClock),
            executor,
            catalog.plugins.clone(),
            name.clone(),
            lease,
        );
        Ok(Node {
            engine,
            store,
            actor: actor(args.by.as_deref()),
            name,
            catalog,
        })
    }
}

/// Who acts: `--by`, else `$USER`.
pub fn actor(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// A node name that is unique on this machine and readable in lease tables: `HOST-PID`.
pub fn default_node_name(role: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into());
    format!("{role}-{host}-{}", std::process::id())
}

/// The mailer of the configuration's `smtp:` section, if it has one,
/// checked now: a node that cannot send mail says so before it runs; with
/// the configured users' groups and roles as `notify.to` can name them.
fn mailer(catalog: &CatalogArgs) -> anyhow::Result<Option<(Arc<Mailer>, Recipients)>> {
    let config = Config::read(catalog.config.as_deref())?;
    let mut recipients = Recipients::default();
    for (_, user) in config.users.users() {
        if let Some(email) = &user.email {
            recipients.add_person(email, &user.roles, &user.groups);
        }
    }
    config
        .smtp
        .as_ref()
        .map(|smtp| {
            Mailer::new(smtp)
                .map(|mailer| (Arc::new(mailer), recipients))
                .map_err(|e| anyhow::anyhow!("error[{}]: {e}", e.code()))
        })
        .transpose()
}

/// The executor of this node: the plugin sandbox if any component loaded,
/// wrapped by the mailer (for `notify` steps) if one is configured.
fn executor(
    plugins: Option<Arc<dyn Executor>>,
    mailer: Option<(Arc<Mailer>, Recipients)>,
) -> Arc<dyn Executor> {
    #[cfg(feature = "crash-harness")]
    if let Some(ledger) = crate::harness::Ledger::from_env() {
        return Arc::new(ledger);
    }
    let inner = plugins.unwrap_or_else(|| Arc::new(NoPluginHost));
    match mailer {
        Some((mailer, recipients)) => {
            Arc::new(NotifyingExecutor::new(mailer, inner).with_recipients(recipients))
        }
        None => inner,
    }
}

/// The executor of a node without any plugin component loaded (and without
/// a mailer): every action fails, non-transiently, saying why. Built-in
/// steps (`wait`, approval gates, sub-playbooks) do not need an executor and
/// run for real. Nothing is ever reported as done that was not done.
#[derive(Debug)]
struct NoPluginHost;

impl NoPluginHost {
    fn refusal(action: &Action) -> AttemptError {
        let message = match action {
            Action::Plugin(plugin) => format!(
                "plugin `{plugin}` cannot run: no signed plugin component is loaded on this node (see --plugins, --trust and --config)"
            ),
            Action::Notify => {
                "notify cannot send: no `smtp:` section is configured (see --config)".to_string()
            }
        };
        AttemptError {
            kind: ErrorKind::Unavailable,
            message,
            retryable: false,
        }
    }
}

impl Executor for NoPluginHost {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        let refusal = NoPluginHost::refusal(&call.action);
        Box::pin(async move { Err(refusal) })
    }

    fn compensate(&self, call: StepCall, _outputs: Value) -> BoxFuture<Result<(), String>> {
        let refusal = NoPluginHost::refusal(&call.action);
        Box::pin(async move { Err(refusal.message) })
    }
}
