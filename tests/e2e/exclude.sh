#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# exclude.sh: --exclude keeps a range inside an intercepted network local: the client's chains
# RETURN it before the REDIRECT, the NFQUEUE and the fail-closed REJECT, so it is neither tunnelled
# nor rejected, while the rest of the network still is.  This host's own addresses are never
# intercepted, with or without --exclude (the client's own admin port under --cidr 0.0.0.0/0).
#
#   tn-cli-$$: 100.64.3.1 on lo with its own web server (a local service in 100.64.0.0/10)
#   client --cidr 100.64.0.0/10 --exclude 100.64.3.0/24 --fail-closed
#   curl 100.64.3.1:8081 → the local server (the relay sees no flow to it)
#   curl 100.64.2.2:8080 → through the tunnel, as usual
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

LOCAL_IP=100.64.3.1
ip -n "$TN_NS_CLI" addr add "$LOCAL_IP/32" dev lo
ns_http local "$TN_NS_CLI" 8081 "local service, run $$"

lan_http 8080
tn_certs
start_relay
start_proxy
wait_registered
start_client --exclude 100.64.3.0/24 --exclude 100.64.9.0/24 --fail-closed
wait_client_ready
rules_of_client >&2
[ "$(rules_of_client | grep -c -- '-d 100.64.3.0/24 .*-j RETURN')" = 3 ] ||
	fail "expected a RETURN for 100.64.3.0/24 in the redirect, queue and fail-closed chains"

tn_log "the excluded range stays local"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$LOCAL_IP:8081/") ||
	fail "curl to the excluded $LOCAL_IP failed (tunnelled or rejected?)"
[ "$body" = "local service, run $$" ] || fail "excluded range: wrong body '$body'"
grep -q -- "-> $LOCAL_IP:" "$TN_TMP/relay.log" && fail "the relay saw a flow to the excluded $LOCAL_IP"
grep -q -- "-> $LOCAL_IP:" "$TN_TMP/client.log" && fail "the client carried a flow to the excluded $LOCAL_IP"

tn_log "UDP to the excluded range stays local too (not queued)"
tn_spawn udp-local "$TN_NS_CLI" "$TN_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"local:" + d, a)
' "$LOCAL_IP"
reply=$(n_cli timeout 10 "$TN_PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for _ in range(10):  # the server may still be starting
    s.sendto(b"hello", (sys.argv[1], 5353))
    try:
        print(s.recv(2048).decode()); break
    except socket.timeout:
        time.sleep(0.2)
' "$LOCAL_IP") || fail "UDP to the excluded $LOCAL_IP failed"
[ "$reply" = local:hello ] || fail "UDP to the excluded range: got '$reply'"
grep -q -- "-> $LOCAL_IP:5353" "$TN_TMP/client.log" && fail "the client queued UDP to the excluded $LOCAL_IP"

tn_log "the rest of the intercepted network is still tunnelled"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl through the tunnel failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body through the tunnel: '$body'"
wait_for_log "$TN_TMP/relay.log" "-> $TN_VIRT_IP:8080" 5 || fail "the relay saw no flow to $TN_VIRT_IP"

tn_log "this host's own addresses stay local without --exclude too, even under --cidr 0.0.0.0/0"
tn_stop client TERM 10 || fail "the client did not exit cleanly"
start_client --cidr 0.0.0.0/0 --fail-closed --admin 127.0.0.1:9092
wait_client_ready
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$LOCAL_IP:8081/") ||
	fail "this host's own $LOCAL_IP was intercepted or rejected"
[ "$body" = "local service, run $$" ] || fail "own address: wrong body '$body'"
[ "$(n_cli timeout 10 curl -sS --max-time 8 http://127.0.0.1:9092/healthz)" = ok ] ||
	fail "the client's own admin port on 127.0.0.1 was intercepted"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "curl through the tunnel failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body through the tunnel: '$body'"
grep -q -- "-> $LOCAL_IP:\|-> 127.0.0.1:" "$TN_TMP/client.log" && fail "the client carried a flow to its own host"
tn_stop client TERM 10 || fail "the client did not exit cleanly"
n_cli timeout 10 "$TN_BIN/client/client" --cleanup >/dev/null 2>&1 || fail "client --cleanup failed"
[ -z "$(rules_of_client)" ] || fail "rules left after --cleanup: $(rules_of_client)"
