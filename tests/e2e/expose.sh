#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expose.sh: services next to a proxy published on public ports of the relay (ngrok style).
#
#   tn-cli-$$ (public users)          tn-relay-$$                     tn-lan-$$
#   send-sha/curl ──TCP──▶ 10.201.1.2:PORT ══ Accept stream ══▶ proxy ──▶ 127.0.0.1:7002 ...
#
# Checks: a static port (10000) and an auto-assigned one carry 100 MiB each way with equal
# checksums; the relay's own services: entry reaches a target in the proxy's network; an HTTP service's requests are logged with their status; a port held by another
# proxy and one outside public_ports are refused with the reason; a wrong token is refused and
# a right one publishes; the health check answers during a transfer; the port closes when the
# proxy leaves (after the grace) and serves again when it comes back (configured by a JSON
# mapping list this time); the proxy's exit summary.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

size=$((100 * 1024 * 1024))
relay=$TN_RELAY_CLI_IP
token=expose-test-token-$$-0123456789
n_lan ip link set lo up
lan_serve sha 7002 serve-sha 7002
lan_serve source 7003 serve-source 7003 "$size" 2
ns_http web "$TN_NS_LAN" 8080 "published web page $$"
tn_certs
tn_issue proxy proxy-2

printf 'tokens:\n  - {proxy: proxy-3, token: "%s"}\n' "$token" >"$TN_TMP/relay.yaml"
start_relay --config "$TN_TMP/relay.yaml" --public-ports 10000-10020 --public-grace 1s --admin :9190 \
	--service "proxy=proxy-1,name=lanweb,public_port=10030,target=$TN_VIRT_IP:8080"
start_proxy --expose 10000:127.0.0.1:7002 --expose name=source,target=127.0.0.1:7003 \
	--expose name=web,target=127.0.0.1:8080,public_port=10005,http=true
wait_registered
wait_for_log "$TN_TMP/proxy.log" "published web: tcp://" 10 || fail "the proxy did not publish web"
grep -q "published 127.0.0.1:7002: tcp://$TN_RELAY_LAN_IP:10000 -> 127.0.0.1:7002" "$TN_TMP/proxy.log" ||
	fail "the static port 10000 is not reported as published"
auto=$(sed -nE 's/.*published source: tcp:\/\/[^:]+:([0-9]+) -> .*/\1/p' "$TN_TMP/proxy.log" | head -1)
[ -n "$auto" ] && [ "$auto" -ge 10000 ] && [ "$auto" -le 10020 ] && [ "$auto" != 10000 ] &&
	[ "$auto" != 10005 ] || fail "auto-assigned port '$auto' is not a free port of the range"
tn_log "published: 10000 (static), $auto (auto), 10005 (http)"

tn_log "user -> static port 10000: $size bytes"
out=$(tools_in "$TN_NS_CLI" 60 send-sha "$relay" 10000 "$size" 1 --timeout 20) ||
	fail "upload through the public port: the service did not get the same bytes"
read -r sha n secs mibs _ <<<"$out"
grep -q "got $size bytes sha256 $sha" "$TN_TMP/sha.log" || fail "the service logged another hash"
tn_log "upload ok: $n bytes in $secs s ($mibs MiB/s)"

