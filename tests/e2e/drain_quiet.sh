#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# drain_quiet.sh: a draining proxy dials no relay again.  The proxy has two relays; the second is
# down when the proxy is told to stop (SIGTERM), while a flow through the first keeps its drain
# going.  When the second relay comes up during the drain, the proxy must not register with it
# (it would be sent flows it no longer takes); the held flow finishes, and the proxy ends.
#
#   python (held echo flow) ─▶ client ══▶ relay :8443 ◀══ proxy (draining) ─ ─ ▷ relay-2 :8444
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

port2=8444
lan_serve echo 7001 serve-echo 7001
tn_certs
start_relay
start_proxy --server "$TN_RELAY_LAN_IP:$port2" --reconnect-initial 200ms --reconnect-max 500ms \
	--drain-timeout 30s
wait_registered
start_client
wait_client_ready
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "$TN_RELAY_LAN_IP:$port2: .*attempt" 10 ||
	fail "the proxy does not try its second relay"

tools_in "$TN_NS_CLI" 40 held-echo "$TN_VIRT_IP" 7001 --go "$TN_TMP/go" >"$TN_TMP/held.out" \
	2>"$TN_TMP/held.err" &
HELD=$!
wait_for_log "$TN_TMP/held.out" '^open$' 10 || fail "the held flow did not open: $(cat "$TN_TMP/held.err")"

tn_log "SIGTERM to the proxy; then its second relay comes up during the drain"
kill -TERM "$(tn_pid "$TN_PROXY_NAME")"
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "leaving the relay" 5 || fail "the proxy did not start draining"
tn_spawn relay-2 "$TN_NS_RELAY" "$TN_BIN/server/server" --listen "0.0.0.0:$port2" \
	--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_port "$TN_NS_RELAY" "$port2" 10 || fail "the second relay does not listen"
sleep 2 # four times the proxy's longest backoff
! grep -q "registered" "$TN_TMP/relay-2.log" ||
	fail "the draining proxy registered with the relay that came back: $(grep registered "$TN_TMP/relay-2.log")"
! grep -q "connected: proxy" "$TN_TMP/relay-2.log" ||
	fail "the draining proxy connected to the relay that came back"

tn_log "the held flow still echoes; then the proxy ends"
touch "$TN_TMP/go"
rc=0
wait "$HELD" || rc=$?
[ "$rc" = 0 ] || fail "the held flow broke during the drain (rc $rc): $(cat "$TN_TMP/held.err")"
tn_exit_of "$TN_PROXY_NAME" 10
[ "$TN_RC" = 0 ] || fail "the drained proxy exited with status $TN_RC"
tn_log "ok: the proxy drained without dialing the relay that came back"
