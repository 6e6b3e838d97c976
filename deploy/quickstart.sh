#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# quickstart.sh: the README's first command.  Installs what is needed, builds, and runs the demo:
# relay, proxy in a simulated LAN and client, each in its own network namespace, with real
# traffic through the tunnel.  Everything it creates is removed when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "quickstart.sh: run as root (sudo)" >&2; exit 1; }
"$ROOT/deploy/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)"
exec "$ROOT/deploy/demo.sh" "$@"
