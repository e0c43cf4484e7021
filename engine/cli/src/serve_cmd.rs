//! `cordon serve`: the HTTP API and an engine node in one process, until
//! SIGINT or SIGTERM.
//!
//! The node is the worker's (same plugins, same work loop, same
//! checkpoints); the server only starts and controls runs, and the work
//! loop drives them. On a signal both stop together: the server stops
//! accepting and finishes requests in flight, the work loop gives its
//! drives their grace and hands their leases back, a last checkpoint is
//! signed — so every run is resumable by the next start.

use std::sync::Arc;

use anyhow::Context as _;
use cordon_server::AppState;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::exit;
use crate::node::{Node, default_node_name};
use crate::runs_cmd::runtime;
use crate::worker_cmd;

pub fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    worker_cmd::init_logging();
    let options = worker_cmd::options(&args.worker)?;
    let config = Config::read(args.worker.node.catalog.config.as_deref())?;
    let mut server = config.server.clone();
    // Flags and environment (clap merges the two) over the file.
    if let Some(listen) = &args.listen {
        server.listen.clone_from(listen);
    }
    if let Some(url) = &args.public_url {
        server.public_url = Some(url.clone());
    }
    // Secrets come from the file or the environment, read once; a source
    // that cannot authenticate stops the start rather than accept anyone.
    let webhooks =
        cordon_server::Webhooks::from_config(&config.webhooks, &|var| std::env::var(var).ok())
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    if config.users.is_empty() {
        tracing::warn!("no `users:` in the configuration: every API token will be refused");
    }
    let name = args
        .worker
        .name
        .clone()
        .unwrap_or_else(|| default_node_name("server"));
    runtime()?.block_on(async {
        let node = Node::open(&args.worker.node, name, args.worker.lease.get()).await?;
        let listener = tokio::net::TcpListener::bind(&server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", server.listen))?;
        let address = listener.local_addr()?;
        let state = AppState {
            store: node.store.clone(),
            engine: node.engine.clone(),
            directory: Arc::new(config.users.clone()),
            config: Arc::new(server),
            catalog: Arc::new(node.catalog.clone()),
            links: Some(Arc::new(crate::link_key::load()?)),
            webhooks: Arc::new(webhooks),
        };
        // Mail goes out from the outbox when an `smtp:` section is configured;
        // without one, approvals are decided through the API, CLI and web page.
        let dispatcher = match (&config.smtp, &state.links) {
            (Some(smtp), Some(keys)) => {
                let mailer = cordon_notify::Mailer::new(smtp)
                    .map_err(|e| anyhow::anyhow!("error[{}]: {e}", e.code()))?;
                let public_url = state
                    .config
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{address}"));
                Some(cordon_server::mail::outbox::Dispatcher::new(
                    state.clone(),
                    Arc::new(mailer),
                    keys.clone(),
                    public_url,
                ))
            }
            _ => None,
        };
        // One signal stops both halves.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let mail = dispatcher.map(|d| {
            tokio::spawn(d.run(
                std::time::Duration::from_millis(250),
                until_stopped(stopped.clone()),
            ))
        });
        let http = tokio::spawn(cordon_server::serve(
            listener,
            state,
            until_stopped(stopped.clone()),
        ));
        // The one line scripts wait for; the port is the real one when 0 was asked.
        eprintln!("listening on http://{address}");
        tracing::info!(
            node = %node.name,
            backend = ?node.store.backend(),
            %address,
            "server started"
        );
        let signal = async {
            worker_cmd::stop_signal().await;
            tracing::info!("stopping: no new requests; runs in hand get their grace");
            let _ = stop.send(true);
        };
        let (worked, ()) = tokio::join!(
            worker_cmd::work(&node, options, until_stopped(stopped)),
            signal
        );
        let served = http.await;
        if let Some(mail) = mail {
            let _ = mail.await;
        }
        worked?;
        served??;
        node.store.close().await?;
        tracing::info!(node = %node.name, "server stopped");
        Ok(exit::OK)
    })
}
