#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# two_lans.sh: two LANs that both use 10.201.2.0/24, each with its own proxy and its own web
# server at 10.201.2.2, are told apart by their virtual ranges: 100.64.2.2 reaches LAN a's
# server and 100.64.3.2 LAN b's, never the other, one request at a time or mixed at once.
#
#   tn-cli-$$                  tn-relay-$$                       tn-lan-$$ (LAN a)
#   curl 100.64.2.2:8080 ┐     10.201.2.1 ──────────────────── 10.201.2.2  proxy lan-a
#   curl 100.64.3.2:8080 ┴═ client ═ relay                     web server "LAN a"
#                              10.201.3.1 ──┐                  tn-lanb-$$ (LAN b)
#                                           └──────────────── 10.201.3.2  proxy lan-b
#                                                              10.201.2.2 (veth of its own)
#                                                              web server "LAN b"
#   lan-a: 10.201.2.0/24 as 100.64.2.0/24      lan-b: 10.201.2.0/24 as 100.64.3.0/24
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
tn_lanb_up

BODY_A="LAN a, run $$ $RANDOM$RANDOM"
BODY_B="LAN b, run $$ $RANDOM$RANDOM"
ns_http http-a "$TN_NS_LAN" 8080 "$BODY_A"
ns_http http-b "$TN_NS_LANB" 8080 "$BODY_B"
# The two servers really are at the same address, each in its own LAN.
[ "$(n_lan timeout 5 curl -sS --max-time 3 "http://$TN_LAN_IP:8080/")" = "$BODY_A" ] ||
	fail "LAN a's own server does not answer at $TN_LAN_IP"
[ "$(n_lanb timeout 5 curl -sS --max-time 3 "http://$TN_LAN_IP:8080/")" = "$BODY_B" ] ||
	fail "LAN b's own server does not answer at $TN_LAN_IP"

tn_certs
tn_issue proxy lan-a
tn_issue proxy lan-b
start_relay
TN_PROXY_ID=lan-a TN_PROXY_NAME=proxy-a TN_PROXY_CERTS="$TN_CERTS/proxy-lan-a" \
	TN_PROXY_VIRTUAL=100.64.2.0/24 start_proxy
TN_PROXY_ID=lan-b TN_PROXY_NAME=proxy-b TN_PROXY_CERTS="$TN_CERTS/proxy-lan-b" \
	TN_PROXY_VIRTUAL=100.64.3.0/24 TN_PROXY_NS="$TN_NS_LANB" TN_PROXY_RELAY="$TN_RELAY_LANB_IP" \
	start_proxy
TN_PROXY_ID=lan-a wait_registered
TN_PROXY_ID=lan-b wait_registered
grep -q "proxy lan-a registered 100.64.2.0/24 -> $TN_LAN_NET" "$TN_TMP/relay.log" ||
	fail "lan-a did not register 100.64.2.0/24 -> $TN_LAN_NET"
grep -q "proxy lan-b registered 100.64.3.0/24 -> $TN_LAN_NET" "$TN_TMP/relay.log" ||
	fail "lan-b did not register 100.64.3.0/24 -> $TN_LAN_NET"
start_client
wait_client_ready

status=$(relay_status)
tn_log "relay routing table:"$'\n'"$status"
grep -Eq "100\.64\.2\.0/24 -> 10\.201\.2\.0/24: lan-a#" <<<"$status" || fail "no route 100.64.2.0/24 to lan-a"
grep -Eq "100\.64\.3\.0/24 -> 10\.201\.2\.0/24: lan-b#" <<<"$status" || fail "no route 100.64.3.0/24 to lan-b"
grep -Eq "status: 2 proxies" <<<"$status" || fail "the relay does not count 2 proxies"

# get IP BODY WHAT: one GET through the tunnel must answer BODY.
get() {
	local body
	body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$1:8080/") || fail "$3: curl $1 failed"
	[ "$body" = "$2" ] || fail "$3: $1 answered '$body', expected '$2'"
}

tn_log "one at a time, alternating"
for round in 1 2 3; do
	get 100.64.2.2 "$BODY_A" "round $round, LAN a"
	get 100.64.3.2 "$BODY_B" "round $round, LAN b"
done

tn_log "both at once: 10 requests to each LAN on one curl each, the two curls in parallel"
urls_a=() urls_b=()
for i in $(seq 1 10); do
	urls_a+=(-o "$TN_TMP/a.$i" "http://100.64.2.2:8080/")
	urls_b+=(-o "$TN_TMP/b.$i" "http://100.64.3.2:8080/")
done
n_cli timeout 20 curl -sS --max-time 15 "${urls_a[@]}" &
pid_a=$!
n_cli timeout 20 curl -sS --max-time 15 "${urls_b[@]}" || fail "the curl to LAN b failed"
wait "$pid_a" || fail "the curl to LAN a failed"
for i in $(seq 1 10); do
	[ "$(cat "$TN_TMP/a.$i")" = "$BODY_A" ] || fail "parallel request $i to LAN a got '$(cat "$TN_TMP/a.$i")'"
	[ "$(cat "$TN_TMP/b.$i")" = "$BODY_B" ] || fail "parallel request $i to LAN b got '$(cat "$TN_TMP/b.$i")'"
done

tn_log "each request went through its own LAN's proxy"
# http.server answers HTTP/1.0 and closes: 13 connections, so 13 flows, to each LAN.
wait_count "$TN_TMP/relay.log" "-> 100\.64\.[23]\.2:8080 proxy=" 26 10 || fail "the relay did not log 26 flows"
tn_log "relay: $(relay_flows 100.64.2.2:8080 | awk '{ print $3 }' | sort | uniq -c | xargs) to 100.64.2.2," \
	"$(relay_flows 100.64.3.2:8080 | awk '{ print $3 }' | sort | uniq -c | xargs) to 100.64.3.2"
[ "$(relay_flows 100.64.2.2:8080 | awk '$3 == "lan-a"' | wc -l)" = 13 ] || fail "not 13 flows to 100.64.2.2 through lan-a"
[ "$(relay_flows 100.64.3.2:8080 | awk '$3 == "lan-b"' | wc -l)" = 13 ] || fail "not 13 flows to 100.64.3.2 through lan-b"
[ "$(count_lines "$TN_TMP/relay.log" "proxy=")" = 26 ] || fail "the relay logged flows to elsewhere"
# Each web server saw its own check and the 13 GETs through the tunnel, no more.
wait_count "$TN_TMP/http-a.log" '"GET / HTTP/1.1" 200' 14 5 || fail "LAN a's server did not see 14 requests"
wait_count "$TN_TMP/http-b.log" '"GET / HTTP/1.1" 200' 14 5 || fail "LAN b's server did not see 14 requests"
[ "$(count_lines "$TN_TMP/http-a.log" '"GET ')" = 14 ] || fail "LAN a's server saw other requests"
[ "$(count_lines "$TN_TMP/http-b.log" '"GET ')" = 14 ] || fail "LAN b's server saw other requests"
# The proxies' own flow lines agree, flow id for flow id.
wait_count "$TN_TMP/proxy-a.log" "flow=[0-9a-f]{16} " 13 5 || fail "proxy lan-a did not log 13 flows"
wait_count "$TN_TMP/proxy-b.log" "flow=[0-9a-f]{16} " 13 5 || fail "proxy lan-b did not log 13 flows"
[ "$(proxy_flow_ids proxy-a)" = "$(relay_flows 100.64.2.2:8080 | awk '{ print $1 }' | sort)" ] ||
	fail "proxy lan-a's flows are not the relay's flows to 100.64.2.2"
[ "$(proxy_flow_ids proxy-b)" = "$(relay_flows 100.64.3.2:8080 | awk '{ print $1 }' | sort)" ] ||
	fail "proxy lan-b's flows are not the relay's flows to 100.64.3.2"
