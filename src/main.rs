//! The `sessionmesh` command line: `serve`, `certs`, `demo` and `status`.
//!
//! Everything here is argument parsing, logging setup and signal handling; the work is done
//! by the library (`sessionmesh::server`, `sessionmesh::certs`).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sessionmesh::certs;
use sessionmesh::config::Config;
use sessionmesh::server::Server;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An active-active, multi-region session store that speaks the Redis protocol.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one region.
    Serve {
        /// The cluster description.
        #[arg(long, default_value = "regions.toml")]
        config: PathBuf,
        /// Which region of the config this process is.
        #[arg(long)]
        region: String,
    },
    /// Make a private CA and one certificate per region (for development and small
    /// deployments).
    Certs {
        /// The cluster description.
        #[arg(long, default_value = "regions.toml")]
        config: PathBuf,
        /// Where to write `ca.pem`, `ca.key`, `<region>.pem` and `<region>.key`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run every region of the config on loopback in this process, with fresh development
    /// certificates.
    Demo {
        /// The cluster description (the built-in three-region one if the file is missing).
        #[arg(long, default_value = "regions.toml")]
        config: PathBuf,
        /// Where to put the generated certificates and each region's data (default: a folder
        /// in the temp dir).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Print every region's health and replication lag, read from its HTTP `/status`.
    Status {
        /// The cluster description.
        #[arg(long, default_value = "regions.toml")]
        config: PathBuf,
    },
}

/// The config shipped at the repository root, used by `demo` when no file is given.
const BUILTIN_REGIONS: &str = include_str!("../regions.toml");

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain on one line; no backtrace for operator errors.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn,rustls=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Serve { config, region } => serve(&config, &region).await,
            Command::Certs { config, out } => make_certs(&config, &out),
            Command::Demo { config, data } => demo(&config, data).await,
            Command::Status { config } => status(&config).await,
        }
    })
}

async fn serve(config_path: &Path, region: &str) -> Result<()> {
    let config = Config::load(config_path)?;
    let server = Server::start(&config, region)
        .await
        .with_context(|| format!("region `{region}` cannot start"))?;
    let failed = tokio::select! {
        r = wait_for_signal() => { r?; None }
        reason = server.failed() => Some(reason),
    };
    server.shutdown().await;
    match failed {
        // Exit non-zero so a supervisor restarts the region from its log.
        Some(reason) => bail!("region `{region}` stopped: persistence failed: {reason}"),
        None => Ok(()),
    }
}

fn make_certs(config_path: &Path, out: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let files = certs::generate(&config, out)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!(
        "keep {} secret: it signs certificates for this cluster",
        out.join("ca.key").display()
    );
    Ok(())
}

async fn demo(config_path: &Path, data: Option<PathBuf>) -> Result<()> {
    let config = if config_path.exists() {
        Config::load(config_path)?
    } else {
        Config::from_toml(BUILTIN_REGIONS, Path::new("."))?
    };
    let data = data.unwrap_or_else(|| std::env::temp_dir().join("sessionmesh-demo"));
    let cert_dir = data.join("certs");
    certs::generate(&config, &cert_dir)
        .with_context(|| format!("cannot write demo certificates to {}", cert_dir.display()))?;
    let config = config
        .with_cert_dir(&cert_dir)
        .with_data_dir(&data.join("data"));
    let mut servers = Vec::new();
    for r in config.regions() {
        match Server::start(&config, &r.name).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers {
                    s.shutdown().await;
                }
                bail!("region `{}` cannot start: {e}", r.name);
            }
        }
    }
    println!("sessionmesh demo: {} regions on loopback", servers.len());
    println!("development certificates in {}", cert_dir.display());
    println!(
        "data (log and snapshots) in {}",
        config.persistence().data_dir.display()
    );
    for (s, r) in servers.iter().zip(config.regions()) {
        println!(
            "  {:<10} redis-cli -p {:<5}  # status: curl http://{}/status",
            r.name,
            s.redis_addr().port(),
            s.http_addr()
        );
    }
    println!(
        "try: redis-cli -p {} SET session:1 alice, then redis-cli -p {} GET session:1",
        servers[0].redis_addr().port(),
        servers[servers.len() - 1].redis_addr().port()
    );
    println!("Ctrl-C to stop.");
    wait_for_signal().await?;
    for s in servers {
        s.shutdown().await;
    }
    Ok(())
}

async fn status(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    println!(
        "{:<10} {:<8} {:<6} {:<10} {:>8} {:>10}",
        "REGION", "HEALTH", "READY", "PEER", "LINK", "LAG_MS"
    );
    for r in config.regions() {
        let body = match http_get(r.http, "/status").await {
            Ok(b) => b,
            Err(e) => {
                println!("{:<10} {:<8} ({e})", r.name, "down");
                continue;
            }
        };
        let v: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("{}: bad /status", r.name))?;
        let ready = v["ready"].as_bool().unwrap_or(false);
        let peers = v["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            println!("{:<10} {:<8} {:<6}", r.name, "up", ready);
        }
        for (i, p) in peers.iter().enumerate() {
            let link = match (p["connected"].as_bool(), p["trusted"].as_bool()) {
                (Some(true), Some(true)) => "online",
                (Some(true), _) => "handshake",
                _ => "offline",
            };
            let (name, health, rdy) = if i == 0 {
                (r.name.as_str(), "up", ready.to_string())
            } else {
                ("", "", String::new())
            };
            println!(
                "{:<10} {:<8} {:<6} {:<10} {:>8} {:>10}",
                name,
                health,
                rdy,
                p["name"].as_str().unwrap_or("?"),
                link,
                p["lag_ms"].as_u64().map_or("-".into(), |l| l.to_string())
            );
        }
    }
    Ok(())
}

/// A minimal HTTP/1.0 GET, enough for our own `/status` (no client dependency needed).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .context("timed out")??;
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n").context("no HTTP body")?;
    Ok(body.to_string())
}

/// Returns on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    tracing::info!("signal received: shutting down");
    Ok(())
}
