#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reload_twice.sh: a second SIGHUP while the first one's old connection still drains.  The
# proxy runs with --no-reconnect, so any loss of its link would end it; a flow held open across
# both reloads must go on (on the oldest connection), the proxy must not take the end of an
# earlier connection for a lost link (no "giving up", no reconnect attempt), and new flows must
# work on the newest connection.
#
#   python (held echo flow) ─▶ client ══▶ relay ══▶ proxy (--no-reconnect, SIGHUP x2) ─▶ echo
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve echo 7001 serve-echo 7001
tn_certs
start_relay
start_proxy --no-reconnect
wait_registered
start_client
wait_client_ready
PROXY=$(tn_pid "$TN_PROXY_NAME")

# One echo flow: a round trip, "open", then (once $TN_TMP/go exists, within 30 s) another round
# trip on the same connection, "ok MS".
tools_in "$TN_NS_CLI" 40 held-echo "$TN_VIRT_IP" 7001 --go "$TN_TMP/go" >"$TN_TMP/held.out" \
	2>"$TN_TMP/held.err" &
HELD=$!
wait_for_log "$TN_TMP/held.out" '^open$' 10 || fail "the held flow did not open: $(cat "$TN_TMP/held.err")"

tn_log "SIGHUP to the proxy: a new connection, the held flow's one drains"
kill -HUP "$PROXY"
wait_count "$TN_TMP/relay.log" "proxy $TN_PROXY_ID registered" 2 10 || fail "the proxy did not register again"
tn_log "SIGHUP again while the first connection still drains"
kill -HUP "$PROXY"
if ! wait_count "$TN_TMP/relay.log" "proxy $TN_PROXY_ID registered" 3 10; then
	tn_alive "$PROXY" || fail "the proxy ended after the second SIGHUP"
	fail "the proxy did not register a third time"
fi
sleep 0.5 # a lost link would show by now: --no-reconnect exits at once
tn_alive "$PROXY" || fail "the proxy ended after the second SIGHUP"

tn_log "the held flow still echoes, then new flows work"
touch "$TN_TMP/go"
rc=0
wait "$HELD" || rc=$?
if [ "$rc" != 0 ] || [[ "$(tail -n 1 "$TN_TMP/held.out")" != "ok "* ]]; then
	fail "the flow held across the reloads broke (rc $rc): $(cat "$TN_TMP/held.err")"
fi
out=$(tools_in "$TN_NS_CLI" 20 ping-pong "$TN_VIRT_IP" 7001 --count 5 --timeout 5) ||
	fail "a new flow after the reloads failed"
tn_log "new flow: $out"

tn_alive "$PROXY" || fail "the proxy ended after the reloads"
! grep -Eq 'giving up|attempt [0-9]+ in|connection lost' "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the proxy took a reload for a lost link: $(grep -E 'giving up|attempt [0-9]+ in|connection lost' "$TN_TMP/$TN_PROXY_NAME.log")"
[ "$(grep -c 'connection replaced (renewing the connection)' "$TN_TMP/$TN_PROXY_NAME.log")" = 2 ] ||
	fail "the proxy did not log each reload as a replaced connection"
