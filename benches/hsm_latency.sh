#!/usr/bin/env bash
# Per-signature latency of Tezos keys in a PKCS#11 HSM (SoftHSM2) beside the same keys held in
# memory, for each curve, with wrk (Debian packages `wrk`, `softhsm2`) against the release
# binary. Each request is an attestation at a new level, so it is a full policy check, HSM (or
# in-memory) signature and high-watermark check-and-record in SQLite (synchronous=FULL).
# Usage: benches/hsm_latency.sh [seconds per run] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-1}
module=/usr/lib/softhsm/libsofthsm2.so
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
[ -e "$module" ] || { echo "install softhsm2 (apt-get install softhsm2)"; exit 1; }
cargo build --release --quiet
bin=./target/release/palisade
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

# A fresh SoftHSM token.
mkdir -p "$work/tokens" "$work/hsm-keys" "$work/mem-keys" "$work/hsm-data" "$work/mem-data"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf
softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 87654321 >/dev/null
echo 87654321 >"$work/pin"
token=(--module "$module" --token-label bench --pin-file "$work/pin")

# One key per curve from the test vectors (tests/vectors/) (development keys): imported into the HSM and
# configured in memory, so both servers hold the same keys.
python3 - "$work" tests/vectors/tezos/vectors.json <<'PY'
import json, sys
work, path = sys.argv[1], sys.argv[2]
seen = {}
for v in json.load(open(path))["vectors"]:
    if v["curve"] in ("ed25519", "secp256k1", "p256") and v["curve"] not in seen:
        seen[v["curve"]] = v
with open(f"{work}/curves", "w") as f:
    for curve, v in seen.items():
        open(f"{work}/{curve}.secret", "w").write(v["secret_key"] + "\n")
        open(f"{work}/mem-keys/{curve}.yaml", "w").write(
            f"type: tezos-secret\nsecretKey: \"unencrypted:{v['secret_key']}\"\n")
        f.write(f"{curve} {v['public_key_hash']}\n")
PY
while read -r curve pkh; do
  $bin hsm import-tezos "${token[@]}" --secret-key-file "$work/$curve.secret" --label "$curve" >/dev/null 2>&1
  printf 'type: pkcs11\nmodule: %s\ntokenLabel: bench\npinFile: %s/pin\nkeyLabel: %s\n' "$module" "$work" "$curve" >"$work/hsm-keys/$curve.yaml"
done <"$work/curves"

start() { # start <name>: prints the Tezos URL
  $bin serve --http-listen-port 0 --tezos-http-listen-port 0 --key-config-path "$work/$1-keys" \
    --data-dir "$work/$1-data" >"$work/$1.out" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q "tezos API listening on" "$work/$1.out" 2>/dev/null && break; sleep 0.1; done
  grep "tezos API listening on" "$work/$1.out" | grep -o 'http://[0-9.:]*' | head -1
}
hsm_url=$(start hsm)
mem_url=$(start mem)

echo "== wrk: ${secs}s per run, ${conns} connection(s), attestations at new levels, SQLite"
printf '%-10s %-7s %9s %9s %9s\n' curve backend p50 p99 req/s
while read -r curve pkh; do
  for backend in hsm mem; do
    if [ "$backend" = mem ]; then url=$mem_url; label=memory; else url=$hsm_url; label=softhsm; fi
    out=$(PALISADE_TEZOS_KEYS=$pkh wrk -t"$conns" -c"$conns" -d"${secs}s" --latency \
      -s benches/tezos_attestation_load.lua "$url")
    if echo "$out" | grep -q "Non-2xx"; then echo "$out"; echo "non-2xx responses: failed"; exit 1; fi
    p50=$(echo "$out" | awk '$1=="50%"{print $2}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    printf '%-10s %-7s %9s %9s %9s\n' "$curve" "$label" "$p50" "$p99" "$rps"
  done
done <"$work/curves"
exit 0
