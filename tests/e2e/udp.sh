#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# udp.sh: UDP through the tunnel (NFQUEUE at the client, a connected UDP socket at the proxy).
#
#   dig @100.64.2.2 ─▶ [mangle OUTPUT: NFQUEUE] ─▶ client ══▶ relay ══▶ proxy ─▶ dnsmasq 10.201.2.2:53
#   the answer comes back to dig from 100.64.2.2:53 (a raw socket at the client)
#
#   Then iperf3 -u at a fixed rate for a few seconds, first directly from cli to an iperf3 in
#   the relay's namespace (the baseline), then through the tunnel: the tunnel may lose no more
#   than the direct path plus a small tolerance, and datagram boundaries must survive (iperf3
#   checks every datagram's sequence number and would report errors otherwise).
#   Finally the flows close after --udp-idle-timeout, and every rule goes on exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
for b in dig dnsmasq iperf3; do
	command -v "$b" >/dev/null || tn_skip "$b is not installed (deploy/install-deps.sh)"
done

RATE=${TN_UDP_RATE:-50M}
SECS=${TN_UDP_SECS:-5}
TOLERANCE=${TN_UDP_LOSS_TOLERANCE:-1.0} # percentage points over the direct path's loss

lan_dns "$TN_LAN_IP" 192.0.2.77
tn_certs
start_relay
start_proxy
wait_registered
start_client --udp-idle-timeout 2s --admin :9092
wait_client_ready
rules_of_client >&2
rules_of_client | grep -q -- '-p udp .*-j NFQUEUE' || fail "no NFQUEUE rule for UDP"

tn_log "dig @$TN_VIRT_IP through the tunnel"
for q in 1 2 3; do
	answer=$(n_cli timeout 10 dig +short +time=3 +tries=1 @"$TN_VIRT_IP" "q$q.tunnel.test" A) ||
		fail "dig through the tunnel failed"
	[ "$answer" = 192.0.2.77 ] || fail "dig: wrong answer '$answer'"
done
wait_for_log "$TN_TMP/dnsmasq.log" "query\[A\] q3.tunnel.test from $TN_LAN_IP" 5 ||
	fail "dnsmasq did not see the query come from the proxy"
tn_log "malformed UDP (a length beyond the packet) is counted, dropped and logged; dig still works"
n_cli timeout 5 "$TN_PYTHON" -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for _ in range(3):
    s.sendto(struct.pack("!HHHH", 40000, 53, 200, 0) + b"abcd", (sys.argv[1], 0))
' "$TN_VIRT_IP" || fail "could not send the malformed packets"
wait_for_log "$TN_TMP/client.log" "packet not carried \(bad length\); so far: 1 " 5 ||
	fail "the client did not report the malformed packet"
sleep 0.2
[ "$(count_lines "$TN_TMP/client.log" "packet not carried")" = 1 ] ||
	fail "the warning about malformed packets is not rate-limited"
answer=$(n_cli timeout 10 dig +short +time=3 +tries=1 @"$TN_VIRT_IP" after.tunnel.test A) ||
	fail "dig after the malformed packets failed"
[ "$answer" = 192.0.2.77 ] || fail "dig after the malformed packets: wrong answer '$answer'"

tn_log "datagrams to a network no proxy serves: one refused flow, the rest dropped at the client"
n_cli timeout 10 "$TN_PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    s.sendto(b"x%d" % i, (sys.argv[1], 53))
    time.sleep(0.05)
' 100.64.7.7 || fail "could not send to 100.64.7.7"
wait_for_log "$TN_TMP/client.log" "-> 100.64.7.7:53 udp proxy=- datagrams up=[0-9]+ down=0 dropped=[0-9]+ no route" 8 ||
	fail "the client did not end the refused flow"
[ "$(count_lines "$TN_TMP/client.log" "-> 100.64.7.7:53 udp: open")" = 1 ] ||
	fail "the client asked the relay again for each datagram of a refused flow"
line=$(grep -E -- "-> 100.64.7.7:53 udp proxy=" "$TN_TMP/client.log")
up=$(sed -E 's/.* up=([0-9]+) .*/\1/' <<<"$line")
dropped=$(sed -E 's/.* dropped=([0-9]+) .*/\1/' <<<"$line")
[ $((up + dropped)) = 20 ] || fail "20 datagrams sent, $up carried and $dropped dropped: $line"

tn_log "a DNS query over TCP on the same address works too"
answer=$(n_cli timeout 10 dig +tcp +short +time=3 +tries=1 @"$TN_VIRT_IP" tcp.tunnel.test A) ||
	fail "dig +tcp failed"
