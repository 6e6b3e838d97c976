#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# policy.sh: the relay's rules on who may announce what (--allow-proxy, YAML proxies:) and who
# may reach what (--allow-client, YAML access:). A refused proxy exits non-zero and the relay
# says why; a forbidden flow is reset at once, before any proxy dials, and the relay says so.
#
#   tn-cli-$$ ── client ══ tn-relay-$$ ══ proxy ── tn-lan-$$ (web server 8080, echo 7)
#   relay 1 (flags): --allow-proxy id=proxy-1,networks=100.64.2.0/24
#                    --allow-client client=client-1,networks=100.64.2.0/24,ports=8080
#     proxy-1 10.201.2.0/24 as 100.64.2.0/24         accepted
#     proxy-1 10.201.2.128/25 as 100.64.2.128/25     accepted (inside its networks)
#     rogue   10.201.2.0/24 as 100.64.9.0/24         refused: not in the proxies list
#     proxy-1 10.201.2.0/25 as 100.64.5.0/25         refused: outside its networks
#     proxy-1 100.64.2.0/24 and 100.64.5.0/25        refused as a whole
#     proxy-1 10.201.2.0/24 (no virtual range)       refused: the rule is on the address clients use
#     client-1 → 100.64.2.2:8080 works; → :7 and → :8081 reset; client-2 → :8080 reset
#   relay 2 (YAML): proxies: proxy-1 in 100.64.0.0/16; access: "*" to 100.64.2.0/24 ports
#                   "7 8000-8100": client-2 → :8080 and :7 work, → :22 reset
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_http 8080
lan_serve echo 7 serve-echo 7
tn_certs
tn_issue proxy rogue
tn_issue client client-2

get_ok() {
	local body
	body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:$2/") || fail "$1: curl failed"
	[ "$body" = "$TN_HTTP_BODY" ] || fail "$1: wrong body '$body'"
}

# forbidden WHAT HOST PORT: the app is reset (or refused) within 3 s, whether it waits for the
# server or sends first, and the relay logs the flow as refused by the access rules.
forbidden() {
	local out outcome secs send before re="-> ${2//./\\.}:$3: refused by the access rules"
	before=$(count_lines "$TN_TMP/relay.log" "$re")
	for send in "" "ping"$'\n'; do
		out=$(tools_in "$TN_NS_CLI" 10 probe "$2" "$3" --send "$send" --timeout 5 --expect refused,reset) ||
			fail "$1: the app (sending ${#send} bytes) saw '$out', expected a reset or a refusal"
		read -r outcome secs <<<"$out"
		awk -v s="$secs" 'BEGIN { exit !(s < 3) }' || fail "$1: took $secs s to fail"
		tn_log "$1: app sending ${#send} bytes: $outcome after $secs s"
	done
	wait_count "$TN_TMP/relay.log" "$re" $((before + 2)) 5 ||
		fail "$1: the relay did not log two flows refused by the access rules"
	tn_log "relay: $(grep -E -- "$re" "$TN_TMP/relay.log" | tail -n 1 | sed -E 's/.*(flow=)/\1/')"
}

# refused_proxy NAME WHY-RE ARGS...: a proxy (certificate and id as TN_PROXY_*) is refused:
# it exits non-zero within 10 s saying so, the relay logs WHY-RE and registers nothing.
refused_proxy() {
	local name=$1 why=$2 rc=0 mark
	shift 2
	mark=$(wc -l <"$TN_TMP/relay.log")
	TN_PROXY_NAME=$name start_proxy "$@"
	tn_wait_exit "$(tn_pid "$name")" 10 || rc=$?
	[ "$rc" != 124 ] || fail "$name: a refused proxy still runs after 10 s"
	[ "$rc" != 0 ] || fail "$name: a refused proxy exited 0"
	grep -q "relay refused registration: " "$TN_TMP/$name.log" || fail "$name: the proxy did not log the refusal"
	tail -n "+$((mark + 1))" "$TN_TMP/relay.log" | grep -Eq "registration refused: $why" ||
		fail "$name: the relay did not log 'registration refused: $why'"
	! tail -n "+$((mark + 1))" "$TN_TMP/relay.log" | grep -q " registered " || fail "$name: the relay registered something"
	tn_log "$name refused (exit $rc); relay: $(tail -n "+$((mark + 1))" "$TN_TMP/relay.log" | grep -E 'registration refused' | sed -E 's/.*registration refused/registration refused/')"
}

# ---- relay 1: the rules as flags
start_relay --allow-proxy id=proxy-1,networks=100.64.2.0/24 \
	--allow-client client=client-1,networks=100.64.2.0/24,ports=8080
wait_for_log "$TN_TMP/relay.log" "1 proxy rules, 1 access rules" 5 || fail "the relay did not load its rules"
start_proxy
wait_registered
grep -q "proxy proxy-1 registered $TN_VIRT_NET -> $TN_LAN_NET" "$TN_TMP/relay.log" ||
	fail "proxy-1 did not register $TN_VIRT_NET -> $TN_LAN_NET"

tn_log "proxy-1 announcing a part of its networks"
TN_PROXY_NAME=proxy-half TN_PROXY_MANAGED=10.201.2.128/25 TN_PROXY_VIRTUAL=100.64.2.128/25 start_proxy
wait_for_log "$TN_TMP/relay.log" "proxy proxy-1 registered 100.64.2.128/25 -> 10.201.2.128/25" 10 "$(tn_pid proxy-half)" ||
	fail "proxy-1 was not allowed to announce 100.64.2.128/25"
