#!/usr/bin/env python3
"""Checks and figures of a soak run (scripts/soak.sh): WORK_DIR DUMMIES WARMUP_S DURATION_S.

WORK_DIR holds emit.stdout, rss.txt ("elapsed_s rss_kib" lines) and run/ (the run directory).
Exits 1 if a check fails. Rerun on a kept run: python3 scripts/soak_check.py DIR 200 120 600
"""
import collections, csv, json, re, statistics, sys

work, dummies, warmup_s, duration_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
failures = []

emit = open(f"{work}/emit.stdout").read()
m = re.search(r"(\d+) stamps sent, (\d+) skipped \(--loss\), (\d+) send errors", emit)
if m:
    emitted, send_errors = int(m.group(1)), int(m.group(3))
    if send_errors:
        failures.append(f"emit had {send_errors} send errors")
else:
    emitted = None
    failures.append("emit's summary line is missing from emit.stdout")

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
if emitted is not None and counted != emitted:
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

# BYE counts, from summary.json (the dummy_bye log lines are rate-limited: 100 per 10 s).
byes = {i: d["bye"]["stamps_sent"] for i, d in ds.items() if d.get("bye")}
mismatch = [(i, byes.get(i), d["messages"]) for i, d in ds.items() if byes.get(i) != d["messages"]]
print(f"BYE: {len(byes)} received, {len(ds) - len(mismatch)} equal to the bridge's count")
for i, said, got in mismatch[:5]:
    failures.append(f"dummy {i}: BYE says {said} stamps sent, the bridge counted {got}")
if len(mismatch) > 5:
    failures.append(f"... and {len(mismatch) - 5} more BYE mismatches")

# RSS after warm-up within ±5 % of its median.
samples = [tuple(map(int, l.split())) for l in open(f"{work}/rss.txt") if l.strip()]
# While measuring (warm-up excluded); after the senders stop, the bridge writes report.html,
# which reads samples.csv back: reported apart, not part of the steady state.
after = [kib for t, kib in samples if warmup_s <= t <= duration_s]
tail = [kib for t, kib in samples if t > duration_s]
if tail:
    print(f"RSS after the load (final files and report.html): peak {max(tail) / 1024:.1f} MiB")
if len(after) < 3:
    failures.append(f"only {len(after)} RSS samples after the {warmup_s} s warm-up")
else:
    med = statistics.median(after)
    lo, hi = min(after), max(after)
    dev = max(hi - med, med - lo) / med * 100
    print(
        f"RSS while measuring: peak {max(k for t, k in samples if t <= duration_s) / 1024:.1f} MiB; after {warmup_s} s warm-up "
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
