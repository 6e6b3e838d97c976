#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# http.sh: curl from cli reaches a web server in the LAN through the tunnel at its virtual
# address, and the LAN's real address stays unreachable (the client intercepts 100.64.0.0/10
# only, and nothing else leads from cli to lan).
#
#   curl ─▶ REDIRECT ─▶ client ══▶ relay ══▶ proxy ─▶ 10.201.2.2:8080 (python http.server)
#   tn-cli-$$                     tn-relay-$$       tn-lan-$$
#   100.64.2.2:8080 ≡ 10.201.2.2:8080 (virtual 100.64.2.0/24 ↔ real 10.201.2.0/24)
#
# The certificates are certs-tool's defaults, as the design's peer benchmark makes them: the
# relay's names no host, so client and proxy trust it by the CA and its role, and say so.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_http 8080
TN_CERTS_UNNAMED=1 tn_certs
start_tunnel
for prog in "$TN_CLIENT_NAME" "$TN_PROXY_NAME"; do
	grep -q "relay certificate tunnel://server/relay names no host" "$TN_TMP/$prog.log" ||
		fail "$prog did not say that the relay's certificate names no host"
done

tn_log "GET http://$TN_VIRT_IP:8080/ through the tunnel"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl through the tunnel failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body: '$body', expected '$TN_HTTP_BODY'"
# The connection reached the server from inside the LAN: the proxy dialled it.
wait_for_log "$TN_TMP/http.log" "^$TN_LAN_IP - - .*\"GET / HTTP/1.1\" 200" 5 ||
	fail "the web server did not see the request come from the proxy at $TN_LAN_IP"

tn_log "several requests on one connection, and a larger body"
head -c 3000000 /dev/urandom >"$TN_TMP/www/big.bin"
n_cli timeout 20 curl -sS --max-time 15 -o "$TN_TMP/big.out" "http://$TN_VIRT_IP:8080/big.bin" \
	-o "$TN_TMP/index.out" "http://$TN_VIRT_IP:8080/index.html" || fail "curl of two URLs failed"
cmp -s "$TN_TMP/www/big.bin" "$TN_TMP/big.out" || fail "big.bin differs after the tunnel"
[ "$(cat "$TN_TMP/index.out")" = "$TN_HTTP_BODY" ] || fail "second request on the connection: wrong body"

tn_log "the real address $TN_LAN_IP is not intercepted, so it must stay unreachable"
! n_cli timeout 5 curl -sS --max-time 2 "http://$TN_LAN_IP:8080/" || false
! tools_in "$TN_NS_CLI" 5 probe "$TN_LAN_IP" 8080 --expect data --timeout 2 || false

tn_log "the tunnel still works after that"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body: '$body'"
