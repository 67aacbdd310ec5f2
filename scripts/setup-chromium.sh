#!/bin/sh
# Installs Debian's `chromium`, which the report's smoke test (tests/report_chromium.rs)
# and scripts/screenshot.sh drive headless: the report must load in a real browser with
# no script error.
#
# Idempotent: does nothing when `chromium` is already on PATH. Never fails the caller:
# where Chromium cannot be installed (no root, no package), it says so and the smoke test
# skips with a message naming this script.
# Non-interactive: meant for CI (root, fresh Debian, no stdin); uses sudo when not root.
set -u

if command -v chromium >/dev/null 2>&1; then
    echo "setup-chromium: chromium already installed ($(chromium --version 2>/dev/null | head -n 1))"
    exit 0
fi

. "$(dirname "$0")/lib/apt.sh"
if ! apt_can_install; then
    echo "setup-chromium: no root or sudo: cannot install chromium; the report's browser smoke test will be skipped" >&2
    exit 0
fi
if apt_install chromium; then
    echo "setup-chromium: chromium ready ($(chromium --version 2>/dev/null | head -n 1))"
else
    echo "setup-chromium: apt-get could not install chromium; the report's browser smoke test will be skipped" >&2
fi
exit 0
