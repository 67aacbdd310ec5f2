#!/bin/sh
# Installs what the network-namespace tests need (tests/net_namespaces.rs): iproute2's `ip`,
# which creates the namespaces and veth pairs. Those tests also need root; without it they
# skip with a message, so this script never fails a run that is not root.
#
# Idempotent: does nothing when `ip` is already there.
# Non-interactive: meant for CI (root, fresh Debian, no stdin); uses sudo when not root.
set -eu

if command -v ip >/dev/null 2>&1 && ip -V >/dev/null 2>&1; then
    echo "setup-net: iproute2 already installed ($(ip -V))"
    exit 0
fi

. "$(dirname "$0")/lib/apt.sh"
if ! apt_can_install; then
    echo "setup-net: iproute2 is missing and there is no root or sudo to install it;" \
        "the network-namespace tests will skip (they need root anyway)" >&2
    exit 0
fi
apt_install iproute2

if ! ip -V >/dev/null 2>&1; then
    echo "setup-net: installed iproute2, but \`ip -V\` still fails" >&2
    exit 1
fi
echo "setup-net: iproute2 ready ($(ip -V))"
