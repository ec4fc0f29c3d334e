//! `sessionmesh-sim`: run the simulator from the command line.
//!
//! `--seed S` replays one seed and prints its summary; `--seeds N` sweeps seeds `0..N` (from
//! `--start`) on all cores. Whatever the mode, the last line is exactly
//! `seeds=N violations=V trace=HEX`, where `V` counts the seeds with at least one violation and
//! `HEX` fingerprints every seed's trace in seed order. Any violation exits with status 1 after
//! printing the failing seed, the broken oracle and the command that replays it.
//!
//! This binary only parses flags and prints; the simulation lives in the library.

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use sessionmesh_sim::{combined_trace, schedule_for, sweep, Chaos, Schedule, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// A fault planted in every replica, to show that the oracles catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Plant {
    /// Collect tombstones without waiting for causal stability.
    GcEarly,
    /// Never run catch-up.
    NoCatchup,
    /// Prefer the local register when merging.
    PreferLocal,
    /// Restart without restoring from peers (trust the persisted state).
    NoRestore,
    /// Restore without the census of keys collected elsewhere.
    NoCensus,
}

#[derive(Debug, Parser)]
#[command(
    name = "sessionmesh-sim",
    about = "Deterministic multi-region simulator for sessionmesh"
)]
struct Args {
    /// Replay this one seed and print its summary.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Sweep this many seeds (from --start).
    #[arg(long)]
    seeds: Option<u64>,
    /// First seed of a sweep.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Number of regions.
    #[arg(long, default_value_t = 3)]
    regions: usize,
    /// Shards per region (default: `[cluster] shards` of regions.toml, else the node's
    /// default).
    #[arg(long)]
    shards: Option<u16>,
    /// Simulated seconds of workload and faults before the heal.
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Client commands per simulated second, over all regions.
    #[arg(long, default_value_t = 60.0)]
    rate: f64,
    /// Plant a fault in the core (repeatable).
    #[arg(long = "fault", value_enum)]
    faults: Vec<Plant>,
    /// No random partitions, crashes, skew, loss or duplication.
    #[arg(long)]
    calm: bool,
    /// No clock beyond the allowed drift: no far-ahead region, no clock steps.
    #[arg(long)]
    no_skew: bool,
    /// Use this fault schedule (TOML, as printed by --print-schedule) instead of a random one.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// Print the seed's fault schedule as TOML (with --seed).
    #[arg(long)]
    print_schedule: bool,
    /// Take latencies and timings from this regions.toml (default: ./regions.toml
    /// when present, else built-in).
    #[arg(long)]
    regions_toml: Option<PathBuf>,
    /// Worker threads for a sweep (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print the history of this key (commands, deltas, final states), with --seed.
    #[arg(long)]
    explain: Option<String>,
    /// Print one line per seed of a sweep.
    #[arg(long)]
    verbose: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let cfg = config(&args)?;
    let (seeds, single) = match (args.seed, args.seeds) {
        (Some(s), _) => (s..s + 1, true),
        (None, Some(n)) => (args.start..args.start + n, false),
        (None, None) => bail!("give --seed S or --seeds N"),
    };
    if single && args.print_schedule {
        println!(
            "# schedule of seed {}\n{}",
            seeds.start,
            schedule_for(seeds.start, &cfg).to_toml()
        );
    }
    if single {
        let m = cfg.latency.rows();
        println!("latency (one-way ms, {}): {m:?}", cfg.latency.source);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let outcomes = sweep(seeds.clone(), &cfg, if single { 1 } else { jobs });
    let elapsed = started.elapsed().as_secs_f64();
    let mut violating = 0u64;
    for (seed, o) in &outcomes {
        if single {
            for line in &o.explain {
                println!("{line}");
            }
            println!("{}", o.summary);
        } else if args.verbose {
            let conv = o
                .summary
                .converge_ms
                .map_or("never".to_string(), |ms| format!("{ms} ms"));
            println!(
                "seed {seed}: {} writes, {} frames, converged after {conv}, trace {:016x}",
                o.summary.writes, o.summary.frames_sent, o.trace_hash
            );
        }
        if !o.violations.is_empty() {
            violating += 1;
            println!("VIOLATION seed {seed}:");
            for v in &o.violations {
                println!("  {v}");
            }
            println!("  replay: {}", replay_command(&args, *seed));
        }
    }
    let n = outcomes.len() as u64;
    if !single {
        println!(
            "swept {n} seeds in {elapsed:.1} s on {jobs} threads ({:.0} seeds/min)",
            n as f64 * 60.0 / elapsed.max(1e-9)
        );
    }
    println!(
        "seeds={n} violations={violating} trace={:016x}",
        combined_trace(&outcomes)
    );
    Ok(if violating > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn config(args: &Args) -> anyhow::Result<SimConfig> {
    if args.regions < 1 || args.regions > 64 {
        bail!("--regions must be within 1..=64");
    }
    if !args.duration.is_finite()
        || args.duration < 0.0
        || !args.rate.is_finite()
        || args.rate < 0.0
    {
        bail!("--duration and --rate must not be negative");
    }
    let mut cfg = SimConfig::standard(args.regions);
    if let Some(p) = &args.regions_toml {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        cfg.apply_regions_toml(&text).map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = args.shards {
        if !(1..=256).contains(&s) {
            bail!("--shards must be within 1..=256");
        }
        cfg.shards = s;
    }
    cfg.duration_ms = (args.duration * 1000.0) as u64;
    cfg.ops_per_sec = args.rate;
    if args.calm {
        cfg.chaos = Chaos::calm();
    }
    if args.no_skew {
        cfg.chaos.far_ahead_prob = 0.0;
        cfg.chaos.max_steps = 0;
    }
    for f in &args.faults {
        match f {
            Plant::GcEarly => cfg.faults.gc_without_stability = true,
            Plant::NoCatchup => cfg.faults.no_catchup = true,
            Plant::PreferLocal => cfg.faults.merge_prefers_local = true,
            Plant::NoRestore => cfg.faults.no_restore = true,
            Plant::NoCensus => cfg.faults.no_census = true,
        }
    }
    cfg.explain_key = args.explain.clone().map(bytes::Bytes::from);
    if let Some(p) = &args.schedule {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let s = Schedule::from_toml(&text).map_err(anyhow::Error::msg)?;
        s.validate(args.regions).map_err(anyhow::Error::msg)?;
        cfg.schedule = Some(s);
    }
    Ok(cfg)
}

fn replay_command(args: &Args, seed: u64) -> String {
    let mut c = format!("cargo run --release -p sessionmesh-sim -- --seed {seed}");
    if args.regions != 3 {
        c += &format!(" --regions {}", args.regions);
    }
    if let Some(s) = args.shards {
        c += &format!(" --shards {s}");
    }
    if args.duration != 120.0 {
        c += &format!(" --duration {}", args.duration);
    }
    if args.rate != 60.0 {
        c += &format!(" --rate {}", args.rate);
    }
    for (on, flag) in [(args.calm, " --calm"), (args.no_skew, " --no-skew")] {
        if on {
            c += flag;
        }
    }
    for f in &args.faults {
        let name = f
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        c += &format!(" --fault {name}");
    }
    if let Some(p) = &args.schedule {
        c += &format!(" --schedule {}", p.display());
    }
    if let Some(p) = &args.regions_toml {
        c += &format!(" --regions-toml {}", p.display());
    }
    c
}
