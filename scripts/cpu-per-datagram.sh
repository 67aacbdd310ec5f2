#!/usr/bin/env bash
# CPU per datagram of one bridge binary under the pipeline bench's steady load, for A/B
# comparisons of two builds (docs/PERFORMANCE.md): 1,000 emulated dummies x 20 Hz for 20 s,
# sender pinned to CPU 0 and bridge to CPU 1, bridge CPU (utime + stime from /proc/PID/stat)
# over seconds 3..17. Loopback only.
#
#   scripts/cpu-per-datagram.sh BRIDGE_BINARY [run flags...]     e.g. --no-out
#
# DUMMIES and RATE (Hz) change the load (default 1000 x 20): the same rate from 20 dummies
# keeps every dummy's state in cache, which separates cache misses from instructions.
#
# Alternate the builds you compare (A B A B ...): one run's figure varies by about 10 %.
set -euo pipefail
dummies=${DUMMIES:-1000}
rate=${RATE:-20}
bridge=${1:?usage: $0 BRIDGE_BINARY [run flags...]}
shift
cd "$(dirname "$0")/.."
cargo bench --bench pipeline --no-run >/dev/null 2>&1
sender=$(ls -t target/release/deps/pipeline-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Always called with &: exec makes $! the program itself, whose CPU is read.
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }
RUST_LOG=info NO_COLOR=1 pin 1 "$bridge" run --no-remote --no-tui --listen 127.0.0.1:0 \
    --idle-timeout 2s --json-stream --print-interval 1h "$@" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "127.0.0.1:[0-9]" "$work/err" && break; sleep 0.1; done
port=$(grep -o "127.0.0.1:[0-9]*" "$work/err" | head -1 | cut -d: -f2)
[ -n "$port" ] || { echo "the bridge did not start:" >&2; cat "$work/err" >&2; exit 1; }
pin 0 "$sender" --role=sender --to="127.0.0.1:$port" --dummies="$dummies" --rate="$rate" --seconds=20 &
spid=$!
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sleep 3
t0=$(ticks); w0=$(date +%s.%N)
sleep 14
t1=$(ticks); w1=$(date +%s.%N)
wait "$spid"; wait "$pid" || true
python3 -c "print('%.2f us/datagram' % (($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / (($w1 - $w0) * $dummies * $rate)))"
