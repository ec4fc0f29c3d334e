#!/usr/bin/env bash
# Restart time with many ~1 KB sessions (SPEC §8: 1M sessions of 1 KB, serving again in ≤ 5 s).
#
# Starts one region (`sessionmesh serve`, durability "always") on loopback ports 16501/17501/19501
# with a fresh data folder, loads sessions with redis-benchmark (SET, 1000-byte values, random
# keys: DBSIZE reports how many distinct keys that made), waits for a snapshot, kills the node
# with SIGKILL, restarts it on the same folder and reports the time until it answers PING and
# until DBSIZE is back. Loopback only. Needs redis-benchmark/redis-cli (installed if missing).
#
#   bench/restart.sh                 # 1,000,000 SETs
#   REQUESTS=200000 bench/restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-1000000}
command -v redis-benchmark >/dev/null || apt-get install -y redis-server >/dev/null
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/r.toml" <<TOML
[replication]
flush_interval_ms = 2
[persistence]
data_dir = "data"
durability = "always"
snapshot_every_secs = 5
[[regions]]
name = "solo"
id = 1
redis = "127.0.0.1:16501"
gossip = "127.0.0.1:17501"
http = "127.0.0.1:19501"
TOML
cargo build --release -q
bin=target/release/sessionmesh
$bin certs --config "$work/r.toml" --out "$work/certs" >/dev/null
start() { $bin serve --config "$work/r.toml" --region solo >>"$work/log" 2>&1 & pid=$!; }
wait_ping() { until redis-cli -p 16501 ping >/dev/null 2>&1; do sleep 0.01; done; }
start; wait_ping
echo "loading: redis-benchmark -p 16501 -t set -d 1000 -r $REQUESTS -n $REQUESTS -P 16 -c 50"
redis-benchmark -p 16501 -t set -d 1000 -r "$REQUESTS" -n "$REQUESTS" -P 16 -c 50 -q | tail -1
keys=$(redis-cli -p 16501 dbsize)
echo "keys: $keys; waiting for a snapshot"
sleep 8
ls -la "$work/data/solo" | grep -E "snap|log" || true
kill -9 $pid; wait $pid 2>/dev/null || true
t0=$(date +%s.%N)
start; wait_ping
t1=$(date +%s.%N)
until [ "$(redis-cli -p 16501 dbsize)" = "$keys" ]; do sleep 0.01; done
t2=$(date +%s.%N)
echo "restart: PING answered after $(awk "BEGIN{print $t1 - $t0}") s, all $keys keys after $(awk "BEGIN{print $t2 - $t0}") s"
grep -i "recovered\|snapshot" "$work/log" | tail -3 || true
