#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), one after the other, and
# prints per target: executions, executions per second, coverage, corpus size and crashes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 scene_xml
#
# Installs cargo-fuzz (crates.io) when missing. Runs on the stable toolchain: cargo-fuzz
# passes nightly-only flags (-Zsanitizer=address), which RUSTC_BOOTSTRAP=1 allows on stable.
# Each target starts from its committed seeds (fuzz/seeds/<target>, read only) and its local
# corpus (fuzz/corpus/<target>, kept between runs, not in git); crashes are written to
# fuzz/artifacts/<target>/ and libFuzzer's output to fuzz/logs/<target>.log.
#
# Idempotent; non-interactive (CI runs it as root with no stdin). Exits non-zero if a
# target crashes or fails to build. Set FUZZ_NICE (default 15) to change its priority.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case $seconds in
    '' | *[!0-9]*)
        echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2
        exit 2
        ;;
esac
export RUSTC_BOOTSTRAP=1
nice_level=${FUZZ_NICE:-15}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked </dev/null
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# libFuzzer options for every target:
# - malloc_limit_mb: one allocation above this is reported as a crash, so a few bytes
#   claiming a huge length cannot make a decoder allocate without bound;
# - timeout: an input taking longer than this (seconds) is a hang, reported as a crash;
# - max_len: inputs up to this size; targets with caps above it get more (see below).
common=(-malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)

max_len() {
    case $1 in
        # Must exceed the 8 KiB head cap (MAX_HEAD) so the cap itself is exercised.
        prometheus_http) echo 12288 ;;
        # Room for nested objects and long scripts.
        scene_xml) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

echo "== building ${#targets[@]} fuzz targets"
for t in "${targets[@]}"; do
    # -a: debug assertions and overflow checks on, so arithmetic overflow is a finding.
    nice -n "$nice_level" cargo fuzz build -a "$t" </dev/null
done

mkdir -p fuzz/logs
failed=()
rows=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    log="fuzz/logs/$t.log"
    echo "== $t: ${seconds}s"
    set +e
    nice -n "$nice_level" cargo fuzz run -a "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" "${common[@]}" \
        </dev/null >"$log" 2>&1
    status=$?
    set -e
    after=$(find "fuzz/artifacts/$t" -type f | wc -l)
    crashes=$((after - before))
    # The last status line: "#N  DONE  cov: C ft: F corp: U/S ...".
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\)\/\([0-9a-zA-Z]*\).*/\1 (\2)/p')
    rows+=("$(printf '%-18s %12s %9s %6s %7s %-14s %s' "$t" "${execs:--}" "${rate:--}" \
        "${cov:--}" "${ft:--}" "${corp:--}" "$crashes")")
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed+=("$t")
        echo "fuzz: $t failed (exit $status, $crashes new crash files); end of $log:" >&2
        grep -E 'panicked at|ERROR|SUMMARY|Test unit written|Running:' "$log" | head -n 20 >&2 || true
        tail -n 5 "$log" >&2
    fi
done

echo "== fuzzing summary (${seconds}s per target)"
printf '%-18s %12s %9s %6s %7s %-14s %s\n' target executions exec/s cov ft "corpus (size)" crashes
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -a TARGET fuzz/artifacts/TARGET/FILE)" >&2
    exit 1
fi
