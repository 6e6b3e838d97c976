#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cut.sh: the links to the relay are cut with DROP rules (packets vanish, nothing is refused, as
# when a cable is pulled).  Client and proxy notice it by their heartbeat, within interval +
# timeout (2 s + 3 s by default), reset new connections meanwhile, and recover by themselves
# once the rules are removed.  A flow open across the cut is logged as ended with its
# connection, and the proxy does not take its lost connection for a reset registration.
#
#   client ══✂══ relay ══✂══ proxy      (DROP in tn-relay-$$ for 10.201.1.1 and 10.201.2.2)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

CUT=(-m comment --comment e2e-cut -j DROP)
cut_links() { # cut_links -A|-D
	n_relay iptables -w "$1" INPUT -s "$TN_CLI_IP" "${CUT[@]}"
	n_relay iptables -w "$1" OUTPUT -d "$TN_CLI_IP" "${CUT[@]}"
	n_relay iptables -w "$1" INPUT -s "$TN_LAN_IP" "${CUT[@]}"
	n_relay iptables -w "$1" OUTPUT -d "$TN_LAN_IP" "${CUT[@]}"
}
get() { n_cli timeout 10 curl -sS --max-time "${1:-8}" "http://$TN_VIRT_IP:8080/"; }

lan_http 8080
lan_serve echo 7001 serve-echo 7001
tn_certs
start_tunnel
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic before the cut"
# A flow open across the cut: its end must be told as the connection's, not as a reset.
tools_in "$TN_NS_CLI" 40 held-echo "$TN_VIRT_IP" 7001 --go "$TN_TMP/go" >"$TN_TMP/held.out" \
	2>"$TN_TMP/held.err" &
HELD=$!
wait_for_log "$TN_TMP/held.out" '^open$' 10 || fail "the held flow did not open: $(cat "$TN_TMP/held.err")"

tn_log "cutting both links to the relay"
cut_links -A
cut_ms=$(tn_now_ms)
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "relay connection lost" 10 ||
	fail "the client did not notice the cut within 10 s"
client_ms=$(($(tn_now_ms) - cut_ms))
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "connection lost" 10 ||
	fail "the proxy did not notice the cut within 10 s"
proxy_ms=$(($(tn_now_ms) - cut_ms))
tn_log "noticed after $client_ms ms (client), $proxy_ms ms (proxy)"
grep -q "no answer to PING" "$TN_TMP/$TN_CLIENT_NAME.log" || fail "the client did not say why"
touch "$TN_TMP/go"
wait "$HELD" && fail "the held flow echoed through a cut link"
grep -q "7001 .*relay connection ended" "$TN_TMP/$TN_CLIENT_NAME.log" ||
	fail "the client did not log the held flow's end as its connection's: $(grep ':7001 ' "$TN_TMP/$TN_CLIENT_NAME.log")"
! grep -q "reset the registration" "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the proxy took its lost connection for a reset: $(grep 'reset the registration' "$TN_TMP/$TN_PROXY_NAME.log")"
# 2 s of silence, then 3 s for the PING's answer, plus polling.
[ "$client_ms" -le 6500 ] || fail "the client took $client_ms ms to notice (heartbeat 2 s + 3 s)"

t0=$(tn_now_ms)
! get 5 >/dev/null 2>&1 || fail "a request succeeded through a cut link"
[ $(($(tn_now_ms) - t0)) -lt 1000 ] || fail "a connection while the link is cut was not reset at once"

tn_log "restoring the links"
cut_links -D
back_ms=$(tn_now_ms)
wait_tunnel 30 || fail "no traffic 30 s after the links came back"
tn_log "traffic flows again $(($(tn_now_ms) - back_ms)) ms after the links came back"
