#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gateway.sh: with --gateway the client also carries what its host forwards: a fourth
# namespace routed through the client's reaches the LAN through the tunnel (TCP by PREROUTING
# REDIRECT, UDP and ping by PREROUTING NFQUEUE; IPv4 and IPv6), and with --fail-closed
# forwarded traffic the tunnel does not carry is rejected (FORWARD).
#
#   tn-host-$$ 10.201.4.2 ── default via 10.201.4.1 ──▶ tn-cli-$$ (client --gateway)
#        curl / dig / ping 100.64.2.2 ══ relay ══ proxy ── tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

TN_NS_HOST="tn-host-$$"
HOST_IP=10.201.4.2
GW_IP=10.201.4.1
TN_NAMESPACES+=" $TN_NS_HOST"
tn_ns_setup "$TN_NS_HOST"
tn_veth "$TN_NS_CLI" "tnh$$c" "$GW_IP" "$TN_NS_HOST" "tnh$$h" "$HOST_IP"
ip -n "$TN_NS_HOST" route add default via "$GW_IP"
n_sysctl "$TN_NS_CLI" net.ipv4.ip_forward=1
n_host() { tn_in "$TN_NS_HOST" "$@"; }
# IPv6 too: the host reaches fd00:64:2::2 (the LAN's fd00:201:2::2) through the client.
for ns in "$TN_NS_CLI" "$TN_NS_HOST" "$TN_NS_LAN"; do
	n_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
done
n_sysctl "$TN_NS_CLI" net.ipv6.conf.all.forwarding=1
ip -n "$TN_NS_CLI" addr add fd00:201:4::1/64 dev "tnh$$c" nodad
ip -n "$TN_NS_HOST" addr add fd00:201:4::2/64 dev "tnh$$h" nodad
ip -n "$TN_NS_HOST" -6 route add default via fd00:201:4::1
ip -n "$TN_NS_CLI" -6 route add fd00:64::/32 dev "tns$$a" metric 100
ip -n "$TN_NS_LAN" addr add fd00:201:2::2/64 dev "tnl$$" nodad
mkdir -p "$TN_TMP/www6"
echo "hello over IPv6 from the LAN, run $$" >"$TN_TMP/www6/index.html"
tn_spawn http6 "$TN_NS_LAN" "$TN_PYTHON" -m http.server --bind :: --directory "$TN_TMP/www6" 8081
wait_port "$TN_NS_LAN" 8081 10 || fail "the IPv6 web server does not listen"

lan_http 8080
have_dns=0
if command -v dnsmasq >/dev/null && command -v dig >/dev/null; then
	have_dns=1
	lan_dns "$TN_LAN_IP" 192.0.2.77
fi
n_sysctl "$TN_NS_LAN" net.ipv4.ping_group_range="0 2147483647"
tn_certs
start_relay
start_proxy --network "cidr=fd00:201:2::/64,virtual_cidr=fd00:64:2::/64"
wait_registered

tn_log "without --gateway the host behind the client is not carried"
start_client
wait_client_ready
! n_host timeout 5 curl -sS --max-time 2 "http://$TN_VIRT_IP:8080/" || fail "carried without --gateway"
tn_stop client TERM 10 || fail "the client did not exit cleanly"

TN_CLIENT_NAME=client-gw
start_client --gateway --cidr fd00:64::/32
wait_client_ready
rules_of_client >&2
[ "$(rules_of_client | grep -c -- '^-A PREROUTING')" = 4 ] ||
	fail "expected 4 PREROUTING jumps (nat, mangle; IPv4 and IPv6)"

tn_log "the host behind the client reaches the LAN: HTTP"
body=$(n_host timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl from the host failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body: '$body'"
wait_for_log "$TN_TMP/relay.log" "client=client-1 $HOST_IP:[0-9]+ -> $TN_VIRT_IP:8080" 5 ||
	fail "the relay saw no flow from $HOST_IP"

tn_log "the host behind the client reaches the LAN over IPv6"
body=$(n_host timeout 10 curl -sS -g --max-time 8 "http://[fd00:64:2::2]:8081/") || fail "curl -6 from the host failed"
[ "$body" = "hello over IPv6 from the LAN, run $$" ] || fail "wrong body over IPv6: '$body'"

tn_log "ping from the host"
out=$(n_host timeout 20 ping -n -c 3 -i 0.2 -W 2 "$TN_VIRT_IP" 2>&1) || fail "ping from the host failed: $out"
grep -q '3 packets transmitted, 3 received' <<<"$out" || fail "ping from the host: $out"
tn_log "a ping larger than the host's link: the client fragments the reply it injects"
out=$(n_host timeout 20 ping -n -c 2 -i 0.2 -W 2 -s 3000 "$TN_VIRT_IP" 2>&1) ||
	fail "ping -s 3000 from the host failed: $out"
grep -q '2 packets transmitted, 2 received' <<<"$out" || fail "ping -s 3000 from the host: $out"

if [ "$have_dns" = 1 ]; then
	tn_log "dig from the host (UDP)"
	answer=$(n_host timeout 10 dig +short +time=3 +tries=1 @"$TN_VIRT_IP" gw.tunnel.test A) ||
		fail "dig from the host failed"
	[ "$answer" = 192.0.2.77 ] || fail "dig from the host: wrong answer '$answer'"
fi

tn_log "the client's own port, reached directly (not redirected), is refused"
! n_host timeout 5 curl -sS --max-time 2 "http://$GW_IP:$TN_CLIENT_PORT/" || fail "the listener carried a direct connection"
wait_for_log "$TN_TMP/client-gw.log" "accepted a connection without an original destination \(not redirected by our rules\): reset$" 5 ||
	fail "the client did not refuse the direct connection"

tn_stop client-gw TERM 10 || fail "the client did not exit cleanly"
[ -z "$(rules_of_client)" ] || fail "rules left after exit: $(rules_of_client)"

tn_log "--gateway --fail-closed: once the client is gone, forwarded traffic is rejected at once"
TN_CLIENT_NAME=client-fc
start_client --gateway --fail-closed
wait_client_ready
rules_of_client | grep -q -- '-A FORWARD .*-j TUNNEL_CLIENT_FC' || fail "no FORWARD jump to the fail-closed chain"
body=$(n_host timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl from the host failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body: '$body'"
tn_stop client-fc TERM 10 || fail "the client did not exit cleanly"
t0=$(tn_now_ms)
! n_host timeout 10 curl -sS --max-time 5 "http://$TN_VIRT_IP:8080/" 2>/dev/null || fail "reached the LAN with no client"
dt=$(($(tn_now_ms) - t0))
[ "$dt" -lt 1000 ] || fail "forwarded traffic took $dt ms to fail (not rejected)"
tn_log "rejected after $dt ms"
n_cli timeout 10 "$TN_BIN/client/client" --cleanup >/dev/null 2>&1 || fail "client --cleanup failed"
[ -z "$(rules_of_client)" ] || fail "rules left after --cleanup: $(rules_of_client)"
