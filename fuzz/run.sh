#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS_PER_TARGET seconds on a scratch copy of the
# committed seed corpus (fuzz/corpus/<target>/, never written to), after replaying the saved
# regressions (fuzz/regressions/<target>/*). Fails on any crash, panic, timeout or OOM and
# prints, per target, executions, executions per second, corpus size and the crash input.
#
# Usage: fuzz/run.sh SECONDS_PER_TARGET
#
# Environment:
#   FUZZ_TARGETS   space-separated subset of targets (default: every target)
#   FUZZ_PARALLEL  targets run at the same time (default 1)
#   FUZZ_KEEP      if set, keep the scratch directory (grown corpora, logs) and print it
#   FUZZ_NO_BUILD  if set, do not build (use the binaries already in fuzz/target)
#   FUZZ_BUILD_FLAGS  extra `cargo fuzz build` flags, e.g. "--codegen-units 16 -s none" for
#                  a faster build (other flags than the defaults rebuild every dependency once)
#
# The build is `RUSTC_BOOTSTRAP=1 cargo fuzz build` (release, debug assertions, AddressSanitizer:
# cargo-fuzz's defaults, the same binaries `cargo fuzz run TARGET` uses) on the stable toolchain.
set -euo pipefail

secs="${1:?usage: fuzz/run.sh SECONDS_PER_TARGET}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
cd "$root"
export RUSTC_BOOTSTRAP=1
# As `cargo fuzz run` sets it: SQLite is linked in twice (sqlx), a harmless ODR report.
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

all_targets="tezos_payload tezos_operations eth2_plan interchange keystore base58check octez_secret_keys key_config remote_key_config octez_signer_messages tezos_secret_key"
targets="${FUZZ_TARGETS:-$all_targets}"
parallel="${FUZZ_PARALLEL:-1}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
profile_dir=release
case " ${FUZZ_BUILD_FLAGS:-} " in *" --dev "*|*" -D "*) profile_dir=debug ;; esac
bin_dir="$fuzz_dir/target/$triple/$profile_dir"
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    start=$(date +%s)
    build_log="$(mktemp "${TMPDIR:-/tmp}/palisade-fuzz-build.XXXXXX")"
    # shellcheck disable=SC2086
    # `cargo fuzz build` takes one target or none (= every target).
    if [ "$targets" = "$all_targets" ]; then build_targets=("")
    else read -r -a build_targets <<<"$targets"; fi
    for bt in "${build_targets[@]}"; do
        # shellcheck disable=SC2086
        if ! cargo fuzz build ${FUZZ_BUILD_FLAGS:-} $bt >>"$build_log" 2>&1; then
            grep -vE '^\s+(Compiling|Checking|Fresh) ' "$build_log" >&2
            echo "fuzz/run.sh: build failed" >&2
            exit 1
        fi
    done
    rm -f "$build_log"
    echo "fuzz build: $(( $(date +%s) - start )) s"
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/palisade-fuzz.XXXXXX")"
if [ -z "${FUZZ_KEEP:-}" ]; then
    trap 'rm -rf "$scratch"' EXIT
fi

# Runs one target; writes its summary line to $scratch/<target>.summary; exit status 0 on success.
run_one() {
    local t="$1" bin="$bin_dir/$1" dir="$scratch/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ ! -x "$bin" ]; then
        echo "$t: FAILED: no binary $bin" >"$dir/summary"
        return 1
    fi
    if [ -d "$fuzz_dir/regressions/$t" ] && [ -n "$(ls -A "$fuzz_dir/regressions/$t")" ]; then
        if ! "$bin" -runs=1 -rss_limit_mb=4096 "$fuzz_dir/regressions/$t"/* >"$dir/regressions.log" 2>&1; then
            echo "$t: FAILED: a saved regression crashes again (log: $dir/regressions.log)" >"$dir/summary"
            tail -n 40 "$dir/regressions.log" >&2
            return 1
        fi
    fi
    cp -r "$fuzz_dir/corpus/$t/." "$dir/corpus/"
    local seeds rc=0
    seeds=$(find "$dir/corpus" -type f | wc -l)
    "$bin" "$dir/corpus" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        >"$dir/fuzz.log" 2>&1 || rc=$?
    local execs rate corpus
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log" | tail -n1)
    corpus=$(find "$dir/corpus" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$dir/artifacts")" ]; then
        {
            echo "$t: FAILED (exit $rc) after ${execs:-?} executions; inputs: $(ls "$dir/artifacts" | tr '\n' ' ')"
        } >"$dir/summary"
        grep -m1 -B2 -A40 -E 'panicked|ERROR: |SUMMARY' "$dir/fuzz.log" >&2 || tail -n 40 "$dir/fuzz.log" >&2
        if [ -z "${FUZZ_KEEP:-}" ]; then
            mkdir -p "$fuzz_dir/artifacts/$t"
            cp "$dir/artifacts/"* "$fuzz_dir/artifacts/$t/" 2>/dev/null || true
            echo "crash inputs copied to fuzz/artifacts/$t/" >&2
        fi
        return 1
    fi
    printf '%-18s %12s execs %8s exec/s  corpus %5s (seeds %s)\n' \
        "$t" "${execs:-0}" "${rate:-0}" "$corpus" "$seeds" >"$dir/summary"
}

failed=0
running=0
for t in $targets; do
    mkdir -p "$scratch/$t"
    ( run_one "$t"; echo $? >"$scratch/$t/rc" ) &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

total=0
for t in $targets; do
    cat "$scratch/$t/summary" 2>/dev/null || echo "$t: FAILED: no summary"
    if [ "$(cat "$scratch/$t/rc" 2>/dev/null || echo 1)" -ne 0 ]; then
        failed=1
    fi
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t/fuzz.log" 2>/dev/null | tail -n1 || true)
    total=$((total + ${n:-0}))
done
echo "total executions: $total"
if [ -n "${FUZZ_KEEP:-}" ]; then
    echo "scratch kept: $scratch"
fi
if [ "$failed" -ne 0 ]; then
    echo "fuzz/run.sh: FAILED" >&2
    exit 1
fi
echo "fuzz/run.sh: every target ran ${secs}s without a crash"
