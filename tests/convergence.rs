//! Convergence of the real core under the simulator: generated fault schedules (proptest) and
//! a fixed sweep of seeds, all expected to end with every oracle satisfied.
//!
//! What this file checks: that after partitions, crashes, clock skew and steps, loss and
//! duplication, every region converges to the GC-free fold of all writes, no expired key is
//! readable, clocks never go back, and replication state stays bounded (see
//! `sessionmesh_sim::oracle`). What it does not check: the node's IO shell, or that the oracles
//! themselves catch bugs (that is `tests/sim_oracles.rs`).
//!
//! Every failure prints its seed (and schedule) and the command that replays it. Knobs:
//! `SIM_SEEDS=N` (sweep size, default 200), `SIM_SEED=S` (replay one seed of the sweep),
//! `PROPTEST_CASES=N` (generated schedules, default 16).

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use proptest::prelude::*;
use sessionmesh_sim::{
    combined_trace, run, sweep, ClockSpec, ClockStep, Crash, Cut, Disk, Outcome, Partition,
    Schedule, SimConfig,
};
use std::path::PathBuf;

/// Simulated seconds of workload in the tests (the CLI's default is 120).
const SWEEP_SECS: u64 = 60;
const PROP_SECS: u64 = 20;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn config(secs: u64) -> SimConfig {
    SimConfig {
        duration_ms: secs * 1_000,
        ..SimConfig::standard(3)
    }
}

fn describe(seed: u64, o: &Outcome, replay: &str) -> String {
    let mut s = format!("seed {seed} broke {} oracle(s):\n", o.violations.len());
    for v in &o.violations {
        s += &format!("  {v}\n");
    }
    s + &format!("  replay: {replay}\n{}", o.summary)
}

/// The standard scenario over many seeds (3 regions, shortened workload).
#[test]
fn sweep_of_seeds_converges() {
    let cfg = config(SWEEP_SECS);
    let seeds = match env_u64("SIM_SEED") {
        Some(s) => s..s + 1,
        None => 0..env_u64("SIM_SEEDS").unwrap_or(200),
    };
    println!("sweeping seeds {seeds:?}, {SWEEP_SECS} s each (SIM_SEED=S replays one)");
    let outcomes = sweep(seeds.clone(), &cfg, jobs());
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| !o.is_clean())
        .map(|(seed, o)| {
            let replay = format!(
                "SIM_SEED={seed} cargo test --test convergence sweep_of_seeds_converges -- \
                 --nocapture, or cargo run --release -p sessionmesh-sim -- --seed {seed} \
                 --duration {SWEEP_SECS}"
            );
            describe(*seed, o, &replay)
        })
        .collect();
    println!(
        "seeds={} violations={} trace={:016x}",
        outcomes.len(),
        failures.len(),
        combined_trace(&outcomes)
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds broke an oracle:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}

/// Same seed, same trace; another seed, another trace.
#[test]
fn runs_are_deterministic() {
    let cfg = config(10);
    let a = run(7, &cfg);
    let b = run(7, &cfg);
    assert_eq!(a.trace_hash, b.trace_hash, "seed 7 replayed differently");
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.violations, b.violations);
    let c = run(8, &cfg);
    assert_ne!(
        a.trace_hash, c.trace_hash,
        "seeds 7 and 8 gave the same trace"
    );
    assert!(
        a.summary.writes > 100,
        "the workload hardly wrote: {}",
        a.summary
    );
}

fn region(n: u16) -> impl Strategy<Value = u16> {
    1..=n
}

fn cut(n: u16) -> impl Strategy<Value = Cut> {
    prop_oneof![
        (region(n), region(n))
            .prop_filter("two regions", |(a, b)| a != b)
            .prop_map(|(a, b)| Cut::Both { a, b }),
        (region(n), region(n))
            .prop_filter("two regions", |(a, b)| a != b)
            .prop_map(|(from, to)| Cut::OneWay { from, to }),
        region(n).prop_map(|region| Cut::Isolate { region }),
    ]
}

