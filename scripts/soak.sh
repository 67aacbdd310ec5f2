#!/usr/bin/env bash
# Soak test (issue 11 §6; not part of scripts/test.sh): 200 dummies × 50 Hz through the whole
# pipeline (`coppelia-bridge emit` → UDP → `coppelia-bridge run` → run directory) for
# MINUTES (default 10), release build. Checks, and exits non-zero if any fails:
#   1. zero loss: every dummy's `lost` is 0 in summary.json, and no kernel drop;
#   2. memory: every VmRSS sample of the bridge after the warm-up (default: the first 20 %
#      of the run, at least 60 s) is within ±5 % of the median of those samples;
#   3. every message is in samples.csv: per dummy, the rows are exactly seq 0..n-1 once each,
#      n = the bridge's message count = emit's count of stamps sent;
#   4. each dummy's BYE (emit sends what sysCall_cleanup sends) counts as many stamps as the
#      bridge counted for it.
# Prints the figures. Usage: scripts/soak.sh [MINUTES]   (SOAK_DIR=... keeps the run there,
# SOAK_WARMUP_S=... overrides the warm-up, SOAK_DUMMIES / SOAK_RATE_HZ the load)
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
dummies=${SOAK_DUMMIES:-200}
rate_hz=${SOAK_RATE_HZ:-50}
sample_every_s=5
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || [ "$minutes" -lt 1 ]; then
    echo "usage: scripts/soak.sh [MINUTES]   (a whole number ≥ 1; got '$minutes')" >&2
    exit 2
fi
duration_s=$((minutes * 60))
warmup_s=$((duration_s / 5))
[ "$warmup_s" -lt 60 ] && warmup_s=60
warmup_s=${SOAK_WARMUP_S:-$warmup_s}

echo "== build (release)"
cargo build --release --quiet --bin coppelia-bridge
bin=target/release/coppelia-bridge

work=${SOAK_DIR:-$(mktemp -d)}
mkdir -p "$work"
out="$work/run"
rm -rf "$out"
echo "== soak: $dummies dummies × $rate_hz Hz for $minutes min, run directory $out"

RUST_LOG=info "$bin" run --no-remote --no-tui --json-stream --print-interval 1h \
    --listen 127.0.0.1:0 \
    --idle-timeout 5s --out "$out" >"$work/bridge.stdout" 2>"$work/bridge.stderr" &
bridge=$!
cleanup() { kill "$bridge" 2>/dev/null || true; }
trap cleanup EXIT

addr=
for _ in $(seq 1 600); do
    addr=$(grep -o 'listening for UDP datagrams on [0-9.:]*' "$work/bridge.stderr" 2>/dev/null |
        awk '{print $NF}' || true)
    [ -n "$addr" ] && break
    kill -0 "$bridge" 2>/dev/null || { cat "$work/bridge.stderr" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { echo "the bridge never said where it listens" >&2; exit 1; }

# VmRSS of the bridge every few seconds, as "elapsed_s rss_kib".
(
    t=0
    while kill -0 "$bridge" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$bridge/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$t $rss"
        sleep "$sample_every_s"
        t=$((t + sample_every_s))
    done
) >"$work/rss.txt" &
sampler=$!

started=$(date +%s)
"$bin" emit --to "$addr" --dummies "$dummies" --rate-hz "$rate_hz" --duration "${duration_s}s" \
    >"$work/emit.stdout" && emit_status=0 || emit_status=$?
wait "$bridge" && bridge_status=0 || bridge_status=$?
trap - EXIT
wait "$sampler" || true
elapsed=$(($(date +%s) - started))

echo "== figures"
echo "emit: $(cat "$work/emit.stdout")"
echo "bridge exit status $bridge_status, emit exit status $emit_status, wall ${elapsed} s"

python3 scripts/soak_check.py "$work" "$dummies" "$warmup_s" "$duration_s" && check_status=0 || check_status=$?
[ "$emit_status" -eq 0 ] || { echo "emit failed ($emit_status)" >&2; exit 1; }
[ "$bridge_status" -eq 0 ] || { echo "the bridge failed ($bridge_status): $work/bridge.stderr" >&2; exit 1; }
exit "$check_status"
