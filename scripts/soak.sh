#!/usr/bin/env bash
# Soak test (issue 11 §6; not part of scripts/test.sh): 200 dummies × 50 Hz through the whole
# pipeline (`coppelia-bridge emit` → UDP → `coppelia-bridge run` → run directory) for
# MINUTES (default 10), release build. Checks, and exits non-zero if any fails:
#   1. zero loss: every dummy's `lost` is 0 in summary.json, and no kernel drop;
#   2. memory: every VmRSS sample of the bridge after the warm-up (the first 20 % of the
#      run, at least 60 s) is within ±5 % of the median of those samples;
#   3. every message is in samples.csv: per dummy, the rows are exactly seq 0..n-1 once each,
#      n = the bridge's message count = emit's count of stamps sent;
#   4. each dummy's BYE (emit sends what sysCall_cleanup sends) counts as many stamps as the
#      bridge counted for it.
# Prints the figures. Usage: scripts/soak.sh [MINUTES]   (SOAK_DIR=... keeps the run there)
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

python3 - "$work" "$dummies" "$warmup_s" <<'EOF' && check_status=0 || check_status=$?
import collections, csv, json, re, statistics, sys

work, dummies, warmup_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failures = []

emit = open(f"{work}/emit.stdout").read()
m = re.search(r"(\d+) stamps sent, (\d+) skipped \(--loss\), (\d+) send errors", emit)
emitted, send_errors = int(m.group(1)), int(m.group(3))
if send_errors:
    failures.append(f"emit had {send_errors} send errors")

summary = json.load(open(f"{work}/run/summary.json"))
final = summary["final"]
ds = {d["id"]: d for d in final["dummies"]}
counted = sum(d["messages"] for d in ds.values())
lost = sum(d["loss"]["lost"] for d in ds.values())
drops = final.get("kernel_drops")
print(f"dummies {len(ds)} (expected {dummies}); messages counted {counted}, emitted {emitted}")
print(f"loss: {lost} lost, kernel drops {drops}")
if len(ds) != dummies:
    failures.append(f"{len(ds)} dummies in the summary, expected {dummies}")
if lost:
    failures.append(f"{lost} messages lost")
if drops:
    failures.append(f"{drops} kernel drops")
if counted != emitted:
    failures.append(f"the bridge counted {counted} messages, emit sent {emitted}")

# samples.csv: every (dummy, seq) exactly once, seq 0..n-1, n = the bridge's count.
seqs = collections.defaultdict(list)
rows = 0
with open(f"{work}/run/samples.csv", newline="") as f:
    reader = csv.reader(f)
    header = next(reader)
    i_dummy, i_seq = header.index("dummy"), header.index("seq")
    for row in reader:
        rows += 1
        seqs[int(row[i_dummy])].append(int(row[i_seq]))
print(f"samples.csv: {rows} rows")
bad_rows = 0
for i, d in ds.items():
    s = seqs.get(i, [])
    n = d["messages"]
    if len(s) != n or sorted(s) != list(range(n)):
        bad_rows += 1
        if bad_rows <= 5:
            failures.append(f"{d['name']}: {len(s)} rows in samples.csv, {len(set(s))} distinct seqs, bridge counted {n}")
if rows != counted:
    failures.append(f"samples.csv has {rows} rows, the bridge counted {counted}")

# BYE counts, from the dummy_bye events ("... said goodbye: N stamps sent, ...").
byes = {}
for line in open(f"{work}/run/events.jsonl"):
    e = json.loads(line)
    if e["kind"] == "dummy_bye":
        byes[e["dummy"]] = int(re.search(r"(\d+) stamps sent", e["message"]).group(1))
mismatch = [(i, byes.get(i), d["messages"]) for i, d in ds.items() if byes.get(i) != d["messages"]]
print(f"BYE: {len(byes)} received, {len(ds) - len(mismatch)} equal to the bridge's count")
for i, said, got in mismatch[:5]:
    failures.append(f"dummy {i}: BYE says {said} stamps sent, the bridge counted {got}")
if len(mismatch) > 5:
    failures.append(f"... and {len(mismatch) - 5} more BYE mismatches")

# RSS after warm-up within ±5 % of its median.
samples = [tuple(map(int, l.split())) for l in open(f"{work}/rss.txt") if l.strip()]
after = [kib for t, kib in samples if t >= warmup_s]
if len(after) < 3:
    failures.append(f"only {len(after)} RSS samples after the {warmup_s} s warm-up")
else:
    med = statistics.median(after)
    lo, hi = min(after), max(after)
    dev = max(hi - med, med - lo) / med * 100
    print(
        f"RSS: peak {max(k for _, k in samples) / 1024:.1f} MiB; after {warmup_s} s warm-up "
        f"({len(after)} samples every few s): median {med / 1024:.1f} MiB, min {lo / 1024:.1f}, "
        f"max {hi / 1024:.1f}, largest deviation {dev:.2f} %, first→last {after[0] / 1024:.1f}→{after[-1] / 1024:.1f} MiB"
    )
    if dev > 5.0:
        failures.append(f"RSS deviates {dev:.2f} % from its median after warm-up (limit 5 %)")

lat = final.get("latency")
if lat:
    print(f"latency over the run (µs): p50 {lat.get('p50_us')} p99 {lat.get('p99_us')} max {lat.get('max_us')}")
if final.get("backlog"):
    b = final["backlog"]
    print(f"read backlog (µs): p50 {b.get('p50_us')} p99 {b.get('p99_us')} max {b.get('max_us')}")

if failures:
    print("FAILED:")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print("PASSED: zero loss, RSS stable, every message in samples.csv, every BYE matches")
EOF
[ "$emit_status" -eq 0 ] || { echo "emit failed ($emit_status)" >&2; exit 1; }
[ "$bridge_status" -eq 0 ] || { echo "the bridge failed ($bridge_status): $work/bridge.stderr" >&2; exit 1; }
exit "$check_status"
