#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: the README's second command.  Builds the project twice (plain, then with
# AddressSanitizer and UndefinedBehaviorSanitizer) and runs the whole CTest suite on each:
# unit tests, the certs-tool test and the end-to-end tests in network namespaces (root).
#
# Usage: sudo tests/run.sh [--no-sanitize]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SANITIZE=1
for arg in "$@"; do
	case $arg in
	--no-sanitize) SANITIZE=0 ;;
	*) echo "run.sh: unknown argument '$arg'" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (sudo): the end-to-end tests build network namespaces" >&2; exit 1; }
command -v protoc-c >/dev/null && command -v cmake >/dev/null && [ -f /usr/include/cmocka.h ] &&
	command -v help2man >/dev/null && command -v dpkg-shlibdeps >/dev/null && command -v systemd-analyze >/dev/null ||
	"$ROOT/deploy/install-deps.sh"

# build_and_test DIR [CMAKE ARGS...]
build_and_test() {
	local dir=$1
	shift
	echo "=== $dir: configure, build, test"
	cmake -S "$ROOT" -B "$dir" -DTN_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j "$(nproc)"
	ctest --test-dir "$dir" --output-on-failure
}

build_and_test "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$SANITIZE" = 1 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		build_and_test "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DTN_SANITIZE=address,undefined
fi
