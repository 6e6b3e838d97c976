#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# revoke.sh: retired certificates are refused, with the reason in the relay's log, and a reload
# that revokes a connected identity closes its sessions without hurting anyone else's flows.
#
#   client-3 (serial in revoked:)         ─▶ relay: refused at the handshake, client exits ≠ 0
#   client-old (expired, CA-signed)       ─▶ our client: exit 2; openssl s_client ─▶ relay: refused
#   curl ─▶ client-1 ══▶ relay ══▶ proxy-1 ─▶ lan     a 20 MiB download under way while
#                          ╚═══▶ proxy-2              proxy-2 is revoked in the CRL + SIGHUP:
#                                                     its session is closed, it cannot come back,
#                                                     the download completes
#   then client-1's serial in revoked: + SIGHUP       ─▶ its session is closed, no more traffic
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

CT=("$TN_BIN/certs-tool/certs-tool")
serial_of() { "${CT[@]}" show "$1/cert.pem" | sed -nE 's/^serial: *([0-9A-F]+).*/\1/p'; }
revoke() { tmo 30 "${CT[@]}" revoke "$1/cert.pem" --ca "$TN_CERTS/ca" >>"$TN_TMP/certs-tool.log" 2>&1 || fail "certs-tool revoke $1 failed"; }
relay_mark() { mark=$(wc -l <"$TN_TMP/relay.log"); }
relay_since() { tail -n "+$((mark + 1))" "$TN_TMP/relay.log"; }

# refused NAME REGEX: NAME (started just before) ends with a non-zero status, and the relay
# logged a line matching REGEX since the mark.
refused() {
	local rc=0 i
	tn_wait_exit "$(tn_pid "$1")" 15 || rc=$?
	[ "$rc" != 124 ] || fail "$1 still runs 15 s after its certificate was refused"
	[ "$rc" != 0 ] || fail "$1 exited 0 although its certificate was refused"
	for ((i = 0; i < 30; i++)); do
		relay_since | grep -Eq -- "$2" && break
		sleep 0.1
	done
	relay_since | grep -Eq -- "$2" || fail "the relay did not log /$2/ for $1"
	tn_log "$1 refused (exit $rc); relay: $(relay_since | grep -E -- "$2" | head -n 1 | sed -E 's/^.*(certificate refused|reload: closing)/\1/')"
}

lan_http 8080
head -c 20971520 /dev/urandom >"$TN_TMP/www/big.bin"
tn_certs
tn_issue client client-3
tn_issue proxy proxy-2
tn_issue client dummy
revoke "$TN_CERTS/client-dummy" # the CRL file exists from the start
# An expired certificate of the right CA: openssl can date it in the past, certs-tool cannot.
old=$TN_CERTS/client-old
mkdir -p "$old"
tmo 30 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$old/key.pem" \
	-subj /CN=client-old -out "$old/req.csr" 2>>"$TN_TMP/certs-tool.log"
printf 'subjectAltName=URI:tunnel://client/client-old\nbasicConstraints=critical,CA:FALSE\n' >"$old/ext"
tmo 30 openssl x509 -req -in "$old/req.csr" -CA "$TN_CERTS/ca/cert.pem" -CAkey "$TN_CERTS/ca/key.pem" \
	-set_serial 0x7e57 -days -1 -extfile "$old/ext" -out "$old/cert.pem" 2>>"$TN_TMP/certs-tool.log" ||
	fail "openssl could not make an expired certificate"

s3=$(serial_of "$TN_CERTS/client-client-3")
s1=$(serial_of "$TN_CERTS/client")
[ -n "$s3" ] && [ -n "$s1" ] || fail "certs-tool show printed no serial"
cat >"$TN_TMP/relay.yaml" <<YAML
tls: {crl_file: $TN_CERTS/ca/crl.pem}
revoked:
  - {serial: "$s3", note: "e2e listed"}
YAML
start_relay --config "$TN_TMP/relay.yaml"
start_proxy
wait_registered
TN_PROXY_NAME=proxy-2 TN_PROXY_ID=proxy-2 TN_PROXY_CERTS="$TN_CERTS/proxy-proxy-2" \
	TN_PROXY_VIRTUAL=100.64.9.0/24 start_proxy
