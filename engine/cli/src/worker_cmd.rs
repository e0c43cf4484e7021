//! `cordon worker`: one engine node, until SIGINT or SIGTERM.

use cordon_runtime::WorkOptions;
use tracing_subscriber::EnvFilter;

use crate::cli::WorkerArgs;
use crate::exit;
use crate::node::{Node, default_node_name};
use crate::runs_cmd::runtime;

pub fn run(args: &WorkerArgs) -> anyhow::Result<u8> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CORDON_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sea_orm_migration=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if args.poll.get() < std::time::Duration::from_millis(1) {
        anyhow::bail!("--poll must be at least 1ms");
    }
    if args.lease.get() < std::time::Duration::from_millis(100) {
        anyhow::bail!("--lease must be at least 100ms (a node renews it every third of it)");
    }
    if args.capacity == 0 {
        anyhow::bail!("--capacity must be at least 1");
    }
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
        let options = WorkOptions {
            every: args.poll.get(),
            capacity: args.capacity,
            grace: args.grace.get(),
        };
        let auditor = crate::audit::Auditor::open()?;
        let work = node.engine.work(stop_signal(), options);
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
        tracing::info!(node = %node.name, "worker stopped");
        Ok(exit::OK)
    })
}

/// How often a worker signs a checkpoint when the log grew.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Completes on the first SIGINT or SIGTERM.
async fn stop_signal() {
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
