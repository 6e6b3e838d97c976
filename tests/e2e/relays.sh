#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# relays.sh: two relays.  The proxy holds a session to each (both can route to it); the client
# uses the first and fails over to the second when the first is killed, with no restart.
#
#   curl ─▶ client ══▶ relay-a :8443 ◀══╗
#                  ╚═▶ relay-b :8444 ◀══╩═ proxy ─▶ 10.201.2.2:8080
#   tn-cli-$$          tn-relay-$$ (both)    tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

PORT_B=$((TN_RELAY_PORT + 1))

relay_on() { # relay_on NAME PORT
	tn_spawn "$1" "$TN_NS_RELAY" "$TN_BIN/server/server" --listen "0.0.0.0:$2" \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
	TN_PROGS+=("$TN_LAST_PID")
	wait_port "$TN_NS_RELAY" "$2" 10 || fail "$1 does not listen"
}

get() { n_cli timeout 10 curl -sS --max-time "${1:-8}" "http://$TN_VIRT_IP:8080/"; }

lan_http 8080
tn_certs
relay_on relay-a "$TN_RELAY_PORT"
relay_on relay-b "$PORT_B"
# start_proxy and start_client give the first relay; the second comes as one more --server.
start_proxy --server "$TN_RELAY_LAN_IP:$PORT_B"
for r in relay-a relay-b; do
	wait_for_log "$TN_TMP/$r.log" "proxy $TN_PROXY_ID registered" 10 ||
		fail "the proxy did not register with $r"
done
start_client --server "$TN_RELAY_CLI_IP:$PORT_B"
wait_client_ready
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic through the first relay"
wait_for_log "$TN_TMP/relay-a.log" "flow=.* client=client-1 .* -> $TN_VIRT_IP:8080" 5 ||
	fail "the first flow did not go through relay-a"

tn_log "kill -9 relay-a"
tn_stop relay-a KILL 5 || true
killed_ms=$(tn_now_ms)
wait_tunnel 20 || fail "no traffic through relay-b 20 s after relay-a died"
back_ms=$(($(tn_now_ms) - killed_ms))
tn_log "traffic flows through relay-b $back_ms ms after relay-a died"
wait_for_log "$TN_TMP/relay-b.log" "flow=.* client=client-1 .* -> $TN_VIRT_IP:8080" 5 ||
	fail "the flows after the failover did not go through relay-b"
tn_alive "$(tn_pid "$TN_CLIENT_NAME")" || fail "the client exited"
tn_alive "$(tn_pid "$TN_PROXY_NAME")" || fail "the proxy exited"
[ "$back_ms" -le 5000 ] || fail "the failover took $back_ms ms"
for i in 1 2 3; do
	[ "$(get)" = "$TN_HTTP_BODY" ] || fail "request $i through relay-b failed"
done