fn schedule(n: u16, dur: u64) -> impl Strategy<Value = Schedule> {
    let partition = (0..dur, 50..dur / 2, cut(n)).prop_map(|(start_ms, len, cut)| Partition {
        start_ms,
        end_ms: start_ms + len,
        cut,
    });
    let disk = prop_oneof![
        2 => Just(Disk::Kept),
        1 => Just(Disk::Lost),
        1 => (0u64..20_000).prop_map(|age_ms| Disk::RolledBack { age_ms }),
    ];
    let crash =
        (region(n), 0..dur, 200u64..10_000, disk).prop_map(|(region, at_ms, down_ms, disk)| {
            Crash {
                region,
                at_ms,
                down_ms,
                disk,
            }
        });
    let clock = (-1_500i64..1_500, -300i64..300).prop_map(|(offset_ms, drift_ppm)| ClockSpec {
        offset_ms,
        drift_ppm,
    });
    let step =
        (region(n), 0..dur, -2_000i64..2_000).prop_map(|(region, at_ms, delta_ms)| ClockStep {
            region,
            at_ms,
            delta_ms,
        });
    (
        0.0..0.05f64,
        0.0..0.02f64,
        proptest::collection::vec(clock, usize::from(n)),
        proptest::collection::vec(step, 0..3),
        proptest::collection::vec(partition, 0..5),
        proptest::collection::vec(crash, 0..3),
    )
        .prop_map(
            |(loss, duplicate, clocks, steps, partitions, crashes)| Schedule {
                loss,
                duplicate,
                clocks,
                steps,
                partitions,
                crashes,
            },
        )
}

/// Saves a failing schedule where the CLI can replay it and returns the replay command.
fn save(seed: u64, s: &Schedule) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim-failures");
    let path = dir.join(format!("convergence-seed{seed}.toml"));
    let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, s.to_toml()));
    match saved {
        Ok(()) => format!(
            "cargo run --release -p sessionmesh-sim -- --seed {seed} --duration {PROP_SECS} \
             --schedule {}",
            path.display()
        ),
        Err(e) => format!("(could not save the schedule: {e})\n{}", s.to_toml()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_u64("PROPTEST_CASES").unwrap_or(16) as u32,
        // Each case is a whole simulation: keep shrinking bounded.
        max_shrink_iters: 48,
        ..ProptestConfig::default()
    })]

    /// Explicit partition, crash and clock schedules with a workload seed: no oracle breaks.
    #[test]
    fn generated_schedules_converge(seed in 0u64..1_000_000, s in schedule(3, PROP_SECS * 1_000)) {
        let cfg = SimConfig { schedule: Some(s.clone()), ..config(PROP_SECS) };
        let o = run(seed, &cfg);
        if !o.is_clean() {
            let replay = save(seed, &s);
            prop_assert!(false, "{}", describe(seed, &o, &replay));
        }
    }
}

/// Replays a saved failing schedule with its workload seed: every oracle must hold.
fn replay_fixture(schedule: &str, seed: u64) {
    let s = Schedule::from_toml(schedule).expect("schedule");
    let cfg = SimConfig {
        schedule: Some(s),
        // Recorded before clients kept principal indexes: replayed as then.
        principal_index: false,
        ..config(PROP_SECS)
    };
    let o = run(seed, &cfg);
    assert!(o.is_clean(), "{}", describe(seed, &o, "this test"));
}

/// Found by `generated_schedules_converge` once the clients kept principal indexes (sets) and
/// an expiration store (a sorted set): region 2 restarts and, while its skew buffer holds
/// deltas of old stamps, asks for a catch-up with watermarks lowered by the buffer's floor;
/// the answer, delayed by a partition, arrives after every region expired and collected a
/// session, and carried region 2's own old write into it. Judged against the lowered
/// watermark, the session's incarnation looked unknown rather than collected, and came back to
/// life as one field without its expiry. The collected check now reads the watermark before
/// the floor (`Replica::apply_entry`).
#[test]
fn a_late_catchup_answer_does_not_revive_a_collected_session() {
    let s = Schedule::from_toml(include_str!(
        "fixtures/catchup-revives-a-collected-key.toml"
    ))
    .expect("schedule");
    let cfg = SimConfig {
        schedule: Some(s),
        ..config(PROP_SECS)
    };
    let o = run(65_049, &cfg);
    assert!(o.is_clean(), "{}", describe(65_049, &o, "this test"));
}