tn_log "auto port $auto -> user: $size bytes, health checks meanwhile"
want=$(tmo 30 "$TN_PYTHON" "$TN_TOOLS" stream-sha "$size" 2)
tools_in "$TN_NS_CLI" 60 recv-sha "$relay" "$auto" --timeout 20 >"$TN_TMP/recv.out" &
recv=$!
health=0
for _ in 1 2 3 4 5; do
	code=$(n_cli timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://$relay:$TN_RELAY_PORT/healthz") || true
	[ "$code" = 200 ] && health=$((health + 1))
	code=$(n_cli timeout 5 curl -sk --http1.1 -o /dev/null -w '%{http_code}' "https://$relay:$TN_RELAY_PORT/healthz") || true
	[ "$code" = 200 ] && health=$((health + 1))
	sleep 0.1
done
wait "$recv" || fail "download through the public port failed"
read -r sha n _ <"$TN_TMP/recv.out"
[ "$n" = "$size" ] && [ "$sha" = "$want" ] || fail "download: $n bytes sha256 $sha, expected $size $want"
[ "$health" = 10 ] || fail "the health check answered 200 to $health of 10 probes during traffic"
tn_log "download ok and 10/10 health checks answered 200 (plain and TLS) during it"

tn_log "HTTP service on 10005: a page and a missing one"
[ "$(n_cli timeout 5 curl -sS "http://$relay:10005/")" = "published web page $$" ] ||
	fail "the published web page did not come back"
code=$(n_cli timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://$relay:10005/nope") || true
[ "$code" = 404 ] || fail "a missing page answered $code, expected 404"
wait_for_log "$TN_TMP/proxy.log" "http web: GET / 200 " 5 || fail "the proxy did not log GET / 200"
wait_for_log "$TN_TMP/proxy.log" "http web: GET /nope 404 " 5 || fail "the proxy did not log GET /nope 404"
[ "$(n_cli timeout 5 curl -sS "http://$relay:10030/")" = "published web page $$" ] ||
	fail "the relay's own service (port 10030 to $TN_VIRT_IP:8080 in the proxy's network) failed"
grep -q "published lanweb: tcp://$TN_RELAY_LAN_IP:10030 -> a target of the relay's services:" "$TN_TMP/proxy.log" ||
	fail "the proxy did not report the relay's service"
relay_status | grep -qF "public port 10030 -> proxy-1/lanweb ($TN_VIRT_IP:8080): 1 replicas" ||
	fail "the relay's status does not list its service on port 10030"

status=$(n_relay timeout 5 curl -sS "http://127.0.0.1:9190/api/v1/status") || fail "no status API"
echo "$status" | "$TN_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
by = {e["name"]: e for e in s["exposures"]}
assert by["web"]["port"] == 10005 and by["web"]["proxy"] == "proxy-1", by
assert by["web"]["target"] == "127.0.0.1:8080" and len(by["web"]["replicas"]) == 1, by
assert by["web"]["connections_total"] == 2, by
assert by["lanweb"]["port"] == 10030, by
' || fail "the status API does not list the public ports as they are: $status"
# Read whole first: grep -q leaving early would fail curl's writes (and the pipeline).
metrics=$(n_relay timeout 5 curl -sS "http://127.0.0.1:9190/metrics") || fail "GET /metrics failed"
grep -q '^tunnel_public_connections_total{service="web"} 2$' <<<"$metrics" ||
	fail "tunnel_public_connections_total does not count the two connections to web"

tn_log "refusals: a held port, a port outside the range, a wrong token"
TN_PROXY_ID=proxy-2 TN_PROXY_NAME=proxy2 TN_PROXY_CERTS=$TN_CERTS/proxy-proxy-2 TN_PROXY_MANAGED="" \
	start_proxy --expose name=held,target=127.0.0.1:7002,public_port=10000 \
	--expose name=outside,target=127.0.0.1:7002,public_port=20000
wait_for_log "$TN_TMP/proxy2.log" "refused to publish held: port 10000 is held by proxy 'proxy-1'" 10 ||
	fail "a port held by another proxy was not refused with the reason"
wait_for_log "$TN_TMP/proxy2.log" "port 20000 is outside the relay's public_ports" 10 ||
	fail "a port outside public_ports was not refused with the reason"
TN_PROXY_NAME=proxy1b start_proxy --expose name=lanweb,target=127.0.0.1:9 # a replica of proxy-1
wait_for_log "$TN_TMP/proxy1b.log" "refused to publish lanweb: service 'lanweb' of proxy 'proxy-1' is a service of the relay's configuration" 10 ||
	fail "a proxy's own service took the name (and port) of a relay service"
tn_stop proxy1b
tn_spawn proxy3bad "$TN_NS_LAN" "$TN_BIN/proxy/proxy" --server "$TN_RELAY_LAN_IP:$TN_RELAY_PORT" \
	--proxy-id proxy-3 --token wrong-token-0123456789 --tls-ca "$TN_CERTS/ca/cert.pem" \
	--expose 10010:127.0.0.1:7002
wait_for_log "$TN_TMP/proxy3bad.log" "the token is not valid" 10 || fail "a wrong token was not refused"
tn_exit_of proxy3bad 10
[ "$TN_RC" = 1 ] || fail "the proxy with a wrong token did not give up with status 1 (got $TN_RC)"
tn_spawn proxy3 "$TN_NS_LAN" "$TN_BIN/proxy/proxy" --server "$TN_RELAY_LAN_IP:$TN_RELAY_PORT" \
	--proxy-id proxy-3 --token "$token" --tls-ca "$TN_CERTS/ca/cert.pem" \
	--expose 10010:127.0.0.1:7003
TN_PROGS+=("$TN_LAST_PID")
wait_for_log "$TN_TMP/proxy3.log" "published 127.0.0.1:7003: tcp://" 10 || fail "a proxy with a token did not publish"
out=$(tools_in "$TN_NS_CLI" 30 recv-sha "$relay" 10010 --timeout 20) || fail "the token proxy's port failed"
[ "${out%% *}" = "$want" ] || fail "the token proxy's port gave other bytes"
tn_log "the token is withdrawn (SIGHUP): the proxy's session goes, and it is refused when it comes back"
echo "public_grace: 1s" >"$TN_TMP/relay.yaml"
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "the token of proxy proxy-3 is no longer valid" 10 ||
	fail "the relay kept the session of a withdrawn token"
tn_exit_of proxy3 15
[ "$TN_RC" = 1 ] || fail "the proxy whose token was withdrawn did not end with status 1 (got $TN_RC)"
grep -q "TLS alert from the peer: certificate required" "$TN_TMP/proxy3.log" ||
	fail "the proxy was not told why it is refused"

tn_log "the proxy leaves: its ports close after the grace; it comes back: they serve again"
tn_stop proxy
sleep 2
out=$(tools_in "$TN_NS_CLI" 10 probe "$relay" 10000 --expect refused) ||
	fail "port 10000 still accepts after its proxy left: $out"
grep -Eq "summary of web: .*requests: 2,.*200: 1.*404: 1" "$TN_TMP/proxy.log" ||
	fail "the proxy's exit summary does not count the two HTTP requests by status"
echo '[{"local_port": 7002, "remote_port": 10000}]' >"$TN_TMP/mappings.json"
TN_PROXY_NAME=proxyb start_proxy --config "$TN_TMP/mappings.json"
wait_for_log "$TN_TMP/proxyb.log" "published 127.0.0.1:7002: tcp://$TN_RELAY_LAN_IP:10000" 10 ||
	fail "the proxy did not get port 10000 back"
tools_in "$TN_NS_CLI" 30 send-sha "$relay" 10000 1000000 3 --timeout 20 >/dev/null ||
	fail "port 10000 does not serve again after the proxy came back"
tn_log "ok"
