#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# busypoll.sh: busy polling after a message (busy_poll_us) works where it is on, stays off where
# it is off, and ends when the traffic does.
#
#   ping-pong ─▶ client (default: on) ══▶ relay (--busy-poll-us 0) ══▶ proxy (default: on) ─▶ echo
#
#   - after 1000 round trips on one connection, the client's and the proxy's
#     tunnel_busy_polls_total{end="message"} count polls a message ended (it was read without
#     sleeping), while every series of the relay's stays 0;
#   - then, with no traffic, none of the three uses more than a sliver of CPU: a poll that never
#     ended would burn a whole core.
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
start_proxy --admin :9091
wait_registered
start_client --admin :9092
wait_client_ready

# polls NS PORT END: the program's tunnel_busy_polls_total{end="END"}.
polls() {
	tn_in "$1" timeout 5 curl -sS --fail --max-time 4 "http://127.0.0.1:$2/metrics" |
		awk -v s="tunnel_busy_polls_total{end=\"$3\"}" '$1 == s { print $2; found = 1 }
			END { if (!found) print "missing" }'
}

tn_log "$ROUNDS round trips of 64 bytes on one connection"
out=$(tools_in "$TN_NS_CLI" 60 ping-pong "$TN_VIRT_IP" 7001 --count "$ROUNDS" --size 64) ||
	fail "the round trips failed: $out"
tn_log "done: $out (count, median µs)"
[ "${out%% *}" = "$ROUNDS" ] || fail "not all round trips were made: $out"

for end in message timeout contended; do
	v=$(polls "$TN_NS_RELAY" 9090 "$end")
	[ "$v" = 0 ] || fail "relay (--busy-poll-us 0): tunnel_busy_polls_total{end=\"$end\"} is $v, not 0"
done
for np in "client $TN_NS_CLI 9092" "proxy $TN_NS_LAN 9091"; do
	# shellcheck disable=SC2086 # three words
	set -- $np
	v=$(polls "$2" "$3" message)
	[[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] ||
		fail "$1: no poll caught a message in $ROUNDS round trips (tunnel_busy_polls_total{end=\"message\"} $v)"
	tn_log "$1: $v polls ended by a message, $(polls "$2" "$3" timeout) by their window, $(polls "$2" "$3" contended) by a busy CPU"
done

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
