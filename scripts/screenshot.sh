#!/usr/bin/env bash
# Screenshots of the real program for the README:
#  - docs/img/report.png: report.html of a real `demo` run (stand-in + bridge, with 2 %
#    dropped sends and a 1.5 s stall so every plot has something to show), rendered in
#    headless Chromium (Debian's `chromium`; installed here if missing);
#  - docs/img/live-view.txt: the live view of the same kind of run, captured with tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir="${1:-/tmp/coppelia-bridge-demo-run}"
rm -rf "$run_dir" "$run_dir-tui"
# PROFILE=debug skips the release build (slower program, same pictures).
build="${PROFILE:-release}"
if [ "$build" = release ]; then cargo build --release; else cargo build; fi
bin="target/$build/coppelia-bridge"
demo_flags=(--duration 15s --drop-rate 0.02 --stall-at 6 --stall-for 1.5s --passes-per-frame 2)
"$bin" demo --no-tui --print-interval 1h "${demo_flags[@]}" --out "$run_dir" >/dev/null

command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --screenshot=/tmp/report.png \
  --window-size=1200,3000 "file://$run_dir/report.html"
mkdir -p docs/img
cp /tmp/report.png docs/img/report.png

command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; }
tmux kill-session -t cb-shot 2>/dev/null || true
tmux new-session -d -s cb-shot -x 150 -y 40 "$bin demo ${demo_flags[*]} --out $run_dir-tui"
sleep 11
tmux capture-pane -p -t cb-shot > docs/img/live-view.txt
tmux send-keys -t cb-shot q
sleep 2
tmux kill-session -t cb-shot 2>/dev/null || true
ls -l docs/img/report.png docs/img/live-view.txt
