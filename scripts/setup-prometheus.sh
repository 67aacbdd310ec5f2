#!/bin/sh
# Installs what the Prometheus deployment tests need: Debian's `prometheus` package (the
# server, 2.42 on bookworm, and `promtool`). tests/prometheus_real.rs starts the real server
# against two bridges and runs `promtool check config|rules` on deploy/.
#
# Idempotent: does nothing when both `prometheus` and `promtool` are on PATH.
# Non-interactive: meant for CI (root, fresh Debian, no stdin); uses sudo when not root.
# The package's service is not started here (tests start their own server on loopback);
# policy-rc.d keeps the postinst from starting it where an init system exists.
set -eu

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "setup-prometheus: prometheus and promtool already installed ($(prometheus --version 2>&1 | head -n1))"
    exit 0
fi

. "$(dirname "$0")/lib/apt.sh"
if ! apt_can_install; then
    echo "setup-prometheus: need root (or sudo) to install prometheus with apt-get" >&2
    exit 1
fi
apt_install prometheus

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    echo "setup-prometheus: installed the prometheus package, but prometheus/promtool are not on PATH" >&2
    exit 1
fi
echo "setup-prometheus: $(prometheus --version 2>&1 | head -n1) ready"
