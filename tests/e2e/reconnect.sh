#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reconnect.sh: the relay goes away and comes back.  Client and proxy keep running, new
# connections meanwhile are reset at once (never left hanging), and after the relay is back
# both reconnect by themselves and traffic flows again with no restart.  A client limited by
# --max-retries gives up, exits non-zero and leaves no rule behind.
#
#   curl ─▶ client ══▶ relay (stopped, then started again) ◀══ proxy ─▶ 10.201.2.2:8080
#   tn-cli-$$                tn-relay-$$                         tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

# Short backoff ceilings keep the test quick; the defaults (1 s doubling to 30 s) only differ
# in timing.
RECONNECT=(--reconnect-initial 500ms --reconnect-max 2s)

get() { n_cli timeout 10 curl -sS --max-time "${1:-8}" "http://$TN_VIRT_IP:8080/"; }

relay_again() {
	tn_spawn "$1" "$TN_NS_RELAY" "$TN_BIN/server/server" --listen "0.0.0.0:$TN_RELAY_PORT" \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
	TN_PROGS+=("$TN_LAST_PID")
	wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "the relay does not listen again"
}

lan_http 8080
tn_certs
start_relay
start_proxy "${RECONNECT[@]}"
wait_registered
start_client "${RECONNECT[@]}"
wait_client_ready
client_pid=$(tn_pid "$TN_CLIENT_NAME")
proxy_pid=$(tn_pid "$TN_PROXY_NAME")
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic before the relay went away"

tn_log "stopping the relay"
tn_stop relay TERM 10 || fail "the relay did not exit 0 on SIGTERM"
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "relay connection lost" 10 ||
	fail "the client did not notice the relay going away"
[ -n "$(rules_of_client)" ] || fail "the client removed its rules while the relay was away"

tn_log "a new connection while the relay is away is reset at once"
t0=$(tn_now_ms)
! get 5 >/dev/null 2>&1 || fail "a request succeeded with no relay"
dt=$(($(tn_now_ms) - t0))
tn_log "it failed after $dt ms"
[ "$dt" -lt 1000 ] || fail "a connection with no relay took $dt ms to fail (should be reset at once)"

tn_log "starting the relay again"
relay_again relay-2
wait_for_log "$TN_TMP/relay-2.log" "proxy $TN_PROXY_ID registered" 20 ||
	fail "the proxy did not register again within 20 s"
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "is back" 20 ||
	fail "the client did not reconnect within 20 s"
tn_alive "$client_pid" || fail "the client exited"
tn_alive "$proxy_pid" || fail "the proxy exited"
grep -E "attempt [0-9]+ in [0-9.]+ s" "$TN_TMP/$TN_CLIENT_NAME.log" | tail -n 2 | sed 's/^/    /' >&2
for i in 1 2 3; do
	[ "$(get)" = "$TN_HTTP_BODY" ] || fail "request $i after the reconnect failed"
done

tn_log "a client with --max-retries 2 gives up when the relay stays away"
tn_stop relay-2 TERM 10 || fail "the relay did not exit 0 on SIGTERM"
tn_stop "$TN_CLIENT_NAME" TERM 10 || fail "the client did not exit 0 on SIGTERM"
[ -z "$(rules_of_client)" ] || fail "rules left after SIGTERM: $(rules_of_client)"
TN_CLIENT_NAME=client-limited start_client "${RECONNECT[@]}" --max-retries 2
rc=0
tn_wait_exit "$(tn_pid client-limited)" 20 || rc=$?
[ "$rc" != 124 ] || fail "the client with --max-retries 2 still runs after 20 s"
[ "$rc" != 0 ] || fail "the client that gave up exited 0"
grep -q "giving up" "$TN_TMP/client-limited.log" || fail "the client did not say it gave up"
[ -z "$(rules_of_client)" ] || fail "the client that gave up left rules: $(rules_of_client)"
tn_log "it gave up with status $rc: $(grep 'giving up' "$TN_TMP/client-limited.log")"
