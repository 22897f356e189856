#!/usr/bin/env bash
# Measures Tezos attestation signing latency (high watermark checked and recorded per request)
# with wrk (Debian package `wrk`) against the release binary, one tz1 key per connection.
# Usage: benches/tezos_latency.sh [database URL] [seconds] [connections]
#   database URL: a postgres:// URL, or empty for a fresh SQLite file (synchronous=FULL)
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:-}
secs=${2:-20}
conns=${3:-1}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
data=$(mktemp -d)
mkdir -p "$data/keys"
# Two tz1 keys from the test vectors (tests/vectors/) (development only).
python3 - "$data/keys" tests/vectors/tezos/vectors.json <<'PY'
import json, sys
out, path = sys.argv[1], sys.argv[2]
eds = [v for v in json.load(open(path))["vectors"] if v["curve"] == "ed25519"]
for i, v in enumerate(eds):
    open(f"{out}/k{i}.yaml", "w").write(f"type: tezos-secret\nsecretKey: \"unencrypted:{v['secret_key']}\"\n")
print(",".join(v["public_key_hash"] for v in eds), file=open(f"{out}/../pkhs", "w"))
PY
db=${db:-sqlite://$data/db.sqlite}
./target/release/palisade serve --http-listen-port 0 --tezos-http-listen-port 0 \
  --key-config-path "$data/keys" --data-dir "$data" --slashing-protection-db-url "$db" >"$data/out" 2>"$data/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 200); do grep -q "tezos API listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
url=$(grep "tezos API listening on" "$data/out" | grep -o 'http://[0-9.:]*' | head -1)
echo "== wrk: ${secs}s, ${conns} connection(s), one tz1 key each, attestation, ${db%%:*}"
PALISADE_TEZOS_KEYS=$(cat "$data/pkhs") wrk -t"$conns" -c"$conns" -d"${secs}s" --latency -s benches/tezos_attestation_load.lua "$url"