rc=0
tn_stop proxy-half TERM 10 || rc=$?
[ "$rc" = 0 ] || fail "proxy-half exited $rc on SIGTERM"

tn_log "a proxy that is not in the list"
TN_PROXY_ID=rogue TN_PROXY_CERTS="$TN_CERTS/proxy-rogue" TN_PROXY_VIRTUAL=100.64.9.0/24 \
	refused_proxy rogue "proxy id 'rogue' is not in the relay's proxies list"
tn_log "proxy-1 announcing outside its networks"
TN_PROXY_MANAGED="" refused_proxy proxy-outside "proxy 'proxy-1' may not announce 100\.64\.5\.0/25" \
	--network cidr=10.201.2.0/25,virtual_cidr=100.64.5.0/25
tn_log "proxy-1 announcing one allowed and one forbidden network"
refused_proxy proxy-mixed "proxy 'proxy-1' may not announce 100\.64\.5\.0/25" \
	--network cidr=10.201.2.0/25,virtual_cidr=100.64.5.0/25
tn_log "proxy-1 announcing its real network, which clients would address directly"
TN_PROXY_VIRTUAL="" refused_proxy proxy-real "proxy 'proxy-1' may not announce 10\.201\.2\.0/24"

status=$(relay_status)
tn_log "relay routing table:"$'\n'"$status"
[ "$(grep -c 'status:   ' <<<"$status")" = 1 ] || fail "the routing table holds more than proxy-1's one network"
grep -Eq "status:   100\.64\.2\.0/24 -> 10\.201\.2\.0/24: proxy-1#" <<<"$status" || fail "proxy-1's route is gone"

tn_log "client-1: port 8080 allowed, others not"
start_client
wait_client_ready
get_ok "client-1 to port 8080" 8080
forbidden "client-1 to the echo port 7" "$TN_VIRT_IP" 7
forbidden "client-1 to port 8081" "$TN_VIRT_IP" 8081
get_ok "client-1 to port 8080 again" 8080
# The proxy never saw a forbidden flow: it dialled nothing but port 8080.
! grep -E "flow=.* -> [0-9.]+:(7|8081) " "$TN_TMP/proxy.log" || fail "the proxy dialled a forbidden flow"
! grep -q "^echo " "$TN_TMP/echo.log" || fail "the echo server was reached"
rc=0
tn_stop client TERM 10 || rc=$?
[ "$rc" = 0 ] || fail "client-1 exited $rc on SIGTERM"

tn_log "client-2: no rule names it"
TN_CLIENT_NAME=client-2 TN_CLIENT_CERTS="$TN_CERTS/client-client-2" start_client
TN_CLIENT_NAME=client-2 wait_client_ready
gets=$(count_lines "$TN_TMP/http.log" '"GET ')
forbidden "client-2 to port 8080" "$TN_VIRT_IP" 8080
! n_cli timeout 10 curl -sS --max-time 5 "http://$TN_VIRT_IP:8080/" || false
grep -q "client=client-2 .* -> $TN_VIRT_IP:8080: refused by the access rules" "$TN_TMP/relay.log" ||
	fail "the relay did not log client-2's flow as refused"
[ "$(count_lines "$TN_TMP/http.log" '"GET ')" = "$gets" ] || fail "client-2 reached the web server"

# ---- relay 2: the same kind of rules from YAML, with a wildcard client and a port range
tn_log "relay 2, rules from YAML"
for name in client-2 proxy relay; do
	rc=0
	tn_stop "$name" TERM 10 || rc=$?
	[ "$rc" = 0 ] || fail "$name exited $rc on SIGTERM"
done
mv "$TN_TMP/relay.log" "$TN_TMP/relay-1.log"
mv "$TN_TMP/proxy.log" "$TN_TMP/proxy-1st.log"
cat >"$TN_TMP/relay.yaml" <<'EOF'
proxies:
  - id: proxy-1
    networks: [100.64.0.0/16]
access:
  - client: "*"
    networks: [100.64.2.0/24]
    ports: "7 8000-8100"
EOF
start_relay --config "$TN_TMP/relay.yaml"
wait_for_log "$TN_TMP/relay.log" "1 proxy rules, 1 access rules" 5 || fail "the relay did not load the YAML rules"
start_proxy
wait_registered
TN_PROXY_ID=rogue TN_PROXY_CERTS="$TN_CERTS/proxy-rogue" TN_PROXY_VIRTUAL=100.64.9.0/24 \
	refused_proxy rogue-2 "proxy id 'rogue' is not in the relay's proxies list"
TN_CLIENT_NAME=client-2b TN_CLIENT_CERTS="$TN_CERTS/client-client-2" start_client
TN_CLIENT_NAME=client-2b wait_client_ready
get_ok "client-2 to port 8080 (the '*' rule, range 8000-8100)" 8080
out=$(tools_in "$TN_NS_CLI" 10 probe "$TN_VIRT_IP" 7 --send ping --timeout 5 --expect data) ||
	fail "client-2 to the echo port 7: $out"
forbidden "client-2 to port 22" "$TN_VIRT_IP" 22
forbidden "client-2 to port 8101" "$TN_VIRT_IP" 8101
