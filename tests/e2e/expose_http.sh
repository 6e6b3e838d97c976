#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expose_http.sh: several published web services behind the relay's one HTTP port, routed by
# the Host of each request: two sites, an unknown host (404), a WebSocket echo through host
# routing, and a host another proxy holds (refused with the reason).  Then the HTTPS port: TLS
# ends at the relay with the certificate for the SNI name, which picks the site; users who leave
# with close_notify and a reset before a slow site answers must not stall the relay.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

relay=$TN_RELAY_CLI_IP
n_lan ip link set lo up
ns_http app "$TN_NS_LAN" 8080 "the app site $$"
ns_http api "$TN_NS_LAN" 8081 "the api site $$"
lan_serve ws 8082 serve-ws 8082
lan_serve slow 8083 serve-slow 8083 --delay 0.4
tn_certs
tn_issue proxy proxy-2

# A certificate per site for the HTTPS port, as a web CA would issue them (self-signed here).
for site in app api ws slow; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$site.example.test" -addext "subjectAltName=DNS:$site.example.test" \
		-keyout "$TN_TMP/$site.key" -out "$TN_TMP/$site.pem" 2>>"$TN_TMP/openssl.log" ||
		fail "openssl could not make a certificate for $site"
done
start_relay --http-listen 0.0.0.0:8088 --https-listen 0.0.0.0:8444 \
	--https-cert "cert_file=$TN_TMP/app.pem,key_file=$TN_TMP/app.key" \
	--https-cert "cert_file=$TN_TMP/api.pem,key_file=$TN_TMP/api.key" \
	--https-cert "cert_file=$TN_TMP/ws.pem,key_file=$TN_TMP/ws.key" \
	--https-cert "cert_file=$TN_TMP/slow.pem,key_file=$TN_TMP/slow.key"
TN_PROXY_MANAGED="" start_proxy \
	--expose name=app,target=127.0.0.1:8080,http.host=app.example.test \
	--expose name=api,target=127.0.0.1:8081,http.host=api.example.test,http=true \
	--expose name=ws,target=127.0.0.1:8082,http.host=ws.example.test \
	--expose name=slow,target=127.0.0.1:8083,http.host=slow.example.test
wait_for_log "$TN_TMP/proxy.log" "published ws: http://ws.example.test " 10 || fail "the proxy did not publish by host"

get() { n_cli timeout 5 curl -sS -H "Host: $1" "http://$relay:8088${2:-/}"; }
[ "$(get app.example.test)" = "the app site $$" ] || fail "Host app.example.test did not reach the app"
[ "$(get API.example.test:8088)" = "the api site $$" ] ||
	fail "Host API.example.test:8088 did not reach the api (case and port must not matter)"
code=$(n_cli timeout 5 curl -s -o "$TN_TMP/404.out" -w '%{http_code}' -H "Host: nobody.example.test" "http://$relay:8088/") || true
[ "$code" = 404 ] && grep -q "no service is published for nobody.example.test" "$TN_TMP/404.out" ||
	fail "an unknown host answered $code: $(cat "$TN_TMP/404.out")"
wait_for_log "$TN_TMP/proxy.log" "http api: GET / 200 " 5 || fail "the api's request log misses GET / 200"
# A body that came in the same read as the head may hold any byte (only the head must be text),
# and the 400 for a request without Host says exactly as many bytes as it sends.
raw() { # REQUEST (with \r \n \xNN escapes): the relay's answer as it came, then "|"
	n_cli timeout 5 "$TN_PYTHON" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 8088), timeout=4)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("latin-1") + "|")' "$relay" "$1"
}
out=$(raw 'POST / HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\x00\x01\x1b\x7f') || true
[[ $out == HTTP/1.?\ * ]] || fail "a request whose body holds control bytes got no answer: '${out:0:80}'"
out=$(raw 'GET / HTTP/1.0\r\n\r\n') || true
[[ $out == *$'\r\nContent-Length: 23\r\n'*$'\r\n\r\nno Host in the request\n|' ]] ||
	fail "the answer to a request without Host is not 400 with its exact length: '$out'"
out=$(tools_in "$TN_NS_CLI" 20 ws-echo "$relay" 8088 --host ws.example.test --timeout 10) ||
	fail "the WebSocket echo through host routing failed"
tn_log "$out"