[ "$answer" = 192.0.2.77 ] || fail "dig +tcp: wrong answer '$answer'"

tn_log "idle UDP flows close after the timeout (2 s here)"
wait_for_log "$TN_TMP/client.log" "-> $TN_VIRT_IP:53 udp proxy=proxy-1 datagrams up=1 down=1 dropped=0 closed" 10 ||
	fail "the client did not close an idle UDP flow cleanly"
wait_for_log "$TN_TMP/proxy.log" "-> $TN_LAN_IP:53 udp datagrams up=1 down=1 dropped=0 closed" 5 ||
	fail "the proxy did not close the idle UDP flow cleanly"
# The client's metrics count UDP flows as the relay's and the proxy's do: four dig queries and
# one dig +tcp ended cleanly, the datagrams to 100.64.7.7 were one flow with no route.
flows() {
	n_cli timeout 10 curl -sS http://127.0.0.1:9092/metrics |
		awk -v r="$1" '$1 == "tunnel_flows_total{result=\"" r "\"}" { print $2 }'
}
ok=$(flows ok) no_route=$(flows no_route)
[ "${ok:-0}" -ge 5 ] && [ "${no_route:-0}" = 1 ] ||
	fail "the client's metrics: ${ok:-no} flows ok (5 or more expected), ${no_route:-no} no_route (1)"
tn_log "the client's metrics: $ok flows ok, $no_route no_route, UDP included"

# iperf3_loss NAME NS SERVER-IP: runs a UDP test at $RATE; prints the loss percentage.
iperf3_loss() {
	local out=$TN_TMP/iperf-$1.json
	n_cli timeout $((SECS + 20)) iperf3 -c "$3" -p 5201 -u -b "$RATE" -t "$SECS" -J >"$out" ||
		{ cat "$out" >&2; fail "iperf3 -u $1 failed"; }
	"$TN_PYTHON" - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["end"]["sum"]
print("%.3f %d %d" % (s["lost_percent"], s["packets"], s["lost_packets"]))
PY
}
tn_spawn iperf-direct "$TN_NS_RELAY" iperf3 -s -p 5201 -B "$TN_RELAY_CLI_IP"
tn_spawn iperf-lan "$TN_NS_LAN" iperf3 -s -p 5201 -B "$TN_LAN_IP"
wait_port "$TN_NS_RELAY" 5201 10 || fail "iperf3 does not listen in the relay's namespace"
wait_port "$TN_NS_LAN" 5201 10 || fail "iperf3 does not listen in the LAN"
read -r direct dpk dlost < <(iperf3_loss direct "$TN_NS_CLI" "$TN_RELAY_CLI_IP")
tn_log "direct path at $RATE for $SECS s: $dlost of $dpk datagrams lost ($direct %)"
read -r tunnel tpk tlost < <(iperf3_loss tunnel "$TN_NS_CLI" "$TN_VIRT_IP")
tn_log "through the tunnel at $RATE for $SECS s: $tlost of $tpk datagrams lost ($tunnel %)"
[ "$tpk" -gt 1000 ] || fail "iperf3 sent only $tpk datagrams through the tunnel"
awk -v t="$tunnel" -v d="$direct" -v tol="$TOLERANCE" 'BEGIN { exit !(t <= d + tol) }' ||
	fail "the tunnel lost $tunnel % at $RATE, the direct path $direct % (tolerance $TOLERANCE points)"

tn_log "the relay goes away: UDP is dropped and counted at the client, then works again"
tn_stop relay KILL 5 || true
wait_for_log "$TN_TMP/client.log" "relay connection lost" 10 || fail "the client did not notice"
! n_cli timeout 5 dig +short +time=1 +tries=1 @"$TN_VIRT_IP" away.tunnel.test A >/dev/null || fail "dig answered with no relay"
wait_for_log "$TN_TMP/client.log" "packet not carried \(no relay connection\)" 5 ||
	fail "the client did not report the datagrams it could not carry"
TN_RELAY_NAME=relay-2 start_relay
wait_back relay-2
answer=$(n_cli timeout 10 dig +short +time=3 +tries=1 @"$TN_VIRT_IP" back.tunnel.test A) ||
	fail "dig after the relay came back failed"
[ "$answer" = 192.0.2.77 ] || fail "dig after the relay came back: wrong answer '$answer'"

tn_stop client TERM 10 || fail "the client did not exit cleanly"
[ -z "$(rules_of_client)" ] || fail "rules left after exit: $(rules_of_client)"
