#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd_test.sh: checks the systemd units of deploy/systemd as `cmake --install` installs
# them.
#
# Installs the build tree under a scratch prefix (the units then name the programs and configs
# there), and runs `systemd-analyze verify` on each unit: it parses every directive, checks
# that ExecStart's program exists and that the man page of Documentation= is found (MANPATH
# points into the prefix).  systemd-analyze only warns about most mistakes and still exits 0,
# so any output counts as a failure, and two broken copies of a unit (an unknown directive, a
# bad value; a missing program) must draw complaints: proof that it verifies here, with or
# without systemd running.  Then the hardening each unit must keep: the directives the
# project promises (README.md, "Install"), ExecReload sending SIGHUP, the relay and proxy as
# the user tunnel with no capability, the client with exactly CAP_NET_ADMIN and CAP_NET_RAW,
# and `systemd-analyze security --offline` exposure at most 2.0 (relay, proxy) or 3.0 (client).
#
# Usage: tests/systemd_test.sh BUILD_DIR
# Exit status: 0 passed, 1 failed, 77 skipped (systemd-analyze missing).
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR}
build=$(cd "$build" && pwd)
UNITS=(tunnel-server tunnel-proxy tunnel-client)

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
pass() { echo "ok: $*"; }

command -v systemd-analyze >/dev/null || {
	echo "SKIP: systemd-analyze is missing (Debian: systemd; deploy/install-deps.sh)"
	exit 77
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tn-systemd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

timeout 60 cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "cmake --install"; }
unitdir=$prefix/lib/systemd/system

# verify UNIT_FILE: systemd-analyze's complaints (empty: none), and its exit status.
verify() {
	local rc=0
	MANPATH=$prefix/share/man SYSTEMD_LOG_COLOR=0 timeout 30 \
		systemd-analyze verify "$1" >"$tmp/verify.out" 2>&1 || rc=$?
	echo "status $rc" >>"$tmp/verify.out"
	[ "$rc" = 0 ] && [ "$(wc -l <"$tmp/verify.out")" = 1 ]
}

# --- the verifier works here: broken units draw complaints ---
sed -e 's/^ProtectSystem=strict$/ProtectSystem=bogus/' -e 's/^\[Service\]$/[Service]\nFrobnicate=yes/' \
	"$unitdir/tunnel-server.service" >"$tmp/broken-value.service"
if verify "$tmp/broken-value.service"; then
	fail "systemd-analyze verify says nothing about ProtectSystem=bogus and Frobnicate=yes"
fi
grep -q 'bogus' "$tmp/verify.out" && grep -q 'Frobnicate' "$tmp/verify.out" ||
	{ cat "$tmp/verify.out" >&2; fail "verify missed one of the two mistakes"; }
sed "s|^ExecStart=[^ ]*|ExecStart=$tmp/no-such-program|" "$unitdir/tunnel-server.service" \
	>"$tmp/broken-exec.service"
if verify "$tmp/broken-exec.service"; then
	fail "systemd-analyze verify accepts a unit whose program does not exist"
fi
pass "systemd-analyze verify catches an unknown directive, a bad value and a missing program"

# --- the units ---
for unit in "${UNITS[@]}"; do
	f=$unitdir/$unit.service
	[ -f "$f" ] || fail "cmake --install put no $unit.service in lib/systemd/system"
	verify "$f" || { cat "$tmp/verify.out" >&2; fail "systemd-analyze verify $unit.service"; }
	prog=${unit#tunnel-}
	grep -qx "ExecStart=$prefix/bin/$prog --config $prefix/etc/tunnel/$prog.yaml" "$f" ||
		fail "$unit: ExecStart is not the installed $prog with the installed config"
	[ -f "$prefix/etc/tunnel/$prog.yaml" ] || fail "$unit: no $prog.yaml installed"
done
pass "systemd-analyze verify: ${UNITS[*]} clean (programs, configs and man pages found)"

# The value of DIRECTIVE in a unit file (the last one wins, as for systemd).
get() { sed -n "s/^$2=//p" "$1" | tail -n1; }
for unit in "${UNITS[@]}"; do
	f=$unitdir/$unit.service
	# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
	for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
		PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
		ProtectControlGroups=yes RestrictNamespaces=yes MemoryDenyWriteExecute=yes \
		SystemCallArchitectures=native 'ExecReload=/bin/kill -HUP $MAINPID'; do
		[ "$(get "$f" "${want%%=*}")" = "${want#*=}" ] || fail "$unit: not $want"
	done
	grep -q '^SystemCallFilter=@system-service$' "$f" || fail "$unit: no SystemCallFilter=@system-service"
	grep -q '^RestartPreventExitStatus=2$' "$f" || fail "$unit: restarts after a configuration error"
	[ "$(get "$f" WantedBy)" = multi-user.target ] || fail "$unit: not WantedBy=multi-user.target"
	case $unit in
	tunnel-client)
		[ "$(get "$f" User)" = root ] || fail "$unit: iptables needs User=root"
		for d in CapabilityBoundingSet AmbientCapabilities; do
			[ "$(get "$f" "$d")" = "CAP_NET_ADMIN CAP_NET_RAW" ] ||
				fail "$unit: $d is '$(get "$f" "$d")', not CAP_NET_ADMIN CAP_NET_RAW"
		done
		limit=3.0
		;;
	*)
		[ "$(get "$f" User)" = tunnel ] && [ "$(get "$f" Group)" = tunnel ] || fail "$unit: not User/Group tunnel"
		[ -z "$(get "$f" CapabilityBoundingSet)" ] && grep -q '^CapabilityBoundingSet=$' "$f" ||
			fail "$unit: has capabilities"
		[ -z "$(get "$f" AmbientCapabilities)" ] || fail "$unit: has ambient capabilities"
		limit=2.0
		;;
	esac
	score=$(SYSTEMD_LOG_COLOR=0 timeout 30 systemd-analyze security --offline=yes "$f" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] || fail "$unit: systemd-analyze security gave no exposure level"
	awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }' ||
		fail "$unit: exposure $score is above $limit"
	echo "   $unit: exposure $score (at most $limit)"
done
grep -qx 'u tunnel - "Network Tunneler" /nonexistent /usr/sbin/nologin' "$prefix/lib/sysusers.d/tunnel.conf" ||
	fail "lib/sysusers.d/tunnel.conf does not declare the user tunnel"
pass "hardening: every unit sandboxed, relay and proxy as tunnel without capabilities, client with CAP_NET_ADMIN CAP_NET_RAW"
echo "systemd_test: ok"
