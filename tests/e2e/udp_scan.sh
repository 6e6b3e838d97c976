#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# udp_scan.sh: a port scan through the tunnel (one datagram to each of 200 ports) takes neither
# the client's nor the proxy's sockets from everyone else.
#
#   client --udp-max-flows 40: the 41st flow ends the one silent longest ("udp_max_flows"), and
#     a DNS query right after the scan is answered
#   proxy with 96 open files: at most 48 UDP flows at once (half its open files); the rest are
#     refused, and TCP through the tunnel works during the scan
#
#   tn-cli-$$ ── client ══ tn-relay-$$ ══ proxy ── tn-lan-$$ (dnsmasq :53, web server :8080)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
for b in dig dnsmasq prlimit; do
	command -v "$b" >/dev/null || tn_skip "$b is not installed (deploy/install-deps.sh)"
done

lan_dns "$TN_LAN_IP" 192.0.2.77
lan_http 8080
tn_certs
start_relay
TN_PROXY_PREFIX="prlimit --nofile=96:96" start_proxy
wait_registered

# scan: one datagram from each of 200 source ports to the LAN's port 53, at once.
scan() {
	n_cli timeout 20 "$TN_PYTHON" -c '
import socket, sys
socks = []
for i in range(200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"\0" * 12, (sys.argv[1], 53))
    socks.append(s)
' "$TN_VIRT_IP" || fail "could not send the scan"
}
dig_ok() {
	local answer
	answer=$(n_cli timeout 10 dig +short +time=2 +tries=2 @"$TN_VIRT_IP" "$1.tunnel.test" A) ||
		fail "dig $1 failed"
	[ "$answer" = 192.0.2.77 ] || fail "dig $1: wrong answer '$answer'"
}

tn_log "the client keeps at most --udp-max-flows 40 UDP flows"
TN_CLIENT_NAME=client-40 start_client --udp-max-flows 40 --udp-idle-timeout 30s
TN_CLIENT_NAME=client-40 wait_client_ready
scan
wait_for_log "$TN_TMP/client-40.log" "UDP and ICMP flows open \(udp_max_flows\): the one silent longest ends" 5 ||
	fail "the client did not say it ended flows for new ones"
wait_for_log "$TN_TMP/client-40.log" "ended for a newer flow \(udp_max_flows\)" 5 ||
	fail "no flow ended for a newer one"
dig_ok after-scan
tn_log "a query right after the scan is answered"
tn_stop client-40 TERM 10 || fail "the client did not exit 0"

tn_log "the proxy keeps half its 96 open files for other flows"
TN_CLIENT_NAME=client-1000 start_client --udp-max-flows 1000 --udp-idle-timeout 3s
TN_CLIENT_NAME=client-1000 wait_client_ready
scan
wait_for_log "$TN_TMP/proxy.log" "UDP and ICMP flows open, half the open files: refused" 5 ||
	fail "the proxy did not refuse UDP flows over half its open files"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") ||
	fail "TCP through the tunnel failed during the scan"
[ "$body" = "$TN_HTTP_BODY" ] || fail "TCP during the scan: wrong body '$body'"
tn_log "TCP through the tunnel works beside the scan"
sleep 4 # the scan's flows go idle (3 s)
dig_ok after-idle
tn_stop client-1000 TERM 10 || fail "the client did not exit 0"
tn_log "passed"
