#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ipv6.sh: IPv6 through the tunnel, in a mixed IPv4/IPv6 configuration.  The client intercepts
# 100.64.0.0/10 and fd00:64::/32 (ip6tables REDIRECT, IP6T_SO_ORIGINAL_DST; UDP and ICMPv6 echo
# through NFQUEUE); the proxy serves 10.201.2.0/24 as 100.64.2.0/24 and fd00:201:2::/64 as
# fd00:64:2::/64.  The tunnel itself stays on IPv4.
#
#   curl http://[fd00:64:2::2]:8080/ ─▶ client ══▶ relay ══▶ proxy ─▶ [fd00:201:2::2]:8080
#   dig @fd00:64:2::2, ping fd00:64:2::2 the same way; IPv4 still works beside it
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
command -v ip6tables-restore >/dev/null || tn_skip "ip6tables is not installed"

LAN6=fd00:201:2::2
VIRT6=fd00:64:2::2
for ns in $TN_NAMESPACES; do
	n_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
done
ip -n "$TN_NS_LAN" addr add "$LAN6/64" dev "tnl$$" nodad
ip -n "$TN_NS_CLI" addr add fd00:201:1::1/64 dev "tnc$$" nodad # a source for the applications
ip -n "$TN_NS_CLI" -6 route add fd00:64::/32 dev "tns$$a" metric 100
ip -n "$TN_NS_CLI" -6 route add fd00:201::/32 dev "tns$$a" metric 100
n_sysctl "$TN_NS_LAN" net.ipv4.ping_group_range="0 2147483647"

# Dual-stack web server (python's http.server binds :: with IPv4 mapped).
mkdir -p "$TN_TMP/www"
TN_HTTP_BODY="hello over IPv6, run $$"
echo "$TN_HTTP_BODY" >"$TN_TMP/www/index.html"
tn_spawn http "$TN_NS_LAN" "$TN_PYTHON" -m http.server --bind :: --directory "$TN_TMP/www" 8080
wait_port "$TN_NS_LAN" 8080 10 || fail "the web server does not listen"
have_dns=0
if command -v dnsmasq >/dev/null && command -v dig >/dev/null; then
	have_dns=1
	lan_dns "$LAN6" 2001:db8::77
fi

tn_certs
start_relay
start_proxy --network "cidr=fd00:201:2::/64,virtual_cidr=fd00:64:2::/64"
wait_registered
wait_for_log "$TN_TMP/relay.log" "fd00:64:2::/64" 5 || fail "the proxy did not announce its IPv6 network"
start_client --cidr fd00:64::/32
wait_client_ready
wait_port "$TN_NS_CLI" "$TN_CLIENT_PORT" 5 || fail "the client does not listen"
grep -q "IPv6 networks are not intercepted" "$TN_TMP/client.log" && fail "the client still ignores IPv6"
n_cli timeout 10 ip6tables-save | grep -E 'TUNNEL_CLIENT|tunnel-client' >&2 || fail "no ip6tables rules"

tn_log "GET http://[$VIRT6]:8080/ through the tunnel"
body=$(n_cli timeout 10 curl -sS -g --max-time 8 "http://[$VIRT6]:8080/") || fail "curl over IPv6 failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body over IPv6: '$body'"
wait_for_log "$TN_TMP/relay.log" "-> \[$VIRT6\]:8080 proxy=proxy-1" 5 || fail "the relay logged no IPv6 flow"
wait_for_log "$TN_TMP/http.log" "^$LAN6 - - .*\"GET / HTTP/1.1\" 200" 5 ||
	fail "the web server did not see the request come from the proxy at $LAN6"

tn_log "IPv4 beside it"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl over IPv4 failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body over IPv4: '$body'"

tn_log "the LAN's real IPv6 address is not intercepted: unreachable"
! n_cli timeout 5 curl -sS -g --max-time 2 "http://[$LAN6]:8080/" || false

