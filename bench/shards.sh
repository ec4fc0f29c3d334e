#!/usr/bin/env bash
# Throughput against the number of shards and of worker threads, one region, side by side with
# redis-server (issue 13: "pick the default from measurements"; the scaling figure).
#
# For every N in SHARDS_LIST and every W in WORKERS_LIST it runs bench/throughput.sh on one
# region (bench/one-region.toml, `everysec`) with `[cluster] shards = N`, `[redis] io_threads
# = W` and TOKIO_WORKER_THREADS=W, Redis with `appendfsync everysec`, and redis-benchmark with
# `--threads T` (T = CLIENT_THREADS, default W) so the client is not what limits a large
# machine. It prints each run's table; the README's shard table comes from this script.
#
# Usage: bench/shards.sh
# Environment (defaults in brackets):
#   SHARDS_LIST [1 4 8]            shard counts to try
#   WORKERS_LIST [all cores]       worker thread counts to try (e.g. "1 2 $(nproc)")
#   CLIENT_THREADS [= workers]     redis-benchmark --threads
#   CONFIG [bench/one-region.toml] the config each shard count is added to (bench/everysec.toml
#                                  with REDIS_REPLICAS=2: three regions replicating)
#   plus everything bench/throughput.sh reads (REQUESTS, REQUESTS_P16, CLIENTS, KEYSPACE, ...)
# Unchanged on a larger machine: with WORKERS_LIST="1 2 $(nproc)" it prints throughput per
# worker thread count.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARDS_LIST=${SHARDS_LIST:-1 4 8}
WORKERS_LIST=${WORKERS_LIST:-$(nproc)}
export REDIS_ARGS=${REDIS_ARGS:---appendonly yes --appendfsync everysec}

for w in $WORKERS_LIST; do
    for n in $SHARDS_LIST; do
        # Next to one-region.toml, so that its relative paths (certs, data) mean the same.
        cfg="bench/.shards-$n.toml"
        # W serving threads (`[redis] io_threads`) and W runtime workers.
        { printf '[cluster]\nshards = %s\n\n' "$n"; cat "${CONFIG:-bench/one-region.toml}"; } |
            sed "s/^\[redis\]\$/[redis]\nio_threads = $w/" >"$cfg"
        trap 'rm -f "$cfg"' EXIT
        echo "== shards $n, worker threads $w, redis-benchmark --threads ${CLIENT_THREADS:-$w}"
        TOKIO_WORKER_THREADS=$w BENCH_ARGS="--threads ${CLIENT_THREADS:-$w}" \
            bench/throughput.sh --config "$cfg"
        rm -f "$cfg"
    done
done
