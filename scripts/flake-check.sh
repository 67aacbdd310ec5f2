#!/usr/bin/env bash
# Flake check (issue 11 §5; not part of scripts/test.sh): runs the test suite RUNS times in a
# row (default 3) while `stress-ng --cpu N` (default: every CPU) keeps the CPUs busy, and
# prints pass/fail and the duration of each run. Exits non-zero if any run failed.
#
#   scripts/flake-check.sh [RUNS]             # cargo test --all-targets --no-fail-fast
#   FLAKE_CMD="SKIP_FUZZ=1 bash scripts/test.sh" scripts/flake-check.sh 3   # the whole command
#
# Installs stress-ng (Debian package) when missing and root. Logs go to target/flake-check/.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
cpus=${STRESS_CPUS:-$(nproc)}
cmd=${FLAKE_CMD:-cargo test --all-targets --no-fail-fast}
logs=target/flake-check
mkdir -p "$logs"

if ! command -v stress-ng >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null
    else
        echo "stress-ng is missing: apt-get install stress-ng" >&2
        exit 2
    fi
fi

# Build first, unloaded and untimed: the runs measure the tests, not the compiler.
cargo test --all-targets --no-run --quiet

stress-ng --cpu "$cpus" --timeout 0 --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true' EXIT
sleep 1
echo "== $runs runs of: $cmd   (stress-ng --cpu $cpus, pid $stress)"

failed=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    if bash -c "$cmd" >"$logs/run$i.log" 2>&1; then result=pass; else result=FAIL; failed=1; fi
    took=$(($(date +%s) - start))
    tests=$(grep -E '^test result:' "$logs/run$i.log" |
        awk '{p+=$4; f+=$6; i+=$8} END {printf "%d passed, %d failed, %d ignored", p, f, i}')
    echo "run $i: $result in ${took} s ($tests; load average $(cut -d' ' -f1-3 /proc/loadavg)); log $logs/run$i.log"
    if [ "$result" = FAIL ]; then
        grep -E '^test .* FAILED$|^---- .* stdout ----$|panicked at' "$logs/run$i.log" | head -20 || true
    fi
done
exit "$failed"
