//! `cordon-fleet-authority`: the reference fleet's certificate authority
//! and command signer (see the library's documentation).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cordon_fleet_authority::api::{self, AppState};
use cordon_fleet_authority::authority::Authority;
use cordon_fleet_authority::init;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The reference fleet's certificate authority and command signer"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create the CA, server and device certificates, keys, images and an
    /// empty CRL in DIR (idempotent: existing files are kept).
    Init {
        /// The state directory.
        dir: PathBuf,
        /// Device ids, comma-separated.
        #[arg(long, value_delimiter = ',')]
        devices: Vec<String>,
        /// Also issue dev-1 .. dev-N.
        #[arg(long)]
        device_count: Option<u32>,
        /// A name never to issue (repeatable); kept in authority.json.
        #[arg(long = "reserve")]
        reserve: Vec<String>,
    },
    /// Serve the HTTP API on loopback.
    Serve {
        /// The state directory made by `init`.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// File holding the bearer token.
        #[arg(long)]
        token_file: PathBuf,
        /// The broker's mTLS listener, HOST:PORT (HOST is also the TLS name).
        #[arg(long)]
        broker: String,
        /// File holding the broker's PID (for SIGHUP).
        #[arg(long)]
        broker_pid_file: PathBuf,
        /// Write the URL here once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cordon-fleet-authority: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Cmd::Init {
            dir,
            mut devices,
            device_count,
            reserve,
        } => {
            for i in 1..=device_count.unwrap_or(0) {
                let name = format!("dev-{i}");
                if !devices.contains(&name) {
                    devices.push(name);
                }
            }
            devices.retain(|d| !d.is_empty());
            let summary = init::run(&dir, &devices, &reserve)?;
            println!(
                "fleet authority initialised in {}: {} created, {} kept, {} devices, crl number {}",
                dir.display(),
                summary.created.len(),
                summary.kept,
                summary.devices.len(),
                summary.crl_number
            );
            for file in &summary.created {
                println!("  created {file}");
            }
            Ok(())
        }
        Cmd::Serve {
            dir,
            listen,
            token_file,
            broker,
            broker_pid_file,
            ready_file,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(
                dir,
                listen,
                token_file,
                broker,
                broker_pid_file,
                ready_file,
            ))
        }
    }
}

fn parse_broker(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("--broker `{text}` is not HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--broker `{text}`: bad port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

async fn serve(
    dir: PathBuf,
    listen: std::net::SocketAddr,
    token_file: PathBuf,
    broker: String,
    broker_pid_file: PathBuf,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read {}", token_file.display()))?;
    anyhow::ensure!(
        token.trim().len() >= 16,
        "the token in {} is shorter than 16 characters",
        token_file.display()
    );
    if !listen.ip().is_loopback() {
        anyhow::bail!("--listen {listen}: the authority serves on loopback only");
    }
    let authority = Authority::open(&dir, parse_broker(&broker)?, &broker_pid_file)?;
    let app = api::router(AppState::new(authority, &token));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("fleet-authority listening {url}");
    if let Some(file) = ready_file {
        cordon_fleet_authority::files::write_atomic(
            &file,
            url.as_bytes(),
            cordon_fleet_authority::files::PUBLIC,
        )?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