tn_log "ping $VIRT6 (ICMPv6 echo)"
out=$(n_cli timeout 20 ping -6 -n -c 3 -i 0.2 -W 2 "$VIRT6" 2>&1) || fail "ping -6 failed: $out"
grep -q '3 packets transmitted, 3 received' <<<"$out" || fail "ping -6: $out"
tn_log "ping $VIRT6 with the proxy's raw ICMPv6 socket (ICMP sockets forbidden)"
n_sysctl "$TN_NS_LAN" net.ipv4.ping_group_range="1 0"
out=$(n_cli timeout 20 ping -6 -n -c 3 -i 0.2 -W 2 "$VIRT6" 2>&1) || fail "ping -6 (raw) failed: $out"
grep -q '3 packets transmitted, 3 received' <<<"$out" || fail "ping -6 (raw): $out"
wait_for_log "$TN_TMP/proxy.log" "ICMP sockets not allowed here" 5 || fail "the proxy did not fall back to a raw socket"

if [ "$have_dns" = 1 ]; then
	tn_log "dig @$VIRT6 (UDP over IPv6)"
	answer=$(n_cli timeout 10 dig +short +time=3 +tries=1 @"$VIRT6" v6.tunnel.test AAAA) ||
		fail "dig over IPv6 failed"
	[ "$answer" = 2001:db8::77 ] || fail "dig over IPv6: wrong answer '$answer'"
fi

rules6() { n_cli timeout 10 ip6tables-save | grep -E 'TUNNEL_CLIENT|tunnel-client' || true; }
tn_stop client TERM 10 || fail "the client did not exit cleanly"
[ -z "$(rules6)" ] || fail "ip6tables rules left after exit: $(rules6)"
[ -z "$(rules_of_client)" ] || fail "iptables rules left after exit"

tn_log "after SIGKILL the rules stay; client --cleanup removes them in both families"
TN_CLIENT_NAME=client-killed
start_client --cidr fd00:64::/32 --fail-closed
wait_client_ready
rc=0
tn_stop client-killed KILL 10 || rc=$?
[ "$rc" = 137 ] || fail "the client did not die of SIGKILL (status $rc)"
[ -n "$(rules6)" ] || fail "no ip6tables rules left by the killed client"
n_cli timeout 10 "$TN_BIN/client/client" --cleanup >/dev/null 2>&1 || fail "client --cleanup failed"
[ -z "$(rules6)" ] || fail "ip6tables rules left after --cleanup: $(rules6)"
[ -z "$(rules_of_client)" ] || fail "iptables rules left after --cleanup: $(rules_of_client)"

tn_log "an install that fails half way removes what it did install: nothing outlives the client"
mkdir -p "$TN_TMP/fakebin"
printf '#!/bin/sh\nexit 1\n' >"$TN_TMP/fakebin/ip6tables-restore"
chmod +x "$TN_TMP/fakebin/ip6tables-restore"
tn_spawn client-half "$TN_NS_CLI" env "PATH=$TN_TMP/fakebin:$PATH" "$TN_BIN/client/client" \
	--server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" --cidr "$TN_INTERCEPT" --cidr fd00:64::/32 \
	--listen-port "$TN_CLIENT_PORT" --tls-cert "$TN_CERTS/client/cert.pem" \
	--tls-key "$TN_CERTS/client/key.pem" --tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
tn_exit_of client-half 10
[ "$TN_RC" = 1 ] || fail "a client whose ip6tables-restore fails did not exit with status 1 ($TN_RC)"
[ -z "$(rules_of_client)" ] || fail "rules left after a failed install: $(rules_of_client)"

tn_log "a reload that adds the first IPv6 network opens the IPv6 listener"
mkdir -p "$TN_TMP/wrapbin"
# An ip6tables-restore that refuses any rule for fd00:65::/32, and passes the rest on.
cat >"$TN_TMP/wrapbin/ip6tables-restore" <<EOF
#!/bin/sh
in=\$(cat)
case \$in in *fd00:65::*) exit 1 ;; esac
printf '%s\n' "\$in" | exec $(command -v ip6tables-restore) "\$@"
EOF
chmod +x "$TN_TMP/wrapbin/ip6tables-restore"
reload_client() {
	printf 'target_cidr: [%s]\n' "$1" >"$TN_TMP/client-reload.yaml"
	kill -HUP "$(tn_pid client-reload)"
	wait_for_log "$TN_TMP/client-reload.log" "$2" 10 || fail "the client did not log /$2/ on reload"
}
printf 'target_cidr: [%s]\n' "$TN_INTERCEPT" >"$TN_TMP/client-reload.yaml"
TN_CLIENT_NAME=client-reload # for wait_client_ready
tn_spawn client-reload "$TN_NS_CLI" env "PATH=$TN_TMP/wrapbin:$PATH" "$TN_BIN/client/client" \
	--server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" --config "$TN_TMP/client-reload.yaml" \
	--listen-port "$TN_CLIENT_PORT" --tls-cert "$TN_CERTS/client/cert.pem" \
	--tls-key "$TN_CERTS/client/key.pem" --tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_client_ready
