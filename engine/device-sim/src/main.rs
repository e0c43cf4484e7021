//! `cordon-device-sim`: N simulated fleet devices in one process, each with
//! its own MQTT 5 session over mutual TLS, each obeying only signed
//! commands. Fleet incident-response playbooks are tested against it on a
//! real broker (quarantine by role change, revocation by CRL) without real
//! hardware.
//!
//! Output contract: log lines go to stderr; stdout carries exactly one line,
//! `device-sim ready <N> devices`, once every device has connected and had
//! its command subscription answered, so a parent process can wait for it.
//! SIGTERM or SIGINT disconnects every device and exits 0.

mod cli;
mod device;
mod link;
mod status;
mod tls;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::sync::{mpsc, watch};

use crate::device::{Device, Provision};
use crate::link::Endpoint;
use crate::status::StateDir;

/// How long devices get to say goodbye to the broker at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // One crypto provider for the process (the TLS configs also name ring
    // explicitly); an error only means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(simulate(cli))
}

async fn simulate(cli: cli::Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let setup = cli.setup()?;
    let trust = tls::Trust::new(&cli.ca, &cli.tls_name)?;
    let files =
        StateDir::new(cli.state_dir.clone()).context("cannot create the state directory")?;
    let endpoint = Endpoint {
        host: setup.host.clone(),
        port: setup.port,
        keep_alive: setup.keep_alive,
        heartbeat: setup.heartbeat,
    };

    // Build every device before connecting any: a bad certificate or image
    // list stops the simulator with an error instead of a partial fleet.
    let mut devices = Vec::with_capacity(setup.devices.len());
    for id in &setup.devices {
        let provision = Provision {
            command_key: setup.command_key,
            release_key: setup.release_key,
            images: setup.images.clone(),
            current: cli.current.clone(),
            floor: cli.floor,
            fail_install: cli.fail_install.contains(id),
            compromised: cli.compromised.contains(id),
        };
        let device = Device::new(id, &provision).with_context(|| format!("device {id}"))?;
        let config = trust.client(
            &cli.certs.join(format!("{id}.crt")),
            &cli.certs.join(format!("{id}.key")),
        )?;
        devices.push((device, config));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let count = devices.len();
    for (device, config) in devices {
        tasks.spawn(link::run(
            device,
            endpoint.clone(),
            config,
            files.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop(ready_tx);

    tokio::spawn(async move {
        let mut seen = HashSet::new();
        while let Some(id) = ready_rx.recv().await {
            seen.insert(id);
            if seen.len() == count {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis(),
                    "all devices ready"
                );
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "device-sim ready {count} devices");
                let _ = out.flush();
                break;
            }
        }
    });

    stop_signal().await?;
    tracing::info!("stopping: disconnecting every device");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
