//! `cordon worker`: one engine node, until SIGINT or SIGTERM. `cordon
//! serve` runs the same node loop beside its HTTP server.

use std::future::Future;

use cordon_runtime::WorkOptions;
use tracing_subscriber::EnvFilter;

use crate::cli::WorkerArgs;
use crate::exit;
use crate::node::{Node, default_node_name};
use crate::runs_cmd::runtime;

pub fn run(args: &WorkerArgs) -> anyhow::Result<u8> {
    init_logging();
    let options = options(args)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_node_name("worker"));
    runtime()?.block_on(async {
        let node = Node::open(&args.node, name, args.lease.get()).await?;
        tracing::info!(
            node = %node.name,
            backend = ?node.store.backend(),
            lease = %args.lease,
            capacity = args.capacity,
            "worker started"
        );
        work(&node, options, stop_signal()).await?;
        tracing::info!(node = %node.name, "worker stopped");
        Ok(exit::OK)
    })
}

/// Logs to stderr, filtered by `CORDON_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CORDON_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sea_orm_migration=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The work loop's knobs, checked.
pub fn options(args: &WorkerArgs) -> anyhow::Result<WorkOptions> {
    if args.poll.get() < std::time::Duration::from_millis(1) {
        anyhow::bail!("--poll must be at least 1ms");
    }
    if args.lease.get() < std::time::Duration::from_millis(100) {
        anyhow::bail!("--lease must be at least 100ms (a node renews it every third of it)");
    }
    if args.capacity == 0 {
        anyhow::bail!("--capacity must be at least 1");
    }
    Ok(WorkOptions {
        every: args.poll.get(),
        capacity: args.capacity,
        grace: args.grace.get(),
    })
}

/// Drives runs on `node` until `stop` completes (then the drives in hand get
/// their grace and their leases are handed back), signing an audit
/// checkpoint every few seconds when the log grew, and a last one at the end.
pub async fn work(
    node: &Node,
    options: WorkOptions,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let auditor = crate::audit::Auditor::open()?;
    let work = node.engine.work(stop, options);
    // Checkpoints while working: every few seconds when the log grew,
    // so a finished run is covered by a signed checkpoint soon after.
    let checkpoints = async {
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            match auditor.checkpoint(&node.store).await {
                Ok(Some(c)) => {
                    tracing::info!(size = c.size, root = %c.root, "audit checkpoint signed")
                }
                Ok(None) => {}
                Err(e) => tracing::error!("audit checkpoint refused: {e:#}"),
            }
        }
    };
    tokio::select! {
        worked = work => worked?,
        // The loop never ends; select! needs an arm for it.
        () = checkpoints => {}
    }
    // A last one for what the final drives wrote.
    if let Err(e) = auditor.checkpoint(&node.store).await {
        tracing::error!("audit checkpoint refused: {e:#}");
    }
    Ok(())
}

/// How often a worker signs a checkpoint when the log grew.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Completes on the first SIGINT or SIGTERM.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // Without a SIGTERM handler, Ctrl-C still stops the worker.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
