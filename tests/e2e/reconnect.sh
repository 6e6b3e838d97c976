#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reconnect.sh: the relay is killed (-9) during a download and started again 3 s later.  The
# download fails visibly (never a silent truncation), client and proxy keep running, new
# connections meanwhile are reset at once (never left hanging), and after the restart both
# reconnect with the default backoff: the time until traffic flows again is measured.  A client
# limited by --max-retries gives up, exits non-zero and leaves no rule behind.
#
#   curl ─▶ client ══▶ relay (stopped, then started again) ◀══ proxy ─▶ 10.201.2.2:8080
#   tn-cli-$$                tn-relay-$$                         tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

get() { n_cli timeout 10 curl -sS --max-time "${1:-8}" "http://$TN_VIRT_IP:8080/"; }

lan_http 8080
head -c 200000000 /dev/zero >"$TN_TMP/www/big.bin"
tn_certs
start_tunnel # the default backoff: 1 s doubling to 30 s, full jitter
client_pid=$(tn_pid "$TN_CLIENT_NAME")
proxy_pid=$(tn_pid "$TN_PROXY_NAME")
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic before the relay went away"

tn_log "kill -9 the relay during a download"
n_cli timeout 60 curl -sS --limit-rate 20M -o "$TN_TMP/big.out" "http://$TN_VIRT_IP:8080/big.bin" \
	2>"$TN_TMP/curl-big.err" &
curl_pid=$!
sleep 1
killed_ms=$(tn_now_ms)
tn_stop relay KILL 5 || true
rc=0
wait "$curl_pid" || rc=$?
size=$(stat -c %s "$TN_TMP/big.out" 2>/dev/null || echo 0)
tn_log "the download in flight ended with curl status $rc after $size bytes"
# Never a silent truncation: either every byte arrived, or the application saw an error.
[ "$rc" != 0 ] || [ "$size" = 200000000 ] || fail "a truncated download looked like a success"
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "relay connection lost" 10 ||
	fail "the client did not notice the relay going away"
[ -n "$(rules_of_client)" ] || fail "the client removed its rules while the relay was away"

tn_log "a new connection while the relay is away is reset at once"
t0=$(tn_now_ms)
! get 5 >/dev/null 2>&1 || fail "a request succeeded with no relay"
dt=$(($(tn_now_ms) - t0))
tn_log "it failed after $dt ms"
[ "$dt" -lt 1000 ] || fail "a connection with no relay took $dt ms to fail (should be reset at once)"

sleep $((3 - ($(tn_now_ms) - killed_ms) / 1000)) 2>/dev/null || true
tn_log "starting the relay again, 3 s after the kill"
relay_again relay-2
restarted_ms=$(tn_now_ms)
wait_tunnel 30 || fail "no traffic 30 s after the relay came back"
back_ms=$(($(tn_now_ms) - restarted_ms))
tn_log "traffic flows again $back_ms ms after the relay restarted (default backoff)"
grep -E "attempt [0-9]+ in [0-9.]+ s" "$TN_TMP/$TN_CLIENT_NAME.log" | tail -n 3 | sed 's/^/    /' >&2
# The backoff never waits longer than the outage so far (3 s here): the next attempt comes
# within 3 s of the restart, plus a TLS handshake.
[ "$back_ms" -le 5000 ] || fail "traffic took $back_ms ms to come back (at most 5 s)"
tn_alive "$client_pid" || fail "the client exited"
tn_alive "$proxy_pid" || fail "the proxy exited"
for i in 1 2 3; do
	[ "$(get)" = "$TN_HTTP_BODY" ] || fail "request $i after the reconnect failed"
done

tn_log "a client with --max-retries 2 gives up when the relay stays away"
tn_stop relay-2 TERM 10 || fail "the relay did not exit 0 on SIGTERM"
tn_stop "$TN_CLIENT_NAME" TERM 10 || fail "the client did not exit 0 on SIGTERM"
[ -z "$(rules_of_client)" ] || fail "rules left after SIGTERM: $(rules_of_client)"
TN_CLIENT_NAME=client-limited start_client --reconnect-initial 200ms --max-retries 2
rc=0
tn_wait_exit "$(tn_pid client-limited)" 20 || rc=$?
[ "$rc" != 124 ] || fail "the client with --max-retries 2 still runs after 20 s"
[ "$rc" != 0 ] || fail "the client that gave up exited 0"
grep -q "giving up" "$TN_TMP/client-limited.log" || fail "the client did not say it gave up"
[ -z "$(rules_of_client)" ] || fail "the client that gave up left rules: $(rules_of_client)"
tn_log "it gave up with status $rc: $(grep 'giving up' "$TN_TMP/client-limited.log")"

tn_log "a client with --no-reconnect whose first dial fails at once (no route) exits 1"
rc=0
n_cli timeout 10 "$TN_BIN/client/client" --server 10.99.99.99:8443 --no-reconnect \
	--cidr "$TN_INTERCEPT" --tls-cert "$TN_CERTS/client/cert.pem" --tls-key "$TN_CERTS/client/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --status-socket "" >"$TN_TMP/client-noroute.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the client whose relay has no route exited $rc (124: still running): $(tail -3 "$TN_TMP/client-noroute.log")"
grep -q "giving up" "$TN_TMP/client-noroute.log" || fail "the client did not say it gave up"
[ -z "$(rules_of_client)" ] || fail "the client that gave up left rules: $(rules_of_client)"
