#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# auth.sh: only certificates of the deployment CA, in their own role, get through.
#
#   client with a certificate of another CA   ─▶ relay: handshake refused, client exits ≠ 0,
#                                                 no traffic, no iptables rule left
#   proxy with a client certificate           ─▶ refused at start (exit status 2, said why)
#   client with a proxy certificate           ─▶ refused at start, no traffic, no rule left
#   then the right client                     ─▶ works (the failures were about the certificates)
#   tn-cli-$$ ── client ══ tn-relay-$$ ══ proxy ── tn-lan-$$ (web server 8080)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_http 8080
tn_certs
tn_certs "$TN_TMP/other-ca" # a second deployment: same names, another CA
start_relay
start_proxy
wait_registered

no_traffic() {
	! n_cli timeout 6 curl -sS --max-time 3 "http://$TN_VIRT_IP:8080/" || false
}

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

# ---- 2. and 3. a certificate of the other role: refused at start, before the relay sees it
# (the relay refuses both too: tests/tools/badpeer.c register-refused)
wrong_role() { # NAME: it exited with status 2, saying why, and left no rule
	local rc=0
	tn_wait_exit "$(tn_pid "$1")" 10 || rc=$?
	[ "$rc" = 2 ] || fail "$1 exited with status $rc, not 2 (a configuration error)"
	grep -q "certificate, and the relay takes only" "$TN_TMP/$1.log" ||
		fail "$1 did not say what is wrong with its certificate: $(cat "$TN_TMP/$1.log")"
	tn_log "$1: $(grep -m1 "certificate, and the relay takes only" "$TN_TMP/$1.log")"
	no_traffic
	[ -z "$(rules_of_client)" ] || fail "rules left behind: $(rules_of_client)"
}
tn_log "proxy with a client certificate"
TN_PROXY_NAME=proxy-as-client TN_PROXY_ID=client-1 TN_PROXY_CERTS="$TN_CERTS/client" start_proxy
wrong_role proxy-as-client
! grep -q "proxy client-1 registered" "$TN_TMP/relay.log" || false
tn_log "client with a proxy certificate"
TN_CLIENT_NAME=client-as-proxy TN_CLIENT_CERTS="$TN_CERTS/proxy" start_client
wrong_role client-as-proxy

# ---- the right certificates still work
tn_log "the client with its own certificate"
start_client
wait_client_ready
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl with the right client failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body '$body'"
