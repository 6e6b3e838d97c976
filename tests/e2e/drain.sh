#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# drain.sh: SIGTERM drains instead of cutting.  A 20 MiB download in flight completes, whole,
# when the relay is stopped (GOAWAY, no new sessions, the proxy out of the routes), when the
# proxy is stopped (GOAWAY to the relay, nothing new routed to it), and when the client is
# stopped (new connections are reset at once, the open one finishes, then the rules go); each
# program then exits 0.
#
#   curl ─▶ client ══▶ relay ══▶ proxy ─▶ 10.201.2.2:8080 (python http.server, 20 MiB file)
#   tn-cli-$$          tn-relay-$$        tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

SIZE=20971520

# download NAME: 20 MiB at 8 MiB/s (about 2.5 s) in the background; sets DL_PID.
download() {
	n_cli timeout 30 curl -sS --limit-rate 8M -o "$TN_TMP/$1.out" \
		"http://$TN_VIRT_IP:8080/big.bin" 2>"$TN_TMP/$1.err" &
	DL_PID=$!
	sleep 0.7 # well under way, far from done
}

# finished NAME: the download completed with every byte.
finished() {
	local rc=0
	wait "$DL_PID" || rc=$?
	[ "$rc" = 0 ] || fail "$1: the download failed (curl $rc: $(cat "$TN_TMP/$1.err"))"
	cmp -s "$TN_TMP/www/big.bin" "$TN_TMP/$1.out" || fail "$1: the download is not whole"
	tn_log "$1: the download in flight completed, all $SIZE bytes"
}

lan_http 8080
head -c "$SIZE" /dev/urandom >"$TN_TMP/www/big.bin"
tn_certs
start_relay --drain-timeout 20s
start_proxy
wait_registered
start_client
wait_client_ready

tn_log "SIGTERM to the relay during a download"
download relay-drain
kill -TERM "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "draining for up to" 5 || fail "the relay did not start draining"
finished relay-drain
tn_exit_of relay 10
[ "$TN_RC" = 0 ] || fail "the drained relay exited with status $TN_RC"
grep -q "drained: every session is closed" "$TN_TMP/relay.log" ||
	fail "the relay did not end by draining"
for name in "$TN_CLIENT_NAME" "$TN_PROXY_NAME"; do # a GOAWAY replaces a connection: none was lost
	grep -q "connection replaced (the relay is draining (GOAWAY))" "$TN_TMP/$name.log" ||
		fail "the $name did not log the GOAWAY as a replaced connection"
	! grep -q "connection lost" "$TN_TMP/$name.log" ||
		fail "the $name took the GOAWAY for a lost connection: $(grep "connection lost" "$TN_TMP/$name.log")"
done

tn_log "SIGTERM to the proxy during a download (relay started again)"
TN_RELAY_NAME=relay-2 start_relay
wait_back relay-2
download proxy-drain
kill -TERM "$(tn_pid "$TN_PROXY_NAME")"
wait_for_log "$TN_TMP/relay-2.log" "is leaving" 5 || fail "the relay did not see the proxy leave"
kill -HUP "$(tn_pid "$TN_PROXY_NAME")" # a log rotation during the drain
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "reload: done" 5 || fail "the draining proxy did not reload"
sleep 0.5
[ "$(count_lines "$TN_TMP/relay-2.log" "proxy $TN_PROXY_ID registered")" = 1 ] ||
	fail "the draining proxy registered again after SIGHUP"
finished proxy-drain
tn_exit_of "$TN_PROXY_NAME" 10
[ "$TN_RC" = 0 ] || fail "the drained proxy exited with status $TN_RC"
grep -q "drained: every flow is done" "$TN_TMP/$TN_PROXY_NAME.log" || fail "the proxy did not end by draining"

tn_log "SIGTERM to the client during a download"
TN_PROXY_NAME=proxy-2 start_proxy
wait_count "$TN_TMP/relay-2.log" "proxy $TN_PROXY_ID registered" 2 10 || fail "proxy-2 did not register"
download client-drain
kill -TERM "$(tn_pid "$TN_CLIENT_NAME")"
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "flows have" 5 || fail "the client did not start draining"
t0=$(tn_now_ms)
! n_cli timeout 5 curl -sS --max-time 3 "http://$TN_VIRT_IP:8080/" >/dev/null 2>&1 ||
	fail "a new connection went through a draining client"
[ $(($(tn_now_ms) - t0)) -lt 1000 ] || fail "a new connection to a draining client was not reset at once"
kill -0 "$DL_PID" 2>/dev/null || fail "the download ended before the check (too fast a machine?)"
finished client-drain
tn_exit_of "$TN_CLIENT_NAME" 10
[ "$TN_RC" = 0 ] || fail "the drained client exited with status $TN_RC"
[ -z "$(rules_of_client)" ] || fail "the drained client left rules: $(rules_of_client)"
