//! The `sessionmesh` command line: `serve`, `certs`, `demo` and `status`.
//!
//! Everything here is argument parsing, logging setup and signal handling; the work is done
//! by the library (`sessionmesh::server`, `sessionmesh::certs`).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sessionmesh::certs;
use sessionmesh::config::Config;
use sessionmesh::relay::Relay;
use sessionmesh::server::Server;
use std::collections::BTreeMap;
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
        /// Connect the regions directly, without the relays that let the console cut links
        /// (as a deployment would: the benchmarks use it, since each relay copies every
        /// datagram through two more socket calls on the same cores).
        #[arg(long)]
        direct: bool,
    },
    /// Print one table of every region: reachable, ready (or restoring), keys, memory, and per
    /// peer the link, replication lag (ms and writes) and clock offset, read from each region's
    /// `/status`.
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
            Command::Demo {
                config,
                data,
                direct,
            } => demo(&config, data, direct).await,
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

async fn demo(config_path: &Path, data: Option<PathBuf>, direct: bool) -> Result<()> {
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
    // A relay on every link, so the demo can cut and heal links between regions for real
    // (the lower id of a pair dials the higher one, through the pair's relay).
    let names: Vec<String> = config.regions().iter().map(|r| r.name.clone()).collect();
    let mut relays: BTreeMap<(usize, usize), Relay> = BTreeMap::new();
    for (i, a) in config.regions().iter().enumerate().filter(|_| !direct) {
        for (j, b) in config.regions().iter().enumerate().skip(i + 1) {
            match Relay::try_start(a.gossip, b.gossip).await {
                Ok(r) => {
                    relays.insert((i, j), r);
                }
                Err(e) => {
                    tracing::warn!(a = %a.name, b = %b.name, error = %e, "no relay on this link");
                }
            }
        }
    }
    let mut servers = Vec::new();
    for (i, r) in config.regions().iter().enumerate() {
        let mut own = config.clone();
        for ((a, b), relay) in &relays {
            if *a == i {
                own = own.with_gossip(&names[*b], relay.addr());
            }
        }
        match Server::start(&own, &r.name).await {
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
    if direct {
        println!("regions connected directly (--direct): no link commands; Ctrl-C to stop.");
    } else {
        println!(
            "type `partition {} {}`, `isolate {}`, `heal` or `help` here; Ctrl-C to stop.",
            names[0],
            names[names.len() - 1],
            names[0]
        );
    }
    tokio::select! {
        r = wait_for_signal() => r?,
        _ = demo_console(&names, &relays) => {}
    }
    for s in servers {
        s.shutdown().await;
    }
    Ok(())
}

/// Reads link commands from standard input and applies them to the demo's relays; returns when
/// standard input ends (the demo then runs until Ctrl-C).
async fn demo_console(names: &[String], relays: &BTreeMap<(usize, usize), Relay>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let index = |n: &str| names.iter().position(|x| x == n);
    let link = |a: usize, b: usize| relays.get(&(a.min(b), a.max(b)));
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            [] => continue,
            ["partition", a, b] => match (index(a), index(b)) {
                (Some(a), Some(b)) if a != b => match link(a, b) {
                    Some(r) => {
                        r.partition();
                        format!("cut {} <-> {}", names[a], names[b])
                    }
                    None => "no relay on that link".to_string(),
                },
                _ => format!("unknown regions; known: {}", names.join(", ")),
            },
            ["isolate", a] => match index(a) {
                Some(a) => {
                    for b in (0..names.len()).filter(|b| *b != a) {
                        if let Some(r) = link(a, b) {
                            r.partition();
                        }
                    }
                    format!("{} cut off from every other region", names[a])
                }
                None => format!("unknown region; known: {}", names.join(", ")),
            },
            ["heal"] => {
                relays.values().for_each(Relay::heal);
                "every link healed".to_string()
            }
            ["links"] => relays
                .iter()
                .map(|((a, b), r)| {
                    let state = if r.is_partitioned() { "cut" } else { "up" };
                    format!("{} <-> {}: {state}", names[*a], names[*b])
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => "commands: partition A B | isolate A | heal | links".to_string(),
        };
        println!("{reply}");
    }
    // Standard input closed (not a terminal): keep running until Ctrl-C.
    std::future::pending::<()>().await;
}

/// `status`: one table of every region, one row per peer link, from each region's `/status`.
/// A region that does not answer is listed as unreachable; the command still succeeds, so it
/// can be run during an outage.
async fn status(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let header = [
        "REGION",
        "REACHABLE",
        "READY",
        "KEYS",
        "MEMORY",
        "PEER",
        "LINK",
        "LAG_MS",
        "LAG_WRITES",
        "OFFSET_MS",
    ];
    let mut rows: Vec<[String; 10]> = Vec::new();
    // Why unreachable regions are, printed under the table.
    let mut notes = Vec::new();
    for r in config.regions() {
        let name = r.name.clone();
        let v = match http_get(r.http, "/status").await.and_then(|body| {
            serde_json::from_str::<serde_json::Value>(&body).context("bad /status")
        }) {
            Ok(v) => v,
            Err(e) => {
                notes.push(format!("{name}: {e:#}"));
                rows.push(blank_after([name, "no".into()]));
                continue;
            }
        };
        let ready = if v["restoring"].is_object() {
            let r = &v["restoring"];
            let waiting: Vec<&str> = r["waiting_for"]
                .as_array()
                .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
                .unwrap_or_default();
            notes.push(format!(
                "{name}: restoring for {} ms ({} keys received), waiting for {}",
                r["for_ms"].as_u64().unwrap_or(0),
                r["keys_received"].as_u64().unwrap_or(0),
                waiting.join(", ")
            ));
            "restoring".to_string()
        } else {
            v["ready"].as_bool().unwrap_or(false).to_string()
        };
        let region = [
            name,
            "yes".into(),
            ready,
            v["keys"].as_u64().map_or("-".into(), |k| k.to_string()),
            v["memory_bytes"].as_u64().map_or("-".into(), mebibytes),
        ];
        let peers = v["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            rows.push(blank_after(region.clone()));
        }
        for (i, p) in peers.iter().enumerate() {
            let link = match (p["connected"].as_bool(), p["trusted"].as_bool()) {
                (Some(true), Some(true)) => "online",
                (Some(true), _) => "handshake",
                _ => "offline",
            };
            let num = |k: &str| match &p[k] {
                serde_json::Value::Number(n) => n.to_string(),
                _ => "-".into(),
            };
            // The region's own columns only on its first line.
            let mine = if i == 0 {
                region.clone()
            } else {
                Default::default()
            };
            let [a, b, c, d, e] = mine;
            rows.push([
                a,
                b,
                c,
                d,
                e,
                p["name"].as_str().unwrap_or("?").to_string(),
                link.to_string(),
                num("lag_ms"),
                num("lag_writes"),
                num("clock_offset_ms"),
            ]);
        }
    }
    print!("{}", table(&header, &rows));
    for n in notes {
        println!("{n}");
    }
    Ok(())
}

/// A row with the first columns given and the rest empty.
fn blank_after<const N: usize>(first: [String; N]) -> [String; 10] {
    let mut row: [String; 10] = Default::default();
    for (dst, src) in row.iter_mut().zip(first) {
        *dst = src;
    }
    row
}

fn mebibytes(b: u64) -> String {
    format!("{:.1}MiB", b as f64 / (1024.0 * 1024.0))
}

/// Left-aligned columns as wide as their widest cell, two spaces apart.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(str::len);
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells.zip(width).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
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
