#!/usr/bin/env bash
# Two builds of sessionmesh side by side: the same redis-benchmark runs against build A, then
# build B, round after round, in one run, and the table gives each one's requests/s and server
# CPU time per request, with B/A ratios. This is how a refactoring shows it costs nothing.
#
# Usage:
#   bench/ab.sh BIN_A BIN_B [ARGS FOR `sessionmesh demo`...]
# BIN_A and BIN_B are `sessionmesh` binaries (build the older one in a worktree:
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release)
#   bench/ab.sh /tmp/old/target/release/sessionmesh target/release/sessionmesh \
#       --config bench/one-region.toml
# ). The remaining arguments go to `demo --direct` unchanged, as in bench/throughput.sh: no
# `--config` runs the three regions of regions.toml replicating in one process; with
# `--config bench/one-region.toml` us-east runs alone.
#
# Environment (defaults in brackets): REQUESTS [200000], REQUESTS_P16 [2000000], CLIENTS [50],
# KEYSPACE [100000], ROUNDS [2], RUN_TIMEOUT [60] — as in bench/throughput.sh.
#
# The machine is shared: requests/s move with the neighbours; CPU per request moves much less.
# Rounds alternate A and B so that a slow spell hurts both.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 BIN_A BIN_B [demo args...]" >&2
    exit 2
fi
BIN_A=$(realpath "$1")
BIN_B=$(realpath "$2")
shift 2
cd "$(dirname "$0")/.."

MESH_PORT=6401
MESH_HTTP=127.0.0.1:9401
REQUESTS=${REQUESTS:-200000}
REQUESTS_P16=${REQUESTS_P16:-2000000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}

log() { printf '[ab] %s\n' "$*" >&2; }

if ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server (redis-benchmark and redis-cli come with it)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get install -y redis-server
fi
if redis-cli -p "$MESH_PORT" PING >/dev/null 2>&1; then
    log "something already answers on 127.0.0.1:$MESH_PORT; stop it first"
    exit 1
fi

WORK=$(mktemp -d -t sessionmesh-ab.XXXXXX)
MESH_PID=""
stop_mesh() {
    if [ -n "$MESH_PID" ] && kill -0 "$MESH_PID" 2>/dev/null; then
        kill "$MESH_PID" 2>/dev/null || true
        wait "$MESH_PID" 2>/dev/null || true
    fi
    MESH_PID=""
}
cleanup() {
    stop_mesh
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # name, command...
    local name=$1
    shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    log "$name did not come up in 30 s; its log:"
    cat "$WORK/mesh.log" >&2
    exit 1
}
pong() { [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_HZ=$(getconf CLK_TCK)

# Prints "TEST RPS CPU_US" for set, get, hset against the running demo.
run_bench() { # requests, pipeline
    local test out before after
    for test in set get hset; do
        local args=(-h 127.0.0.1 -p "$MESH_PORT" -c "$CLIENTS" -n "$1" -P "$2" -t "$test" --csv)
        if [ "$KEYSPACE" != 0 ]; then args+=(-r "$KEYSPACE"); fi
        before=$(cpu_ticks "$MESH_PID")
        if out=$(timeout "$RUN_TIMEOUT" redis-benchmark "${args[@]}"); then
            after=$(cpu_ticks "$MESH_PID")
            echo "$out" | tr -d '"' | awk -F, -v t=$((after - before)) -v n="$1" -v hz="$TICK_HZ" \
                '$1 != "test" { printf "%s %s %.2f\n", $1, $2, t * 1e6 / hz / n }'
        else
            echo "${test^^} timeout -"
        fi
    done
}

RESULTS="$WORK/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    for which in A B; do
        if [ "$which" = A ]; then bin=$BIN_A; else bin=$BIN_B; fi
        rm -rf "$WORK/demo"
        log "round $round: build $which ($bin) demo --direct $*"
        "$bin" demo --direct --data "$WORK/demo" "$@" >"$WORK/mesh.log" 2>&1 &
        MESH_PID=$!
        wait_for sessionmesh pong $MESH_PORT
        wait_for "sessionmesh links" curl -sf "http://$MESH_HTTP/ready"
        for pipeline in 1 16; do
            if [ "$pipeline" = 1 ]; then n=$REQUESTS; else n=$REQUESTS_P16; fi
            run_bench "$n" "$pipeline" | sed "s/^/$round $pipeline $which /" >>"$RESULTS"
        done
        stop_mesh
    done
done

echo
echo "redis-benchmark -c $CLIENTS -t set,get,hset$([ "$KEYSPACE" != 0 ] && echo " -r $KEYSPACE")" \
    "(-n $REQUESTS unpipelined, -n $REQUESTS_P16 with -P 16); demo --direct $*"
echo "A = $BIN_A"
echo "B = $BIN_B"
awk '
    { key = $1 " " $2 " " $4; rps[key, $3] = $5; cpu[key, $3] = $6; if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
    END {
        printf "%-5s %-4s %-6s %11s %11s %7s %9s %9s %7s\n", "round", "-P", "test", "A req/s", "B req/s", "B/A", "A us/req", "B us/req", "B/A"
        for (i = 0; i < n; i++) {
            split(order[i], k, " ")
            a = rps[order[i], "A"]; b = rps[order[i], "B"]
            ca = cpu[order[i], "A"]; cb = cpu[order[i], "B"]
            r = (a + 0 > 0 && b + 0 > 0) ? sprintf("%6.2fx", b / a) : "      -"
            c = (ca + 0 > 0 && cb + 0 > 0) ? sprintf("%6.2fx", cb / ca) : "      -"
            printf "%-5s %-4s %-6s %11.0f %11.0f %7s %9s %9s %7s\n", k[1], k[2], k[3], a, b, r, ca, cb, c
        }
    }' "$RESULTS"
