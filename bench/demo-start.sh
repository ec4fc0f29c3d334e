#!/usr/bin/env bash
# Time from starting `sessionmesh demo` (release build, fresh data folder) until every region
# answers PING, and until us-east's /ready says all its peer links are up (issue 13: demo to
# serving in <= 1 s). Needs redis-cli (bench/throughput.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
DATA=$(mktemp -d -t sessionmesh-demo.XXXXXX)
start=$(date +%s%N)
./target/release/sessionmesh demo --data "$DATA" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
ms() { echo $((($(date +%s%N) - start) / 1000000)); }
for port in 6401 6402 6403; do
    until [ "$(redis-cli -p $port PING 2>/dev/null)" = PONG ]; do sleep 0.005; done
    echo "127.0.0.1:$port answers PING after $(ms) ms"
done
ready() { # GET /ready on us-east's HTTP port, without curl
    exec 3<>/dev/tcp/127.0.0.1/9401 || return 1
    printf 'GET /ready HTTP/1.0\r\n\r\n' >&3
    head -1 <&3 | grep -q ' 200 '
}
until ready 2>/dev/null; do sleep 0.005; done
echo "us-east ready (every peer link up) after $(ms) ms"