tn_log "HTTPS: each site with its own certificate, chosen by SNI"
sget() {
	n_cli timeout 5 curl -sS --cacert "$TN_TMP/$1.pem" --resolve "$1.example.test:8444:$relay" \
		"https://$1.example.test:8444/"
}
[ "$(sget app)" = "the app site $$" ] || fail "https://app.example.test did not reach the app"
[ "$(sget api)" = "the api site $$" ] || fail "https://api.example.test did not reach the api"
code=$(n_cli timeout 5 curl -sk -o /dev/null -w '%{http_code}' --resolve "nobody.example.test:8444:$relay" \
	"https://nobody.example.test:8444/") || true
[ "$code" = 404 ] || fail "an unknown SNI name answered $code, expected 404"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$TN_TMP/www-app/big"
want=$(sha256sum <"$TN_TMP/www-app/big" | cut -d' ' -f1)
got=$(n_cli timeout 30 curl -sS --cacert "$TN_TMP/app.pem" --resolve "app.example.test:8444:$relay" \
	"https://app.example.test:8444/big" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "20 MiB over HTTPS came back different"
out=$(tools_in "$TN_NS_CLI" 30 ws-echo "$relay" 8444 --host ws.example.test --cafile "$TN_TMP/ws.pem" \
	--size $((1024 * 1024)) --timeout 10) || fail "a 1 MiB WebSocket echo over HTTPS failed"
tn_log "HTTPS ok: 20 MiB download checked; $out"

tn_log "HTTPS: users who send close_notify and reset before the answer"
# The answer then meets a TLS session whose peer said close_notify, on a socket that is gone:
# OpenSSL calls that failed write ZERO_RETURN, which once read as "0 bytes written" and spun the
# relay's one loop on the same bytes forever.
[ "$(sget slow)" = "slow answer" ] || fail "https://slow.example.test did not reach the slow site"
out=$(tools_in "$TN_NS_CLI" 20 tls-abandon "$relay" 8444 --host slow.example.test \
	--cafile "$TN_TMP/slow.pem" --count 3 --timeout 3) || fail "tls-abandon failed"
tn_log "tls-abandon: ${out//$'\n'/, }"
wait_count "$TN_TMP/slow.log" "slow request from" 2 5 || fail "no abandoned request reached the slow site"
sleep 0.6 # every answer has come back to the relay by now
relay_cpu() { sed 's/.*) //' "/proc/$(tn_pid relay)/stat" | awk '{ print $12 + $13 }'; } # utime + stime
cpu0=$(relay_cpu)
sleep 1
cpu=$(($(relay_cpu) - cpu0))
tn_log "relay CPU in the 1 s after the answers: $cpu ticks of $(getconf CLK_TCK)"
[ "$cpu" -lt 30 ] || fail "the relay used $cpu ticks of CPU in 1 s after users left (a write loop spins)"
t0=$(tn_now_ms)
got=$(n_cli timeout 3 curl -sS --max-time 2 --cacert "$TN_TMP/app.pem" \
	--resolve "app.example.test:8444:$relay" "https://app.example.test:8444/") || true
[ "$got" = "the app site $$" ] || fail "the relay did not answer a new HTTPS request after users left"
tn_log "relay still answers: HTTPS in $(($(tn_now_ms) - t0)) ms"

tn_log "HTTPS: a renewed certificate is served after SIGHUP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=app.example.test" -addext "subjectAltName=DNS:app.example.test" \
	-keyout "$TN_TMP/app.key" -out "$TN_TMP/app.pem" 2>>"$TN_TMP/openssl.log" ||
	fail "openssl could not renew the app's certificate"
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "reload: done" 10 || fail "the relay did not reload"
[ "$(sget app)" = "the app site $$" ] || fail "the relay still serves the app's old certificate"

TN_PROXY_ID=proxy-2 TN_PROXY_NAME=proxy2 TN_PROXY_CERTS=$TN_CERTS/proxy-proxy-2 TN_PROXY_MANAGED="" \
	start_proxy --expose name=mine,target=127.0.0.1:8081,http.host=app.example.test
wait_for_log "$TN_TMP/proxy2.log" "refused to publish mine: host app.example.test is held by proxy 'proxy-1' \(service 'app'\)" 10 ||
	fail "a host held by another proxy was not refused with the reason"
[ "$(get app.example.test)" = "the app site $$" ] || fail "the app changed hands"
tn_log "ok"