wait_for_log "$TN_TMP/relay.log" "proxy proxy-2 registered" 10 || fail "proxy-2 did not register"

tn_log "a client whose serial is in revoked:"
relay_mark
TN_CLIENT_NAME=client-3 TN_CLIENT_CERTS="$TN_CERTS/client-client-3" start_client
refused client-3 "certificate refused: tunnel://client/client-3 \(serial $s3, depth 0\): serial $s3 is in the revoked list \(e2e listed\)"

tn_log "an expired client certificate"
# Our client will not even dial with it (a configuration error) ...
rc=0
n_cli timeout 20 "$TN_BIN/client/client" --server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" --cidr 100.64.0.0/10 \
	--tls-cert "$old/cert.pem" --tls-key "$old/key.pem" --tls-ca "$TN_CERTS/ca/cert.pem" \
	>"$TN_TMP/client-old.log" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "client-old/cert.pem expired on" "$TN_TMP/client-old.log" ||
	fail "a client with an expired certificate: status $rc, $(cat "$TN_TMP/client-old.log")"
[ -z "$(rules_of_client)" ] || fail "a refused client left rules: $(rules_of_client)"
# ... and the relay refuses it from any other TLS client.
relay_mark
n_cli timeout 20 openssl s_client -connect "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" -tls1_3 -alpn h2 \
	-cert "$old/cert.pem" -key "$old/key.pem" -CAfile "$TN_CERTS/ca/cert.pem" </dev/null \
	>"$TN_TMP/s_client-old.log" 2>&1 || true
for ((i = 0; i < 30; i++)); do
	relay_since | grep -q "certificate refused: tunnel://client/client-old" && break
	sleep 0.1
done
relay_since | grep -Eq "certificate refused: tunnel://client/client-old \(serial 7E57, depth 0\): certificate has expired" ||
	fail "the relay did not refuse the expired certificate: $(relay_since)"
tn_log "client-old: exit 2 at start; the relay refuses its certificate: certificate has expired"

tn_log "client-1 works; proxy-2 revoked in the CRL and SIGHUP during a download"
start_client
wait_client_ready
[ "$(n_cli timeout 10 curl -sS --max-time 5 "http://$TN_VIRT_IP:8080/")" = "$TN_HTTP_BODY" ] ||
	fail "no traffic through client-1"
n_cli timeout 30 curl -sS --limit-rate 8M -o "$TN_TMP/dl.out" "http://$TN_VIRT_IP:8080/big.bin" \
	2>"$TN_TMP/dl.err" &
dl=$!
sleep 0.7
revoke "$TN_CERTS/proxy-proxy-2"
relay_mark
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "reload: done" 5 || fail "the relay did not reload"
refused proxy-2 "reload: closing the session of proxy proxy-2 .*serial [0-9A-F]+ is revoked by the CRL"
relay_since | grep -Eq "certificate refused: tunnel://proxy/proxy-2 .*certificate revoked" ||
	tn_log "(proxy-2 gave up before it tried again)"
rc=0
wait "$dl" || rc=$?
[ "$rc" = 0 ] && cmp -s "$TN_TMP/www/big.bin" "$TN_TMP/dl.out" ||
	fail "the download through proxy-1 was hurt by revoking proxy-2 (curl $rc)"
tn_log "the download through proxy-1 completed, all 20 MiB"

tn_log "client-1's serial in revoked: and SIGHUP"
cat >>"$TN_TMP/relay.yaml" <<YAML
  - {serial: "$s1", note: "e2e reload"}
YAML
relay_mark
kill -HUP "$(tn_pid relay)"
refused client "reload: closing the session of client client-1 .*serial $s1 is in the revoked list \(e2e reload\)"
! n_cli timeout 6 curl -sS --max-time 3 "http://$TN_VIRT_IP:8080/" >/dev/null 2>&1 ||
	fail "traffic still passes through the revoked client"
[ -z "$(rules_of_client)" ] || fail "the revoked client left rules: $(rules_of_client)"
tn_alive "$(tn_pid relay)" || fail "the relay died"
tn_alive "$(tn_pid proxy)" || fail "proxy-1 died"
