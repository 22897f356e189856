#!/usr/bin/env bash
# Measures ATTESTATION signing latency through HTTP with wrk (Debian package `wrk`), against
# the release binary on a fresh SQLite database with the development keystores, and prints
# the key load time the server logged. Usage: benches/http_latency.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
conns=${2:-8}
threads=$(( conns < 2 ? conns : 2 ))
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
data=$(mktemp -d)
log=$data/server.log
./target/release/palisade serve --http-listen-port 0 --data-dir "$data" >"$data/out" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 200); do grep -q "listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$data/out" | head -1)
grep "keys loaded" "$log" | sed 's/\x1b\[[0-9;]*m//g'
keys=$(curl -s "$url/api/v1/eth2/publicKeys" | tr -d '[]"')
echo "== wrk: ${secs}s, ${conns} connections, ${threads} threads, ATTESTATION, SQLite synchronous=FULL"
PALISADE_KEYS=$keys wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s benches/attestation_load.lua "$url"
