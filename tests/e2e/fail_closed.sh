#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fail_closed.sh: with --fail-closed, traffic to the intercepted networks goes through the tunnel
# or nowhere: before the client is up, while it is down and after it exits, our filter chain
# rejects it at once (a TCP reset), until `client --cleanup` removes every rule of ours.
#
#   curl ─▶ [filter OUTPUT: TUNNEL_CLIENT_FC rejects 100.64.0.0/10 not redirected]
#        ─▶ [nat OUTPUT: TUNNEL_CLIENT redirects 100.64.0.0/10 to the client] ─▶ relay ─▶ lan
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

fc_rules() { n_cli iptables-save -t filter | grep -E 'TUNNEL_CLIENT_FC' || true; }
fc_rejected() { # packets our reject rules matched so far
	n_cli iptables -w -t filter -L TUNNEL_CLIENT_FC -v -n -x 2>/dev/null |
		awk '/REJECT/ { n += $1 } END { print n + 0 }'
}
get() { n_cli timeout 10 curl -sS --max-time "${1:-8}" "http://$TN_VIRT_IP:8080/"; }

# refused_fast WHAT: a connection fails within 1 s and our chain counted it.
refused_fast() {
	local before t0 dt
	before=$(fc_rejected)
	t0=$(tn_now_ms)
	! get 5 >/dev/null 2>&1 || fail "$1: a request got through"
	dt=$(($(tn_now_ms) - t0))
	[ "$dt" -lt 1000 ] || fail "$1: it took $dt ms to fail (should be rejected at once)"
	[ "$(fc_rejected)" -gt "$before" ] || fail "$1: our reject rules did not see it"
	tn_log "$1: rejected by the fail-closed rules after $dt ms"
}

lan_http 8080
tn_certs
start_relay
start_proxy
wait_registered
start_client --fail-closed
wait_client_ready
[ -n "$(fc_rules)" ] || fail "no fail-closed rules"
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic through the tunnel with --fail-closed"

tn_log "the client exits: its redirection goes, the rejection stays"
tn_stop "$TN_CLIENT_NAME" TERM 10 || fail "the client did not exit 0"
[ -z "$(n_cli iptables-save -t nat | grep TUNNEL_CLIENT || true)" ] || fail "nat rules left"
[ -n "$(fc_rules)" ] || fail "the fail-closed rules went with the client"
refused_fast "after exit"

tn_log "a new run with --fail-closed, while the relay is down"
tn_stop relay KILL 5 || true
TN_CLIENT_NAME=client-2 start_client --fail-closed
wait_for_log "$TN_TMP/client-2.log" "attempt" 10 || fail "client-2 did not try the relay"
refused_fast "before the tunnel is up"
tn_stop client-2 TERM 10 || fail "client-2 did not exit 0"

tn_log "client --cleanup removes every rule of ours"
n_cli timeout 20 "$TN_BIN/client/client" --cleanup >>"$TN_TMP/cleanup.log" 2>&1 ||
	fail "client --cleanup failed"
[ -z "$(fc_rules)" ] || fail "rules left after --cleanup: $(fc_rules)"
[ -z "$(rules_of_client)" ] || fail "rules left after --cleanup: $(rules_of_client)"
