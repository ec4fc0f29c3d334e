#!/usr/bin/env bash
# Throughput of sessionmesh against redis-server, side by side, with the same redis-benchmark
# invocation (SPEC §8: >= 1.0x unpipelined, >= 0.8x with -P 16, 50 clients, SET/GET/HSET,
# with two peer regions replicating).
#
# It starts:
#   - redis-server on 127.0.0.1:6390 (--save '' --appendonly no, plus $REDIS_ARGS),
#   - `cargo run --release -- demo --direct` from the repository root: three regions
#     replicating to each other in one process (regions.toml), connected directly as in a
#     deployment (RELAYS=1 keeps the demo's link relays, which cost about 1-2.5 us of CPU per
#     SET on these cores); us-east answers Redis on 127.0.0.1:6401,
# waits until both answer PING (and us-east's /ready says every peer link is up), runs the
# same redis-benchmark command against each, prints requests/s and the ratio
# sessionmesh/redis, and stops what it started (also on Ctrl-C or error).
#
# Usage:
#   bench/throughput.sh [ARGS FOR `sessionmesh demo`...]
# Every argument is passed unchanged to `sessionmesh demo` (--config, --data).
# `--config bench/one-region.toml` runs us-east alone (no peers, `everysec`): what one node
# costs per request against Redis, without the two other replicas sharing the machine.
# Durability is the config's `persistence.durability` (regions.toml: `always`); give Redis the
# same policy, e.g.
#   REDIS_ARGS='--appendonly yes --appendfsync always' bench/throughput.sh
#   REDIS_ARGS='--appendonly yes --appendfsync everysec' bench/throughput.sh --config bench/everysec.toml
# (bench/everysec.toml: regions.toml with `durability = "everysec"`).
#
# Environment (defaults in brackets):
#   REQUESTS [200000]      -n for the unpipelined runs
#   REQUESTS_P16 [2000000] -n for the -P 16 runs
#   CLIENTS [50]           -c
#   KEYSPACE [100000]      -r (random keys out of this many; 0 = redis-benchmark's single key)
#   ROUNDS [1]             repeat the whole comparison; the table shows every round
#   RUN_TIMEOUT [60]       seconds one redis-benchmark run (one test) may take; a run cut off
#                          shows as "timeout" (HSET into redis-benchmark's single `myhash`
#                          gets slower as that hash grows on sessionmesh)
#   REDIS_ARGS []          extra redis-server arguments
#   RELAYS [0]             1: keep the demo's relays on every link (the demo's default)
#   TESTS [set get hset]   the redis-benchmark tests to run (a subset for a quick look)
#   BENCH_ARGS []          extra redis-benchmark arguments for both servers (e.g. --threads 4)
#   REDIS_REPLICAS [0]     start this many replicas of redis-server (`replicaof`, ports 6391 on,
#                          same REDIS_ARGS) on the same cores, and count their CPU with Redis's:
#                          the like-for-like setup, every write kept three times on one machine
#
# The machine is shared and has 2 cores: redis-benchmark, redis-server and the three regions
# compete for them. Absolute numbers mean little; compare ratios from the same run.
set -euo pipefail

cd "$(dirname "$0")/.."