reload_client "\"$TN_INTERCEPT\", \"fd00:64::/32\"" "reload: done"
body=$(n_cli timeout 10 curl -sS -g --max-time 8 "http://[$VIRT6]:8080/") ||
	fail "IPv6 TCP after a reload added the first IPv6 network"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body over IPv6 after the reload: '$body'"

tn_log "a reload whose rules cannot go in keeps the old ones"
reload_client "\"$TN_INTERCEPT\", \"fd00:64::/32\", \"fd00:65::/32\"" \
	"reload: the new networks' rules could not be installed: nothing changed"
[ -n "$(rules6)" ] || fail "the failed reload took the IPv6 rules away"
for url in "http://[$VIRT6]:8080/" "http://$TN_VIRT_IP:8080/"; do
	body=$(n_cli timeout 10 curl -sS -g --max-time 8 "$url") || fail "$url after a failed reload"
	[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body from $url after a failed reload"
done
tn_stop client-reload TERM 10 || fail "the client did not exit cleanly"
[ -z "$(rules_of_client)" ] || fail "rules left after exit: $(rules_of_client)"

tn_log "a relay name with an AAAA record that does not answer and an A record that does"
# The AAAA address is the relay's, but its SYNs are dropped: the dial times out (10 s).
ip -n "$TN_NS_RELAY" addr add fd00:201:1::99/64 dev "tnr$$c" nodad
n_relay ip6tables -w -A INPUT -d fd00:201:1::99 -p tcp --syn -j DROP
mkdir -p "/etc/netns/$TN_NS_CLI" # removed with the namespace (tn_ns_delete)
printf 'fd00:201:1::99 relay.e2e.test\n%s relay.e2e.test\n' "$TN_RELAY_CLI_IP" >"/etc/netns/$TN_NS_CLI/hosts"
first=$(n_cli timeout 5 getent ahostsv6 relay.e2e.test | head -n1 | cut -d' ' -f1)
[ "$first" = fd00:201:1::99 ] || fail "the resolver does not give the IPv6 address first ($first): the case is not set up"
TN_CLIENT_NAME=client-multi # for wait_client_ready
# Both relay addresses lie inside intercepted networks: the rules must keep every
# address the client may dial the relay at out of the tunnel.
tn_spawn client-multi "$TN_NS_CLI" "$TN_BIN/client/client" \
	--server "relay.e2e.test:$TN_RELAY_PORT" --server-name "$TN_RELAY_CLI_IP" --cidr "$TN_INTERCEPT" \
	--cidr 10.201.1.0/24 --cidr fd00:201:1::/64 --listen-port "$TN_CLIENT_PORT" \
	--tls-cert "$TN_CERTS/client/cert.pem" \
	--tls-key "$TN_CERTS/client/key.pem" --tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_client_ready 40
grep -q "relay relay.e2e.test:$TN_RELAY_PORT (\[fd00:201:1::99\]:$TN_RELAY_PORT): connect timed out; trying its address 2 of 2" \
	"$TN_TMP/client-multi.log" || fail "the client did not move on to the relay's second address after a timeout"
rules_of_client | grep -q -- "-d fd00:201:1::99/128 -p tcp -m tcp --dport $TN_RELAY_PORT .*-j RETURN" ||
	fail "no exception for the relay's IPv6 address: $(rules_of_client)"
rules_of_client | grep -q -- "-d $TN_RELAY_CLI_IP/32 -p tcp -m tcp --dport $TN_RELAY_PORT .*-j RETURN" ||
	fail "no exception for the relay's IPv4 address, the one in use: $(rules_of_client)"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl through the relay's A record failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body through the relay's A record: '$body'"
tn_stop client-multi TERM 10 || fail "the client did not exit cleanly"
