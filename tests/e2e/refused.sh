#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# refused.sh: a connection the far side cannot make fails fast for the app (a reset or a
# refusal within 3 s, never a hang or an empty success), and the tunnel keeps working.
#
#   100.64.2.2:7999  ─▶ proxy dials 10.201.2.2:7999, nothing listens  → refused → app reset
#   100.64.3.5:80    ─▶ no proxy announces 100.64.3.0/24              → no_route → app reset
#   100.64.2.2:8080  ─▶ web server in the LAN                          → must still work
#   100.64.2.2:8080  ─▶ first SYN dropped: the proxy waits to connect → must work too
#   100.64.2.2:7998  ─▶ every SYN dropped                              → dial timeout (2 s) → app reset
#   tn-cli-$$ ══ client ═ relay ═ proxy (10.201.2.0/24 as 100.64.2.0/24) ══ tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_http 8080
tn_certs
start_relay --admin :9090
start_proxy --dial-timeout 2s --admin :9091
wait_registered
start_client --admin :9092
wait_client_ready

get_ok() {
	local body
	body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "$1: curl failed"
	[ "$body" = "$TN_HTTP_BODY" ] || fail "$1: wrong body '$body'"
}

# must_fail_fast HOST PORT WHAT: the app sees a reset or a refusal, within 3 s, whether it
# waits silently for the server or sends a request first (a socket closed with unread data
# resets, so only the silent app can tell a reset from a plain close).
must_fail_fast() {
	local out outcome secs t0 t1 send
	for send in "" "GET / HTTP/1.0"$'\r\n\r\n'; do
		out=$(tools_in "$TN_NS_CLI" 10 probe "$1" "$2" --send "$send" --timeout 5 --expect refused,reset) ||
			fail "$3: the app (sending ${#send} bytes) saw '$out', expected a reset or a refusal"
		read -r outcome secs <<<"$out"
		awk -v s="$secs" 'BEGIN { exit !(s < 3) }' || fail "$3: took $secs s to fail"
		tn_log "$3: app sending ${#send} bytes: $outcome after $secs s"
	done
	t0=$(tn_now_ms)
	! n_cli timeout 10 curl -sS --max-time 8 "http://$1:$2/" || false
	t1=$(tn_now_ms)
	[ $((t1 - t0)) -lt 3000 ] || fail "$3: curl took $((t1 - t0)) ms to fail"
}

get_ok "before"
for round in 1 2 3; do
	must_fail_fast "$TN_VIRT_IP" 7999 "closed port in the LAN (round $round)"
	get_ok "after the refused connection (round $round)"
	must_fail_fast 100.64.3.5 80 "network no proxy serves (round $round)"
	get_ok "after the unroutable connection (round $round)"
done

# A target on the same host has answered before connect() returns, and the proxy goes on at
# once; one farther away answers later, and the proxy waits for its connect in the event loop.
# Dropping the first SYN (every other one) makes the LAN's web server such a target: it answers
# the retransmission, 1 s on.
drop_first=(INPUT -p tcp --dport 8080 --syn -m statistic --mode nth --every 2 --packet 0 -j DROP)
n_lan iptables -w -I "${drop_first[@]}"
t0=$(tn_now_ms)
get_ok "a target that answers the retransmitted SYN"
t1=$(tn_now_ms)
n_lan iptables -w -D "${drop_first[@]}"
[ $((t1 - t0)) -ge 900 ] || fail "the first SYN was not dropped (answered in $((t1 - t0)) ms)"
tn_log "a target that answers the retransmitted SYN: $((t1 - t0)) ms"
n_lan iptables -w -I INPUT -p tcp --dport 7998 --syn -j DROP
must_fail_fast "$TN_VIRT_IP" 7998 "a target that never answers (dial timeout 2 s)"
grep -q "Connection timed out" "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the proxy did not log that dialing the silent target timed out"
get_ok "after the dial timeouts"

# The three programs count each failed flow under the same result (tunnel_flows_total).
flows() {
	"$1" timeout 10 curl -sS "http://127.0.0.1:$2/metrics" |
		awk -v r="$3" '$1 == "tunnel_flows_total{result=\"" r "\"}" { print $2 }'
}
for result in refused timeout; do
	c=$(flows n_cli 9092 "$result") r=$(flows n_relay 9090 "$result") p=$(flows n_lan 9091 "$result")
	[ "${c:-0}" -gt 0 ] && [ "$c" = "$r" ] && [ "$r" = "$p" ] ||
		fail "flows $result: client ${c:-none}, relay ${r:-none}, proxy ${p:-none}"
	tn_log "flows $result: $c in the client, the relay and the proxy alike"
done