REDIS_PORT=6390
MESH_PORT=6401
MESH_HTTP=127.0.0.1:9401
REQUESTS=${REQUESTS:-200000}
REQUESTS_P16=${REQUESTS_P16:-2000000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
REDIS_ARGS=${REDIS_ARGS:-}
REDIS_REPLICAS=${REDIS_REPLICAS:-0}

log() { printf '[throughput] %s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null \
    || ! command -v redis-cli >/dev/null; then
    log "installing redis-server (redis-benchmark and redis-cli come with it)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get install -y redis-server
fi

REPLICA_PORTS=$(seq $((REDIS_PORT + 1)) $((REDIS_PORT + REDIS_REPLICAS)))
for port in $REDIS_PORT $REPLICA_PORTS $MESH_PORT; do
    if redis-cli -p "$port" PING >/dev/null 2>&1; then
        log "something already answers on 127.0.0.1:$port; stop it first"
        exit 1
    fi
done

log "building (release)"
cargo build --release --quiet

WORK=$(mktemp -d -t sessionmesh-bench.XXXXXX)
REDIS_PID=""
REDIS_PIDS=""
MESH_PID=""
cleanup() {
    local pid
    for pid in $MESH_PID $REDIS_PIDS; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in $MESH_PID $REDIS_PIDS; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting redis-server on $REDIS_PORT"
# shellcheck disable=SC2086 # REDIS_ARGS is a list of arguments
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$WORK" $REDIS_ARGS >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
REDIS_PIDS=$REDIS_PID
for port in $REPLICA_PORTS; do
    log "starting a redis-server replica on $port"
    mkdir -p "$WORK/replica-$port"
    # shellcheck disable=SC2086 # REDIS_ARGS is a list of arguments
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$WORK/replica-$port" --replicaof 127.0.0.1 "$REDIS_PORT" $REDIS_ARGS \
        >>"$WORK/redis.log" 2>&1 &
    REDIS_PIDS="$REDIS_PIDS $!"
done

log "starting sessionmesh demo (us-east on $MESH_PORT) $*"
# `cargo run` replaces itself with the binary on Unix, so $! is the node process.
DIRECT=--direct
[ "${RELAYS:-0}" = 1 ] && DIRECT=
# shellcheck disable=SC2086 # DIRECT is empty or one flag
cargo run --release --quiet -- demo $DIRECT --data "$WORK/demo" "$@" >"$WORK/mesh.log" 2>&1 &
MESH_PID=$!

wait_for() { # name, command...
    local name=$1
    shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    log "$name did not come up in 30 s; its log:"
    cat "$WORK/redis.log" "$WORK/mesh.log" >&2
    exit 1
}
pong() { [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; }
wait_for redis-server pong $REDIS_PORT
linked() { redis-cli -p "$1" INFO replication 2>/dev/null | grep -q '^master_link_status:up'; }
for port in $REPLICA_PORTS; do
    wait_for "redis-server replica on $port" linked "$port"
done
wait_for sessionmesh pong $MESH_PORT
wait_for "sessionmesh links" curl -sf "http://$MESH_HTTP/ready"

# CPU time (user + system, in clock ticks) the processes have used so far, all threads.
cpu_ticks() { # pid...
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}
TICK_HZ=$(getconf CLK_TCK)

# One redis-benchmark run per test, each capped at RUN_TIMEOUT; prints "TEST RPS CPU_US" lines,
# CPU_US being the server process's CPU time per request in microseconds. On a shared machine
# requests/s move with the neighbours; CPU per request moves much less, and says what each
# server spends (sessionmesh's figure covers all three regions: the demo runs them in one
# process; Redis's covers its replicas when there are any).
run_bench() { # port, "pid...", requests, pipeline
    local test out before after
    for test in ${TESTS:-set get hset}; do
        local args=(-h 127.0.0.1 -p "$1" -c "$CLIENTS" -n "$3" -P "$4" -t "$test" --csv)
        if [ "$KEYSPACE" != 0 ]; then args+=(-r "$KEYSPACE"); fi
        # shellcheck disable=SC2206 # words on purpose
        args+=(${BENCH_ARGS:-})
        # shellcheck disable=SC2086 # a list of pids
        before=$(cpu_ticks $2)
        if out=$(timeout "$RUN_TIMEOUT" redis-benchmark "${args[@]}"); then
            # shellcheck disable=SC2086 # a list of pids
            after=$(cpu_ticks $2)
            echo "$out" | tr -d '"' | awk -F, -v t=$((after - before)) -v n="$3" -v hz="$TICK_HZ" \
                '$1 != "test" { printf "%s %s %.2f\n", $1, $2, t * 1e6 / hz / n }'
        else
            echo "${test^^} timeout -"
        fi
    done
}

RESULTS="$WORK/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    for pipeline in 1 16; do
        if [ "$pipeline" = 1 ]; then n=$REQUESTS; else n=$REQUESTS_P16; fi
        log "round $round, -P $pipeline, -n $n: redis-server"
        run_bench $REDIS_PORT "$REDIS_PIDS" "$n" "$pipeline" | sed "s/^/$round $pipeline redis /" >>"$RESULTS"
        log "round $round, -P $pipeline, -n $n: sessionmesh"
        run_bench $MESH_PORT "$MESH_PID" "$n" "$pipeline" | sed "s/^/$round $pipeline mesh /" >>"$RESULTS"
    done
done

if ! kill -0 "$MESH_PID" 2>/dev/null; then
    log "sessionmesh exited during the run; its log:"
    cat "$WORK/mesh.log" >&2
    exit 1
fi
# Replication kept up: every region holds as many keys as us-east.
sizes=$(for p in 6401 6402 6403; do redis-cli -p $p DBSIZE 2>/dev/null || echo -; done | tr '\n' ' ')

echo
echo "redis-benchmark -c $CLIENTS -t set,get,hset$([ "$KEYSPACE" != 0 ] && echo " -r $KEYSPACE")" \
    "(-n $REQUESTS unpipelined, -n $REQUESTS_P16 with -P 16); requests/s"
awk '
    function fmt(v) { return (v + 0 > 0) ? sprintf("%.0f", v) : v }
    { key = $1 " " $2 " " $4; rps[key, $3] = $5; cpu[key, $3] = $6; if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
    END {
        printf "%-5s %-4s %-6s %13s %13s %7s %7s %12s %12s\n", "round", "-P", "test", "redis req/s", "mesh req/s", "ratio", "target", "redis us/req", "mesh us/req"
        for (i = 0; i < n; i++) {
            split(order[i], k, " ")
            r = rps[order[i], "redis"]; m = rps[order[i], "mesh"]
            target = (k[2] == 1) ? ">= 1.0" : ">= 0.8"
            ratio = (r + 0 > 0 && m + 0 > 0) ? sprintf("%6.2fx", m / r) : "      -"
            printf "%-5s %-4s %-6s %13s %13s %7s %7s %12s %12s\n", k[1], k[2], k[3], fmt(r), fmt(m), ratio, target, cpu[order[i], "redis"], cpu[order[i], "mesh"]
        }
    }' "$RESULTS"
echo "keys per region after the run (us-east eu-west ap-south): $sizes"
if [ "$REDIS_REPLICAS" != 0 ]; then
    rsizes=$(for p in $REDIS_PORT $REPLICA_PORTS; do redis-cli -p "$p" DBSIZE 2>/dev/null || echo -; done | tr '\n' ' ')
    echo "redis-server with $REDIS_REPLICAS replicas (their CPU counted in redis us/req); keys per server: $rsizes"
fi
