#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# topology.sh: the harness checks itself, without the tunnel. The other tests' negative cases
# mean something only if cli really cannot reach lan on its own, and their positive cases only
# if the traffic tools are right on plain TCP.
#
#   tn-cli-$$ 10.201.1.1 ──── 10.201.1.2 tn-relay-$$ 10.201.2.1 ──── 10.201.2.2 tn-lan-$$
#   (sink for 10.201.2.0/24, 100.64.0.0/10)   (no forwarding)        (no route back)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init --no-binaries

# Listeners on every side (bound to all addresses of their namespace).
tn_spawn relay-echo "$TN_NS_RELAY" "$TN_PYTHON" "$TN_TOOLS" serve-echo 7001
lan_serve echo 7001 serve-echo 7001
lan_serve sha 7002 serve-sha 7002 --reply-bytes 1048576
lan_serve source 7003 serve-source 7003 10485760 42
lan_serve early 7004 serve-early-close 7004 1048576 --result-file "$TN_TMP/early.result"
lan_http 8080
wait_port "$TN_NS_RELAY" 7001 10 || fail "relay echo server does not listen"

tn_log "paths that must exist"
tools_in "$TN_NS_CLI" 5 probe "$TN_RELAY_CLI_IP" 7001 --send ping --expect data --timeout 2 ||
	fail "cli cannot reach the relay"
tools_in "$TN_NS_LAN" 5 probe "$TN_RELAY_LAN_IP" 7001 --send ping --expect data --timeout 2 ||
	fail "lan cannot reach the relay"

tn_log "paths that must not exist (no tunnel running)"
! tools_in "$TN_NS_CLI" 5 probe "$TN_LAN_IP" 7001 --send ping --expect data --timeout 1 || false
! tools_in "$TN_NS_CLI" 5 probe "$TN_VIRT_IP" 7001 --send ping --expect data --timeout 1 || false
! n_cli timeout 5 curl -sS --max-time 1 "http://$TN_LAN_IP:8080/" || false
! n_cli timeout 5 curl -sS --max-time 1 "http://$TN_VIRT_IP:8080/" || false
! tools_in "$TN_NS_LAN" 5 probe "$TN_CLI_IP" 7001 --expect data --timeout 1 || false
[ "$(n_relay timeout 5 sysctl -n net.ipv4.ip_forward)" = 0 ] || fail "the relay forwards"
n_cli timeout 5 ip route get "$TN_VIRT_IP" | grep -q "dev tns$$a" || fail "no sink route for $TN_VIRT_IP"

tn_log "the tools on plain TCP inside the LAN (loopback and its own address)"
for host in 127.0.0.1 "$TN_LAN_IP"; do
	out=$(n_lan timeout 10 curl -sS --max-time 5 "http://$host:8080/") || fail "curl $host"
	[ "$out" = "$TN_HTTP_BODY" ] || fail "http body: got '$out'"
	tools_in "$TN_NS_LAN" 20 concurrent "$host" 7001 --count 50 --timeout 10 || fail "concurrent $host"
	tools_in "$TN_NS_LAN" 20 half-close "$host" 7002 --timeout 10 || fail "half-close $host"
	tools_in "$TN_NS_LAN" 20 send-sha "$host" 7002 20000000 3 --timeout 10 || fail "send-sha $host"
	want=$(tmo 20 "$TN_PYTHON" "$TN_TOOLS" stream-sha 10485760 42)
	read -r got n _ < <(tools_in "$TN_NS_LAN" 20 recv-sha "$host" 7003 --timeout 10)
	if [ "$got" != "$want" ] || [ "$n" != 10485760 ]; then fail "recv-sha $host: $got $n, want $want"; fi
	rm -f "$TN_TMP/early.result"
	read -r sent_sha sent_n < <(tools_in "$TN_NS_LAN" 20 early-close "$host" 7004 500000 --timeout 10)
	wait_file "$TN_TMP/early.result" 10 || fail "early-close: the server recorded nothing"
	[ "$(cat "$TN_TMP/early.result")" = "$sent_sha $sent_n" ] || fail "early-close $host: server got $(cat "$TN_TMP/early.result")"
	tools_in "$TN_NS_LAN" 5 probe "$host" 7999 --expect refused --timeout 2 || fail "probe refused"
done
