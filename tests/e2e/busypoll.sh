#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# busypoll.sh: busy polling after a message (busy_poll_us) works where it is on, stays off where
# it is off, follows a reload, and ends when the traffic does.
#
#   ping-pong ─▶ client (default: on) ══▶ relay (--busy-poll-us 0) ══▶ proxy (YAML: 0) ─▶ echo
#
#   - after 1000 round trips on one connection, the client's tunnel_busy_polls_total{end="message"}
#     counts polls a message ended (it was read without sleeping), while every series of the
#     relay's and the proxy's stays 0;
#   - the proxy's file says busy_poll_us: 200 and SIGHUP: 1000 more round trips, and its
#     polls catch messages too;
#   - then, with no traffic, none of the three uses more than a sliver of CPU.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

ROUNDS=1000
IDLE_S=2
IDLE_MAX_TICKS=20 # CPU ticks (1/100 s) each program may use in IDLE_S idle seconds

lan_serve echo 7001 serve-echo 7001
tn_certs
start_relay --admin :9090 --busy-poll-us 0
echo "busy_poll_us: 0" >"$TN_TMP/proxy.yaml"
start_proxy --admin :9091 --config "$TN_TMP/proxy.yaml"
wait_registered
start_client --admin :9092
wait_client_ready

# polls NS PORT END: the program's tunnel_busy_polls_total{end="END"}.
polls() {
	tn_in "$1" timeout 5 curl -sS --fail --max-time 4 "http://127.0.0.1:$2/metrics" |
		awk -v s="tunnel_busy_polls_total{end=\"$3\"}" '$1 == s { print $2; found = 1 }
			END { if (!found) print "missing" }'
}

# ping_pong: ROUNDS round trips of 64 bytes on one connection.
ping_pong() {
	local out
	tn_log "$ROUNDS round trips of 64 bytes on one connection"
	out=$(tools_in "$TN_NS_CLI" 60 ping-pong "$TN_VIRT_IP" 7001 --count "$ROUNDS" --size 64) ||
		fail "the round trips failed: $out"
	tn_log "done: $out (count, median µs)"
	[ "${out%% *}" = "$ROUNDS" ] || fail "not all round trips were made: $out"
}

# polling NAME NS PORT: its polls caught messages.
polling() {
	local v
	v=$(polls "$2" "$3" message)
	if ! [[ $v =~ ^[0-9]+$ ]] || [ "$v" -eq 0 ]; then
		fail "$1: no poll caught a message in $ROUNDS round trips (tunnel_busy_polls_total{end=\"message\"} $v)"
	fi
	tn_log "$1: $v polls ended by a message, $(polls "$2" "$3" timeout) by their window, $(polls "$2" "$3" contended) by a busy CPU"
}

# not_polling NAME NS PORT: none of its polls series moved.
not_polling() {
	local end v
	for end in message timeout contended; do
		v=$(polls "$2" "$3" "$end")
		[ "$v" = 0 ] || fail "$1 (off): tunnel_busy_polls_total{end=\"$end\"} is $v, not 0"
	done
}

ping_pong
polling client "$TN_NS_CLI" 9092
not_polling relay "$TN_NS_RELAY" 9090
not_polling proxy "$TN_NS_LAN" 9091

tn_log "the proxy's file turns it on; SIGHUP"
echo "busy_poll_us: 200" >"$TN_TMP/proxy.yaml"
kill -HUP "$(tn_pid proxy)"
wait_for_log "$TN_TMP/proxy.log" "reload: done" 5 || fail "the proxy did not reload"
ping_pong
polling proxy "$TN_NS_LAN" 9091
not_polling relay "$TN_NS_RELAY" 9090

# ticks PID: the CPU the process used so far, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

tn_log "no traffic for $IDLE_S s: each program sleeps"
declare -A before
for name in relay proxy client; do before[$name]=$(ticks "$(tn_pid "$name")"); done
sleep "$IDLE_S"
for name in relay proxy client; do
	used=$(($(ticks "$(tn_pid "$name")") - before[$name]))
	tn_log "$name: $used ticks in $IDLE_S s"
	[ "$used" -le "$IDLE_MAX_TICKS" ] ||
		fail "$name used $used CPU ticks in $IDLE_S idle seconds (at most $IDLE_MAX_TICKS): still polling?"
done

tn_log "PASS"
