#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# auth.sh: only certificates of the deployment CA, in their own role, get through.
#
#   client with a certificate of another CA   ─▶ relay: handshake refused, client exits ≠ 0,
#                                                 no traffic, no iptables rule left
#   proxy with a client certificate           ─▶ relay: Register refused (logged), proxy exits ≠ 0
#   client with a proxy certificate           ─▶ relay: Connect refused, no traffic passes
#   then the right client                     ─▶ works (the failures were about the certificates)
#   tn-cli-$$ ── client ══ tn-relay-$$ ══ proxy ── tn-lan-$$ (web server 8080)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

REJECT_RE='reject|refus|denied|deny|forbidden|not allowed|unauthori|permission|not a proxy|not a client|wrong role'

lan_http 8080
tn_certs
tn_certs "$TN_TMP/other-ca" # a second deployment: same names, another CA
start_relay
start_proxy
wait_registered

no_traffic() {
	! n_cli timeout 6 curl -sS --max-time 3 "http://$TN_VIRT_IP:8080/" || false
}

# relay_log_since LINE: what the relay logged after line LINE.
relay_log_since() { tail -n "+$(($1 + 1))" "$TN_TMP/relay.log"; }
relay_lines() { wc -l <"$TN_TMP/relay.log"; }

# ---- 1. a client certificate from another CA
tn_log "client with a certificate from another CA"
TN_CLIENT_NAME=client-other-ca TN_CLIENT_CERTS="$TN_TMP/other-ca/client" start_client
rc=0
tn_wait_exit "$(tn_pid client-other-ca)" 10 || rc=$?
[ "$rc" != 124 ] || fail "a client whose certificate the relay rejects is still running after 10 s"
[ "$rc" != 0 ] || fail "a client whose certificate the relay rejects exited 0"
tn_log "it exited with status $rc"
no_traffic
[ -z "$(rules_of_client)" ] || fail "the rejected client left rules: $(rules_of_client)"
[ -s "$TN_TMP/client-other-ca.log" ] || fail "the rejected client said nothing about why"

# ---- 2. a client certificate used as the proxy's
tn_log "proxy with a client certificate"
mark=$(relay_lines)
TN_PROXY_NAME=proxy-as-client TN_PROXY_ID=client-1 TN_PROXY_CERTS="$TN_CERTS/client" start_proxy
rc=0
tn_wait_exit "$(tn_pid proxy-as-client)" 10 || rc=$?
[ "$rc" != 124 ] || fail "a proxy with a client certificate is still running after 10 s"
[ "$rc" != 0 ] || fail "a proxy with a client certificate exited 0"
tn_log "it exited with status $rc"
! grep -q "proxy client-1 registered" "$TN_TMP/relay.log" || false
relay_log_since "$mark" | grep -Eqi "$REJECT_RE" || fail "the relay did not log why it refused the proxy"
tn_log "relay: $(relay_log_since "$mark" | grep -Ei "$REJECT_RE" | head -n 1)"

# ---- 3. a proxy certificate used by the client
tn_log "client with a proxy certificate"
mark=$(relay_lines)
TN_CLIENT_NAME=client-as-proxy TN_CLIENT_CERTS="$TN_CERTS/proxy" start_client
pid=$(tn_pid client-as-proxy)
# It may refuse to start, or start and have every Connect refused; no traffic either way.
wait_for_log "$TN_TMP/client-as-proxy.log" "$TN_READY_RE" 10 "$pid" || true
if tn_alive "$pid"; then
	tn_log "it runs; its flows must be refused"
	no_traffic
	rc=0
	tn_stop client-as-proxy TERM 10 || rc=$?
	[ "$rc" = 0 ] || fail "the client exited $rc on SIGTERM"
else
	rc=0
	tn_wait_exit "$pid" 1 || rc=$?
	[ "$rc" != 0 ] || fail "a client with a proxy certificate exited 0"
	tn_log "it exited with status $rc"
	no_traffic
fi
[ -z "$(rules_of_client)" ] || fail "rules left behind: $(rules_of_client)"
relay_log_since "$mark" | grep -Eqi "$REJECT_RE" || fail "the relay did not log why it refused the client"
tn_log "relay: $(relay_log_since "$mark" | grep -Ei "$REJECT_RE" | head -n 1)"

# ---- the right certificates still work
tn_log "the client with its own certificate"
start_client
wait_client_ready
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl with the right client failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body '$body'"
