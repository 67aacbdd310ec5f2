#!/usr/bin/env bash
# Creates .venv with the official CoppeliaSim ZMQ remote API client from PyPI
# (`coppeliasim-zmqremoteapi-client`), used by tests/standin_python.rs to check that the
# stand-in serves the unchanged client. Idempotent: does nothing when the client already
# imports from .venv.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${COPPELIA_BRIDGE_VENV:-.venv}"

if [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import coppeliasim_zmqremoteapi_client' 2>/dev/null; then
    echo "setup-python: $VENV already has coppeliasim_zmqremoteapi_client"
    exit 0
fi

if ! python3 -m venv "$VENV"; then
    echo "setup-python: 'python3 -m venv' failed: install python3-venv (Debian) and retry" >&2
    exit 1
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check coppeliasim-zmqremoteapi-client
"$VENV/bin/python" -c 'import coppeliasim_zmqremoteapi_client' 
echo "setup-python: $VENV ready"