/// Found by `generated_schedules_converge`: region 1 loses its disk; region 2, which had
/// collected an expired session, answered first with region 3's writes left out (region 1 is
/// connected to region 3), and region 1 then took its own expiry register as known; region 3,
/// which had not collected the session yet, sent it with that register dropped as old news,
/// and region 1 kept a session without its expiry for good. A restoring region's floor now
/// rises only with an answer that left no origin out.
#[test]
fn a_restoring_region_keeps_the_expiry_of_a_session_collected_elsewhere() {
    replay_fixture(
        include_str!("fixtures/restore-raises-floor-past-a-collected-key.toml"),
        236_668,
    );
}

/// Found by `generated_schedules_converge` while closing issue 13: region 3 logs a session
/// out and is then rolled back 12 s to a copy that still holds it, while region 2 loses its
/// disk; region 2 restores from region 3 before region 3's census has dropped the session.
/// Region 3's answer says it is unsettled, so region 2 censuses what it took with region 1,
/// which collected the session, and drops it (it used to keep it: an empty disk ran no census).
#[test]
fn a_region_restoring_from_a_rolled_back_peer_keeps_the_logout() {
    replay_fixture(
        include_str!("fixtures/restore-from-a-rolled-back-peer.toml"),
        105_384,
    );
}

/// Found by `generated_schedules_converge`: region 3 writes a session and is rolled back
/// 580 ms later, when only region 1 had taken the write in (region 2 missed the push and
/// was cut off before a catch-up); region 1 is then rolled back to a copy from before it. The
/// write is on no disk and in no frame: it is lost, and every region agrees it is absent. The
/// model used to lose only a crashed region's own writes and so still expected the session;
/// it now loses any write that no region holds any more.
#[test]
fn a_write_lost_with_both_disks_that_held_it_is_lost_everywhere() {
    let text = include_str!("fixtures/write-lost-with-two-disks.toml");
    let s = Schedule::from_toml(text).expect("schedule");
    let cfg = SimConfig {
        schedule: Some(s),
        principal_index: false,
        explain_key: Some(bytes::Bytes::from_static(b"sess:00065")),
        ..config(PROP_SECS)
    };
    let o = run(919_204, &cfg);
    assert!(o.is_clean(), "{}", describe(919_204, &o, "this test"));
    let wrote = o.explain.iter().any(|l| l.contains(" r3 wrote "));
    let gone = o.explain.iter().any(|l| l == "  model: None");
    assert!(
        wrote && gone,
        "expected the session written at r3 and then out of the model:\n{}",
        o.explain.join("\n")
    );
}

/// Found by `generated_schedules_converge`: region 1 loses its disk while a session expired
/// by region 2's `EXPIRE` awaits collection; region 2 collects it and answers region 1 first,
/// raising region 1's watermark for region 2 past that expiry; region 3, which still held the
/// session, answered with it, and region 1 dropped region 2's expiry register as old news: a
/// session without its expiry, live for good. A restoring region now takes a key it does not
/// hold whole, and is answered with whole key states.
#[test]
fn a_restoring_region_takes_a_dead_copy_whole() {
    replay_fixture(
        include_str!("fixtures/restore-takes-a-dead-copy-whole.toml"),
        381_523,
    );
}

/// Found by `generated_schedules_converge`: region 2 restarts from a backup older than any of
/// its writes, its peers answer without any of the writes it lost (so the stamp barrier lifts
/// by their answers), and its wall clock is then stepped back 1.3 s: its next stamp fell below
/// one it had issued before the crash. A restart now observes the wall clock at once.
#[test]
fn a_clock_stepped_back_after_a_restart_issues_no_old_stamp() {
    replay_fixture(
        include_str!("fixtures/restart-then-clock-stepped-back.toml"),
        716_919,
    );
}

/// Found by `generated_schedules_converge`: region 3 writes a session and is rolled back
/// 130 ms later, its push to region 1 still on the way on a link a partition had just cut.
/// The write reached nobody and is lost; the model counted the doomed frame as holding it.
/// Frames that a scheduled partition will drop no longer count.
#[test]
fn a_write_whose_push_a_partition_drops_is_lost_with_its_disk() {
    replay_fixture(
        include_str!("fixtures/push-dropped-by-a-partition.toml"),
        989_071,
    );
}
