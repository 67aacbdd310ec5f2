#!/usr/bin/env bash
# Writes a sample run directory from the test fixtures, renders its report.html in
# headless Chromium and saves the screenshot to docs/img/report.png.
# Needs Debian's chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir="${1:-/tmp/coppelia-bridge-sample-run}"
COPPELIA_BRIDGE_SAMPLE_RUN="$run_dir" cargo test --test output_report -- --ignored write_sample_run_for_screenshot
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --screenshot=/tmp/report.png \
  --window-size=1200,3000 "file://$run_dir/report.html"
mkdir -p docs/img
cp /tmp/report.png docs/img/report.png
ls -l docs/img/report.png
