#!/bin/sh
# Installs what the Lua script tests need: Debian's Lua 5.3 interpreter and LuaSocket.
# CoppeliaSim 4.0-4.10 embeds Lua 5.3 and ships LuaSocket, so the tests run the child script
# under the same language version and socket library (see ../shared/coppeliasim-notes.md §1, §4).
#
# Idempotent: does nothing when `lua5.3` can already `require("socket")`.
# Non-interactive: meant for CI (root, fresh Debian, no stdin); uses sudo when not root.
set -eu

if command -v lua5.3 >/dev/null 2>&1 && lua5.3 -e 'require("socket")' >/dev/null 2>&1; then
    echo "setup-lua: lua5.3 with LuaSocket already installed"
    exit 0
fi

. "$(dirname "$0")/lib/apt.sh"
if ! apt_can_install; then
    echo "setup-lua: need root (or sudo) to install lua5.3 and lua-socket with apt-get" >&2
    exit 1
fi
apt_install lua5.3 lua-socket

if ! lua5.3 -e 'require("socket")' >/dev/null 2>&1; then
    echo "setup-lua: installed lua5.3 and lua-socket, but lua5.3 still cannot require(\"socket\")" >&2
    exit 1
fi
echo "setup-lua: lua5.3 with LuaSocket ready"
