#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What an operator meets, with the real programs on 127.0.0.1 (no namespaces needed):
#
#   startup_errors  a bad setting is refused with a message naming it and exit status 2 (no
#                   restart by systemd); a port in use exits 1, and says so even at
#                   --log-level error
#   relay_http      the relay's plain HTTP: HEAD /healthz on the tunnel port has no body; an
#                   admin request holding a NUL is answered 400; 32 idle admin connections do
#                   not lock out /healthz
#   public_ops      a service published on a public port, the relay configured by a file:
#                   its bytes count for the proxy in the relay's status and metrics and in the
#                   proxy's; the management API refuses a name or a port taken twice; SIGHUP
#                   publishes a services: entry added to the file, closes one no longer listed,
#                   and keeps open ports on their address when public_addr changes; a reload
#                   that no longer allows the proxy lets its open transfer finish before the
#                   proxy leaves (exit status 1); an unlisted proxy is refused even with
#                   services only
#
#   certificates    every program refuses, with exit status 2 and the file named, a certificate
#                   that could never work (another role, expired, encrypted key, a key of
#                   another certificate, a CRL dated ahead, a proxy_id that is not the
#                   certificate's), and a reload with one changes nothing; a CA rotation (two
#                   CAs trusted, a CRL of either or both) lets both CAs' peers in and keeps the
#                   revoked one out; --bootstrap issues anew a relay certificate that expired
#
# Usage: ops_test.sh SCENARIO BUILD_DIR
# TN_KEEP_TMP=1 keeps the temporary directory (certificates, logs).
set -euo pipefail

usage="usage: $0 startup_errors|relay_http|public_ops|certificates BUILD_DIR"
scenario=${1:?$usage}
build=$(realpath "${2:?$usage}")
log_prefix=ops
# shellcheck source-path=SCRIPTDIR source=regress_lib.sh
. "$(dirname "$0")/regress_lib.sh"
client=$build/client/client

timeout 30 "$certs_tool" --out "$certs" >/dev/null

# expect_exit STATUS REGEX CMD...: CMD exits with STATUS, and its output matches REGEX.
expect_exit() {
	local want=$1 re=$2 rc=0 out
	shift 2
	out=$(timeout 20 "$@" 2>&1) || rc=$?
	((rc == want)) || fail "exit status $rc, not $want: $*: $out"
	grep -qE -- "$re" <<<"$out" || fail "no /$re/ in the output of $*: $out"
	log "ok: exit $want, /$re/"
}

# http_raw PORT BYTES: what a raw request (Python bytes syntax) to 127.0.0.1:PORT gets back,
# read to EOF (5 s at most), and "|" after it (command substitution drops trailing newlines).
http_raw() {
	timeout 10 python3 - "$1" "$2" <<-'EOF'
		import socket, sys
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
		s.sendall(eval(sys.argv[2]))
		out = b""
		try:
		    while chunk := s.recv(65536):
		        out += chunk
		except OSError:
		    pass
		sys.stdout.write(out.decode("latin-1") + "|")
	EOF
}

# wait_status NAME STATUS SECONDS: NAME ends by itself, with STATUS.
wait_status() {
	local deadline=$((SECONDS + $3))
	while is_running "$1"; do
		((SECONDS < deadline)) || fail "$1 did not exit within $3 s"
		sleep 0.1
	done
	reap "$1"
	((status == $2)) || fail "$1 exited with status $status, not $2"
}

# metric PORT SERIES: the value of SERIES (name and labels, as printed) at 127.0.0.1:PORT.
metric() {
	timeout 10 curl -sS "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}

# openssl_leaf CA_DIR OUT_DIR URI [openssl x509 ARGS...]: a certificate of CA_DIR for URI that
# openssl makes (certs-tool cannot date one in the past).
openssl_leaf() {
	local ca=$1 out=$2 uri=$3
	shift 3
	mkdir -p "$out"
	timeout 30 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t \
		-keyout "$out/key.pem" -out "$out/req.pem" 2>/dev/null
	printf 'subjectAltName=URI:%s\nbasicConstraints=critical,CA:FALSE\n' "$uri" >"$out/ext"
	timeout 30 openssl x509 -req -in "$out/req.pem" -CA "$ca/cert.pem" -CAkey "$ca/key.pem" \
		-set_serial 0x7e57 -extfile "$out/ext" -out "$out/cert.pem" "$@" 2>/dev/null ||
		fail "openssl could not make $out"
}

# crl_ahead CA_DIR OUT: an empty CRL of CA_DIR whose lastUpdate is an hour from now.
crl_ahead() {
	local d=$tmp/openssl-ca
	mkdir -p "$d"
	: >"$d/index.txt"
	echo 01 >"$d/crlnumber"
	printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\ndefault_md = sha256\n' \
		"$d" "$d" >"$d/ca.cnf"
	timeout 30 openssl ca -config "$d/ca.cnf" -gencrl -cert "$1/cert.pem" -keyfile "$1/key.pem" \
		-crl_lastupdate "$(date -u -d '+1 hour' +%Y%m%d%H%M%SZ)" \
		-crl_nextupdate "$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)" -out "$2" 2>/dev/null ||
		fail "openssl could not make a CRL"
}

# same_name_ca DIR: a CA named "tunnel CA" as every CA certs-tool made before names had a tag.
same_name_ca() {
	mkdir -p "$1"
	timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=tunnel CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$1/key.pem" -out "$1/cert.pem" \
		2>/dev/null || fail "openssl could not make a CA in $1"
}

# plain_crl CA_DIR OUT [CERT]: a CRL of CA_DIR without a key id (openssl ca's default), revoking
# CERT when given.
plain_crl() {
	local d=$1/openssl-ca
	mkdir -p "$d"
	: >"$d/index.txt"
	echo 01 >"$d/crlnumber"
	printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\ndefault_md = sha256\n' \
		"$d" "$d" >"$d/ca.cnf"
	if [[ -n ${3:-} ]]; then
		timeout 30 openssl ca -config "$d/ca.cnf" -revoke "$3" -cert "$1/cert.pem" \
			-keyfile "$1/key.pem" 2>/dev/null || fail "openssl could not revoke $3"
	fi
	timeout 30 openssl ca -config "$d/ca.cnf" -gencrl -crldays 30 -cert "$1/cert.pem" \
		-keyfile "$1/key.pem" -out "$2" 2>/dev/null || fail "openssl could not make a CRL of $1"
}

# relay_logs_twice REGEX: the relay's log holds two lines matching REGEX within 10 s.
relay_logs_twice() {
	local i
	for ((i = 0; i < 100; i++)); do
		(($(grep -c -- "$1" "$tmp/relay.log") >= 2)) && return 0
		sleep 0.1
	done
	return 1
}

# relay_sees_proxy REGEX: the relay logs REGEX for a proxy started just before, which then stops.
relay_sees_proxy() {
	local deadline=$((SECONDS + 20))
	wait_log relay "$1" 15
	kill -TERM "${pid[proxy]}" 2>/dev/null || true
	while is_running proxy && ((SECONDS < deadline)); do sleep 0.1; done
	reap proxy
	log "ok: relay: /$1/"
}

case $scenario in
certificates)
	port=$(free_port)
	# The relay's own certificate, each refused before it listens.
	expect_exit 2 "client/cert.pem is a client certificate, and the relay needs a server certificate" \
		"$server" --listen "127.0.0.1:$port" --tls-cert "$certs/client/cert.pem" \
		--tls-key "$certs/client/key.pem" --tls-ca "$certs/ca/cert.pem"
	timeout 30 openssl pkey -in "$certs/server/key.pem" -aes256 -passout pass:secret \
		-out "$tmp/encrypted.pem" 2>/dev/null
	expect_exit 2 "key $tmp/encrypted.pem: is encrypted" "$server" --listen "127.0.0.1:$port" \
		--tls-cert "$certs/server/cert.pem" --tls-key "$tmp/encrypted.pem" \
		--tls-ca "$certs/ca/cert.pem" </dev/null
	expect_exit 2 "key $certs/client/key.pem: does not belong to the certificate" \
		"$server" --listen "127.0.0.1:$port" --tls-cert "$certs/server/cert.pem" \
		--tls-key "$certs/client/key.pem" --tls-ca "$certs/ca/cert.pem"
	expect_exit 2 "certificate $tmp/none.pem: No such file or directory" \
		"$server" --listen "127.0.0.1:$port" --tls-cert "$tmp/none.pem" \
		--tls-key "$certs/server/key.pem" --tls-ca "$certs/ca/cert.pem"
	openssl_leaf "$certs/ca" "$tmp/old" tunnel://server/relay -days -1
	expect_exit 2 "certificate $tmp/old/cert.pem expired on" "$server" --listen "127.0.0.1:$port" \
		--tls-cert "$tmp/old/cert.pem" --tls-key "$tmp/old/key.pem" --tls-ca "$certs/ca/cert.pem"
	crl_ahead "$certs/ca" "$tmp/ahead.crl"
	tls server
	expect_exit 2 "CRL $tmp/ahead.crl: CRL #1 is not valid before" \
		"$server" --listen "127.0.0.1:$port" "${tls[@]}" --tls-crl "$tmp/ahead.crl"
	# A damaged CRL is refused, not taken for the end of the file (what follows would be lost).
	timeout 30 "$certs_tool" issue --role client --id c-crl --ca "$certs/ca" --out "$tmp/c-crl" >/dev/null
	timeout 30 "$certs_tool" revoke "$tmp/c-crl/cert.pem" --ca "$certs/ca" --crl "$tmp/good.crl" >/dev/null
	{ cat "$tmp/good.crl"; printf -- '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'; } >"$tmp/damaged.crl"
	expect_exit 2 "CRL $tmp/damaged.crl: CRL #2 cannot be read" \
		"$server" --listen "127.0.0.1:$port" "${tls[@]}" --tls-crl "$tmp/damaged.crl"
	# What makes the relay exit at start is an error, shown at --log-level error.
	expect_exit 2 "error: nosuch.invalid:$port: " \
		"$server" --listen "nosuch.invalid:$port" "${tls[@]}" --log-level error
	expect_exit 2 "error: nosuch.invalid:$port: " "$server" --listen "127.0.0.1:$port" \
		"${tls[@]}" --http-listen "nosuch.invalid:$port" --log-level error
	expect_exit 2 "error: log output $tmp/nodir/relay.log: No such file" \
		"$server" --listen "127.0.0.1:$port" "${tls[@]}" --log-level error \
		--log-output "$tmp/nodir/relay.log"
	# The proxy's and the client's.
	start_relay
	tls proxy
	expect_exit 2 "proxy_id 'other' is not the id in the certificate \('proxy-1'\)" \
		"$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 "${tls[@]}" \
		--proxy-id other
	openssl_leaf "$certs/ca" "$tmp/old-client" tunnel://client/old -days -1
	expect_exit 2 "certificate $tmp/old-client/cert.pem expired on" \
		"$client" --server "127.0.0.1:$relay_port" --cidr 100.64.0.0/10 \
		--tls-cert "$tmp/old-client/cert.pem" --tls-key "$tmp/old-client/key.pem" \
		--tls-ca "$certs/ca/cert.pem"
	# A reload with a certificate that could not work changes nothing, in proxy and relay.
	printf 'tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' "$certs/proxy/cert.pem" \
		"$certs/proxy/key.pem" "$certs/ca/cert.pem" >"$tmp/proxy.yaml"
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--config "$tmp/proxy.yaml" --log-level debug
	wait_log proxy "registered with relay" 15
	printf 'tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' "$certs/client/cert.pem" \
		"$certs/client/key.pem" "$certs/ca/cert.pem" >"$tmp/proxy.yaml"
	kill -HUP "${pid[proxy]}"
	wait_log proxy "reload: the configuration or certificates have errors: nothing changed" 10
	grep -q "client/cert.pem is a client certificate" "$tmp/proxy.log" ||
		fail "the proxy's reload did not say what is wrong"
	printf 'tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' "$certs/proxy-2/cert.pem" \
		"$certs/proxy-2/key.pem" "$certs/ca/cert.pem" >"$tmp/proxy.yaml"
	timeout 30 "$certs_tool" issue --role proxy --id proxy-2 --ca "$certs/ca" \
		--out "$certs/proxy-2" >/dev/null
	kill -HUP "${pid[proxy]}"
	wait_log proxy "the new certificate or proxy_id names this proxy 'proxy-2', and it runs as 'proxy-1'" 10
	sleep 0.5
	alive proxy
	grep -q "registered with relay .* as proxy-1" "$tmp/proxy.log" || fail "the proxy lost its registration"
	stop proxy
	log "ok: the proxy's reloads with a client's and another proxy's certificate changed nothing"
	stop relay
	printf 'tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' "$certs/server/cert.pem" \
		"$certs/server/key.pem" "$certs/ca/cert.pem" >"$tmp/relay.yaml"
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.1:$relay_port" --config "$tmp/relay.yaml"
	wait_log relay 'listening on' 15
	printf 'tls: {cert_file: %s, key_file: %s, ca_file: %s}\n' "$tmp/old/cert.pem" \
		"$tmp/old/key.pem" "$certs/ca/cert.pem" >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: .*nothing changed" 10
	grep -q "old/cert.pem expired on" "$tmp/relay.log" || fail "the relay's reload did not say why"
	alive relay
	stop relay
	log "ok: the relay's reload with an expired certificate changed nothing"

	# A key any user may read is warned about; one of the group (the deployment's 0640) is not.
	for m in 640 644; do
		install -m "$m" "$certs/server/key.pem" "$tmp/key$m.pem"
		relay_port=$(free_port)
		start relay "$server" --listen "127.0.0.1:$relay_port" --tls-cert "$certs/server/cert.pem" \
			--tls-key "$tmp/key$m.pem" --tls-ca "$certs/ca/cert.pem"
		wait_log relay 'listening on' 15
		stop relay
		if grep -q "may be read by any user" "$tmp/relay.log"; then w=1; else w=0; fi
		[[ $m == 644 && $w == 1 || $m == 640 && $w == 0 ]] || fail "key mode 0$m: warning $w"
	done
	log "ok: a key of mode 0644 is warned about, 0640 is not"
	# A CA rotation: the relay trusts CA a (its own) and CA b, with a CRL of a.
	timeout 30 "$certs_tool" --out "$tmp/b" >/dev/null
	cat "$certs/ca/cert.pem" "$tmp/b/ca/cert.pem" >"$tmp/both.pem"
	timeout 30 "$certs_tool" issue --role proxy --id gone --ca "$certs/ca" --out "$certs/gone" >/dev/null
	timeout 30 "$certs_tool" revoke "$certs/gone/cert.pem" --ca "$certs/ca" >/dev/null
	timeout 30 "$certs_tool" issue --role client --id b-gone --ca "$tmp/b/ca" --out "$tmp/b/gone" >/dev/null
	timeout 30 "$certs_tool" revoke "$tmp/b/gone/cert.pem" --ca "$tmp/b/ca" >/dev/null
	cp "$certs/ca/crl.pem" "$tmp/crl.pem"
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.1:$relay_port" --tls-cert "$certs/server/cert.pem" \
		--tls-key "$certs/server/key.pem" --tls-ca "$tmp/both.pem" --tls-crl "$tmp/crl.pem" \
		--log-level debug
	wait_log relay 'listening on' 15
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$tmp/b/proxy/cert.pem" --tls-key "$tmp/b/proxy/key.pem" --tls-ca "$tmp/both.pem"
	relay_sees_proxy "proxy proxy-1 registered"
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$certs/gone/cert.pem" --tls-key "$certs/gone/key.pem" --tls-ca "$tmp/both.pem"
	relay_sees_proxy "certificate refused: tunnel://proxy/gone .*certificate revoked by the CRL"
	cat "$certs/ca/crl.pem" "$tmp/b/ca/crl.pem" >"$tmp/crl.pem"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: done" 10
	n=$(grep -c "proxy proxy-1 registered" "$tmp/relay.log")
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$certs/proxy/cert.pem" --tls-key "$certs/proxy/key.pem" --tls-ca "$tmp/both.pem"
	wait_log proxy "registered with relay" 15
	(($(grep -c "proxy proxy-1 registered" "$tmp/relay.log") > n)) || fail "CA a's proxy was not registered"
	stop proxy
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$tmp/b/proxy/cert.pem" --tls-key "$tmp/b/proxy/key.pem" --tls-ca "$tmp/both.pem"
	wait_log proxy "registered with relay" 15
	stop proxy
	# ... and keeps out what CA b revoked.
	timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -tls1_3 -alpn h2 \
		-cert "$tmp/b/gone/cert.pem" -key "$tmp/b/gone/key.pem" -CAfile "$tmp/both.pem" \
		</dev/null >/dev/null 2>&1 || true
	wait_log relay "certificate refused: tunnel://client/b-gone .*certificate revoked by the CRL" 10
	alive relay
	stop relay
	log "ok: a rotation with CRLs of one and of both CAs lets both CAs' proxies in, and keeps out what each revoked"

	# Two CAs of one name, CRLs without key ids, one serial in both: each certificate is checked
	# against the CRL its own CA signed, the newest of it, whichever CRL is newer overall.
	same_name_ca "$tmp/same-a"
	same_name_ca "$tmp/same-b"
	openssl_leaf "$tmp/same-a" "$tmp/same-a/leaf" tunnel://client/same-a -days 10
	openssl_leaf "$tmp/same-b" "$tmp/same-b/leaf" tunnel://client/same-b -days 10
	plain_crl "$tmp/same-a" "$tmp/same-a/crl.pem" "$tmp/same-a/leaf/cert.pem"
	sleep 1.1 # the other CA's CRL is the newer one
	plain_crl "$tmp/same-b" "$tmp/same-b/crl.pem"
	cat "$tmp/same-a/cert.pem" "$tmp/same-b/cert.pem" >"$tmp/same-cas.pem"
	cat "$tmp/same-a/crl.pem" "$tmp/same-b/crl.pem" >"$tmp/same-crls.pem"
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.1:$relay_port" --tls-cert "$certs/server/cert.pem" \
		--tls-key "$certs/server/key.pem" --tls-ca "$tmp/same-cas.pem" --tls-crl "$tmp/same-crls.pem"
	wait_log relay 'listening on' 15
	for who in same-a same-b; do
		timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -tls1_3 -alpn h2 \
			-cert "$tmp/$who/leaf/cert.pem" -key "$tmp/$who/leaf/key.pem" </dev/null >/dev/null 2>&1 || true
	done
	wait_log relay "certificate refused: tunnel://client/same-a .*certificate revoked by the CRL" 10
	sleep 0.3
	! grep -q "certificate refused: tunnel://client/same-b" "$tmp/relay.log" ||
		fail "CA b's certificate was refused for the serial CA a revoked: $(grep same-b "$tmp/relay.log")"
	stop relay
	# The reload's check of connected peers finds the same CRL: CA b's proxy (serial 7E57 too)
	# stays when CA a's CRL revoking 7E57 becomes the newest.
	openssl_leaf "$tmp/same-b" "$tmp/same-b/pleaf" tunnel://proxy/same-b-proxy -days 10
	start relay "$server" --listen "127.0.0.1:$relay_port" --tls-cert "$certs/server/cert.pem" \
		--tls-key "$certs/server/key.pem" --tls-ca "$tmp/same-cas.pem" --tls-crl "$tmp/same-b/crl.pem"
	wait_log relay 'listening on' 15
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$tmp/same-b/pleaf/cert.pem" --tls-key "$tmp/same-b/pleaf/key.pem" \
		--tls-ca "$certs/ca/cert.pem"
	wait_log relay "proxy same-b-proxy registered" 15
	sleep 1.1
	plain_crl "$tmp/same-a" "$tmp/same-a/crl2.pem" "$tmp/same-a/leaf/cert.pem"
	cat "$tmp/same-b/crl.pem" "$tmp/same-a/crl2.pem" >"$tmp/same-crls2.pem"
	cp "$tmp/same-crls2.pem" "$tmp/same-b/crl.pem"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: done" 10
	sleep 0.5
	! grep -q "closing the session of proxy same-b-proxy" "$tmp/relay.log" ||
		fail "the reload closed CA b's proxy for the serial CA a revoked"
	alive proxy
	stop proxy
	stop relay
	log "ok: two CAs of one name: each certificate meets its own CA's CRL, in handshakes and on reload"

	# A proxy that registers with a token takes a new one on reload, as the relay does.
	printf 'tokens: [{proxy: tok, token: first-token-0123456789}]\n' >"$tmp/relay.yaml"
	relay_port=$(free_port)
	tls server
	start relay "$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --config "$tmp/relay.yaml"
	wait_log relay 'listening on' 15
	printf 'token: first-token-0123456789\nproxy_id: tok\n' >"$tmp/proxy.yaml"
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-ca "$certs/ca/cert.pem" --config "$tmp/proxy.yaml"
	wait_log relay "proxy tok registered" 15
	# The rotation: the relay takes both, the proxy moves to the new one, the old one goes.
	printf 'tokens: [{proxy: tok, token: first-token-0123456789}, {proxy: tok, token: second-token-0123456789}]\n' \
		>"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: done" 10
	printf 'token: second-token-0123456789\nproxy_id: tok\n' >"$tmp/proxy.yaml"
	kill -HUP "${pid[proxy]}"
	relay_logs_twice "proxy tok registered" ||
		fail "the proxy did not register again with its new token: $(tail -n 5 "$tmp/relay.log")"
	printf 'tokens: [{proxy: tok, token: second-token-0123456789}]\n' >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	relay_logs_twice "reload: done" || fail "the relay did not reload a second time"
	sleep 0.5
	alive proxy
	! grep -q "token of proxy tok is no longer valid" "$tmp/relay.log" ||
		fail "the relay dropped the proxy that had moved to the new token"
	stop proxy
	stop relay
	log "ok: a proxy's reload takes its new token"

	# --bootstrap: the relay certificate it made earlier has expired.
	state=$tmp/state
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.1:$relay_port" --bootstrap --state-dir "$state"
	wait_log relay 'listening on' 15
	stop relay
	openssl_leaf "$state/ca" "$tmp/old-relay" tunnel://server/relay -days -1
	cp "$tmp/old-relay/cert.pem" "$tmp/old-relay/key.pem" "$state/server/"
	start relay "$server" --listen "127.0.0.1:$relay_port" --bootstrap --state-dir "$state"
	wait_log relay 'listening on' 15
	grep -q "bootstrap: the relay's certificate .* expired on .*: issuing a new one" "$tmp/relay.log" ||
		fail "bootstrap did not say it renewed the relay's certificate"
	timeout 10 openssl x509 -in "$state/server/cert.pem" -noout -checkend 86400 >/dev/null ||
		fail "bootstrap left an expired relay certificate"
	stop relay
	log "ok: --bootstrap issued an expired relay certificate anew"
	;;
startup_errors)
	tls server
	port=$(free_port)
	relay_args=(--listen "127.0.0.1:$port" "${tls[@]}")
	expect_exit 2 "public_ports: '10000-9000' is not a list" \
		"$server" "${relay_args[@]}" --public-ports 10000-9000
	expect_exit 2 "public_addr: 'not an address' is not an address" \
		"$server" "${relay_args[@]}" --public-addr 'not an address'
	# An IPv6 public_addr, bracketed or not, is an address to listen on.
	for a in :: '[::1]'; do
		start_relay --public-addr "$a"
		stop relay
	done
	expect_exit 2 "token of proxy 'p' is shorter than 16" \
		"$server" "${relay_args[@]}" --token proxy=p,token=short
	expect_exit 2 "services: proxy 'p' already has a service 'db'" "$server" "${relay_args[@]}" \
		--service proxy=p,name=db,public_port=10001,target=127.0.0.1:1 \
		--service proxy=p,name=db,public_port=10002,target=127.0.0.1:2
	expect_exit 2 "services: public port 10001 is already service 'a'" "$server" "${relay_args[@]}" \
		--service proxy=p,name=a,public_port=10001,target=127.0.0.1:1 \
		--service proxy=q,name=b,public_port=10001,target=127.0.0.1:2
	expect_exit 2 "service name 'a b' is not 1-64 printable" "$server" "${relay_args[@]}" \
		--service "proxy=p,name=a b,public_port=10001,target=127.0.0.1:1"
	# A name would be looked up by the relay's resolver, on its loop: only addresses.
	expect_exit 2 "service 'db': target 'db.lan:5432' is not IP:PORT" "$server" "${relay_args[@]}" \
		--service proxy=p,name=db,public_port=10001,target=db.lan:5432
	expect_exit 2 "TLS needs a certificate, a key and a CA file" \
		"$server" --listen "127.0.0.1:$port"
	# A port in use is no configuration error (systemd tries again), and is always shown.
	start_relay
	expect_exit 1 "listen on 127.0.0.1:$relay_port: Address already in use" \
		"$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --log-level error
	tls proxy
	proxy_args=(--server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 "${tls[@]}")
	expect_exit 1 "admin listener 127.0.0.1:$relay_port: Address already in use" \
		"$proxy" "${proxy_args[@]}" --admin "127.0.0.1:$relay_port" --log-level error
	# What the relay would refuse at registration, the proxy refuses at start.
	expect_exit 2 "expose: the name 'a b' is not 1-64 printable" \
		"$proxy" "${proxy_args[@]}" --expose "name=a b,target=127.0.0.1:1"
	expect_exit 2 "http.host 'bad_host' is not a host name" \
		"$proxy" "${proxy_args[@]}" --expose "name=w,target=127.0.0.1:1,http=true,http.host=Bad_Host"
	# Two names of one setting in one file: neither may be lost silently.
	printf 'server_addr: 127.0.0.1:1\nservers: [127.0.0.2:1]\nmanaged_cidr: 127.0.0.1/32\n' >"$tmp/p2.yaml"
	expect_exit 2 "p2.yaml:2:1: servers: the same setting as 'server_addr' \(line 1\)" \
		"$proxy" --config "$tmp/p2.yaml" "${tls[@]}"
	expect_exit 2 "virtual network fd00:64::/64 and network 10.0.0.0/24 must be of one family" \
		"$proxy" --server 127.0.0.1:1 --managed-cidr 10.0.0.0/24 --virtual-cidr fd00:64::/64 "${tls[@]}"
	expect_exit 2 "tls.server_name 'bad name' is not a host name, an address or \*" \
		"$proxy" --server 127.0.0.1:1 --managed-cidr 127.0.0.1/32 "${tls[@]}" --server-name 'bad name'
	expect_exit 2 "network fe80::/64 is link-local" "$proxy" --server 127.0.0.1:1 \
		--network cidr=fe80::/64,virtual_cidr=fd00:64:fe::/64 "${tls[@]}"
	expect_exit 2 "without a certificate, give --token and --proxy-id" \
		"$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-ca "$certs/ca/cert.pem" --token 0123456789abcdef
	# status_socket "" is no socket (not the default one, which another client may own).
	expect_exit 1 'no status socket \(status_socket is ""\)' "$client" status --status-socket ""
	expect_exit 2 "TLS needs a certificate, a key and a CA file" \
		"$client" --server "127.0.0.1:$relay_port" --cidr 100.64.0.0/10
	# A certificate of the other role could never work: refused before the relay is dialed.
	expect_exit 2 "proxy/cert.pem is a proxy certificate, and the relay takes only client" \
		"$client" --server "127.0.0.1:$relay_port" --cidr 100.64.0.0/10 "${tls[@]}"
	tls client
	expect_exit 2 "client/cert.pem is a client certificate, and the relay takes only proxy" \
		"$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 "${tls[@]}"
	alive relay
	stop relay
	;;
relay_http)
	admin_port=$(free_port)
	start_relay --admin "127.0.0.1:$admin_port"
	out=$(http_raw "$relay_port" 'b"HEAD /healthz HTTP/1.1\r\nHost: r\r\n\r\n"')
	[[ $out == "HTTP/1.1 200 OK"*$'Content-Length: 3\r\n'*$'\r\n\r\n|' ]] ||
		fail "HEAD /healthz on the tunnel port: $out"
	out=$(http_raw "$relay_port" 'b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n"')
	[[ $out == "HTTP/1.1 200 OK"*$'\r\n\r\nok\n|' ]] || fail "GET /healthz on the tunnel port: $out"
	out=$(http_raw "$admin_port" 'b"GET /heal\x00thz HTTP/1.1\r\n\r\n"')
	[[ $out == "HTTP/1.1 400 "* ]] || fail "an admin request with a NUL got: $out"
	log "ok: HEAD /healthz has no body, a NUL gets 400"
	# As many idle connections as the admin listener takes, each sending half a request head.
	timeout 30 python3 - "$admin_port" <<-'EOF' || fail "idle connections locked out /healthz"
		import socket, sys, time, urllib.request
		port = int(sys.argv[1])
		idle = []
		for _ in range(32):
		    s = socket.create_connection(("127.0.0.1", port), timeout=5)
		    s.sendall(b"GET /metrics HTTP/1.1\r\nX: ")
		    idle.append(s)
		time.sleep(0.3)
		with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
		    assert r.status == 200, r.status
		closed = 0
		for s in idle:
		    s.settimeout(0.2)
		    try:
		        closed += s.recv(1) == b""
		    except socket.timeout:
		        pass
		    except OSError:
		        closed += 1
		print(f"/healthz answered beside 32 idle connections; {closed} of them closed")
		sys.exit(0 if closed >= 1 else 1)
	EOF
	log "ok: 32 idle admin connections do not lock out /healthz"
	alive relay
	stop relay
	# admin.token: empty or null is no token (the API is off), a short one is refused, and a
	# reload puts a new one in place of the old at once.
	manage() {
		timeout 10 curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
			"http://127.0.0.1:$admin_port/api/v1/manage/proxies"
	}
	tls server
	for empty in "" "~" "null"; do
		printf 'admin: {listen: "127.0.0.1:%s", token: %s}\n' "$admin_port" "$empty" >"$tmp/relay.yaml"
		start_relay --config "$tmp/relay.yaml"
		[[ $(manage "$empty") == 403 ]] || fail "admin.token: $empty opened the API to 'Bearer $empty'"
		stop relay
	done
	log "ok: an empty or null admin.token leaves the management API off"
	# An empty setting that has a default takes the default, at start and on reload.
	printf 'public_addr: ""\nlog: {output: ~}\n' >"$tmp/relay.yaml"
	start_relay --config "$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: done" 10
	alive relay
	stop relay
	log "ok: public_addr \"\" is its default, also on reload"
	printf 'admin: {token: short}\n' >"$tmp/relay.yaml"
	expect_exit 2 "admin.token is shorter than 16 characters" \
		"$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --config "$tmp/relay.yaml"
	printf 'admin: {listen: "127.0.0.1:%s", token: first-token-aaaaaaaa}\n' "$admin_port" >"$tmp/relay.yaml"
	start_relay --config "$tmp/relay.yaml"
	[[ $(manage first-token-aaaaaaaa) == 200 ]] || fail "the first admin token was refused"
	printf 'admin: {listen: "127.0.0.1:%s", token: second-token-bbbbbbbb}\n' "$admin_port" >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	wait_log relay "reload: done" 10
	[[ $(manage first-token-aaaaaaaa) == 401 ]] || fail "the old admin token still works after a reload"
	[[ $(manage second-token-bbbbbbbb) == 200 ]] || fail "the new admin token does not work after a reload"
	printf 'admin: {listen: "127.0.0.1:%s", token: second-token-bbbbbbbb}\naudit: {output: %s}\n' \
		"$admin_port" "$tmp/audit.log" >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	wait_log relay "audit.output, http_listen and https_listen take effect after a restart" 10
	stop relay
	log "ok: a reload rotates the admin token, and says what waits for a restart"
	# With the log in a file, what makes a reload fail is in that file, not only on stderr.
	printf 'admin: {token: third-token-cccccccc}\n' >"$tmp/relay.yaml"
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --config "$tmp/relay.yaml" \
		--log-output "$tmp/relay-file.log"
	in_file() {
		for ((i = 0; i < 50; i++)); do
			grep -qE -- "$1" "$tmp/relay-file.log" && return 0
			sleep 0.1
		done
		fail "the log file has no /$1/: $(tail -n 5 "$tmp/relay-file.log")"
	}
	in_file "listening on"
	printf 'admin: {token: short}\n' >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	in_file "warn: reload: server: admin.token is shorter than 16 characters"
	printf 'admin: {token: [x}\n' >"$tmp/relay.yaml"
	kill -HUP "${pid[relay]}"
	in_file "warn: reload: $tmp/relay.yaml:1:"
	stop relay
	log "ok: a failed reload's reasons are in the log file"
	# A relay dialled by an IPv6 address: the proxy writes it in brackets, as a URL has it.
	relay_port=$(free_port) pub=$(free_port)
	start relay "$server" --listen "[::1]:$relay_port" "${tls[@]}" --public-ports "$pub-$pub" \
		--public-addr ::1
	wait_log relay 'listening on' 15
	start_proxy "[::1]:$relay_port" --expose "name=x,target=127.0.0.1:9,public_port=$pub"
	wait_log proxy "published x: tcp://\[::1\]:$pub -> 127.0.0.1:9" 15
	stop proxy
	stop relay
	log "ok: published x: tcp://[::1]:$pub"
	;;
public_ops)
	# The LAN service: GET /big is 1 MiB at once, GET /slow is 20 pieces of 16 KiB in 3 s.
	cat >"$tmp/target.py" <<-'EOF'
		import http.server, sys, time
		class H(http.server.BaseHTTPRequestHandler):
		    def do_GET(self):
		        n, pause = (64, 0) if self.path == "/big" else (20, 0.15)
		        self.send_response(200)
		        self.send_header("Content-Length", str(n * 16384))
		        self.end_headers()
		        for _ in range(n):
		            self.wfile.write(b"x" * 16384)
		            self.wfile.flush()
		            time.sleep(pause)
		    def log_message(self, *a):
		        pass
		http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
	EOF
	web=$(free_port)
	start target python3 "$tmp/target.py" "$web"
	relay_port=$(free_port) admin=$(free_port) padmin=$(free_port) token=0123456789abcdef0123
	p1=$(free_port) p2=$(free_port) p3=$(free_port)
	# relay_conf ADDR PROXY_ID [SERVICES]: the relay's file, with public_addr ADDR, proxies:
	# allowing PROXY_ID 127.0.0.1/32, and the services: list SERVICES.
	relay_conf() {
		cat >"$tmp/server.yaml" <<-EOF
			listen_addr: 127.0.0.1:$relay_port
			tls: {cert_file: $certs/server/cert.pem, key_file: $certs/server/key.pem, ca_file: $certs/ca/cert.pem}
			admin: {listen: 127.0.0.1:$admin, token: $token}
			public_addr: $1
			public_ports: "$p1 $p2 $p3"
			proxies: [{id: $2, networks: [127.0.0.1/32]}]
			services: [${3:-}]
			log: {level: debug}
			audit: {output: $tmp/audit.log}
		EOF
	}
	relay_conf 127.0.0.1 proxy-1
	start relay "$server" -c "$tmp/server.yaml"
	wait_log relay 'listening on' 15
	start_proxy "127.0.0.1:$relay_port" --admin "127.0.0.1:$padmin" \
		--expose "name=web,target=127.0.0.1:$web,public_port=$p1"
	wait_log relay "serves public port $p1: web \\(127.0.0.1:$web\\)" 15

	# Its bytes are the proxy's, at the relay and at the proxy.
	n=$(timeout 20 curl -sS "http://127.0.0.1:$p1/big" | wc -c)
	((n == 1048576)) || fail "GET /big through the public port: $n bytes"
	sleep 0.3
	status=$(timeout 10 curl -sS "http://127.0.0.1:$admin/api/v1/status")
	down=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["proxies"][0]["bytes_down"])' "$status")
	((down >= 1048576)) || fail "the relay's status counts $down bytes down for the proxy: $status"
	for s in "tunnel_proxy_bytes_total{proxy=\"proxy-1\",direction=\"down\"}" \
		"tunnel_route_bytes_total{route=\"service:web\",direction=\"down\"}"; do
		v=$(metric "$admin" "$s")
		((${v:-0} >= 1048576)) || fail "relay metric $s is '${v:-}'"
	done
	v=$(metric "$padmin" "tunnel_route_bytes_total{route=\"service:web\",direction=\"down\"}")
	((${v:-0} >= 1048576)) || fail "the proxy's service:web route counts '${v:-}' bytes down"
	log "ok: a public connection's bytes count for its proxy (relay: $down; proxy: $v)"
	# And it is in the audit file, as a client's flow is.
	python3 - "$tmp/audit.log" <<-'EOF' || fail "no flow.end of the public connection in the audit file"
		import json, sys, time
		for _ in range(50):  # written when the connection has closed
		    events = [json.loads(l) for l in open(sys.argv[1])]
		    if any(e["event"] == "flow.end" and e["fields"].get("client") == "public"
		           and e["fields"].get("service") == "web"
		           and e["fields"].get("down", 0) >= 1048576 for e in events):
		        sys.exit(0)
		    time.sleep(0.1)
		sys.exit(1)
	EOF
	log "ok: the public connection's flow.end is in the audit file"

	# The management API: a name or a port given twice is a conflict, not a second service.
	api() {
		timeout 10 curl -sS -o "$tmp/api.out" -w '%{http_code}' -X POST \
			-H "Authorization: Bearer $token" --data "$1" \
			"http://127.0.0.1:$admin/api/v1/manage/services"
	}
	svc() { echo "{\"proxy\":\"proxy-1\",\"name\":\"$1\",\"public_port\":$2,\"target\":\"127.0.0.1:$web\"}"; }
	[[ $(api "$(svc db "$p2")") == 201 ]] || fail "POST db: $(cat "$tmp/api.out")"
	[[ $(api "$(svc db "$p3")") == 409 ]] || fail "POST db again: $(cat "$tmp/api.out")"
	grep -q "already has a service 'db'" "$tmp/api.out" || fail "POST db again: $(cat "$tmp/api.out")"
	[[ $(api "$(svc other "$p2")") == 409 ]] || fail "POST on db's port: $(cat "$tmp/api.out")"
	[[ $(api "$(svc web "$p3")") == 409 ]] || fail "POST web (the proxy's own): $(cat "$tmp/api.out")"
	grep -q "already published otherwise" "$tmp/api.out" || fail "POST web: $(cat "$tmp/api.out")"
	n=$(timeout 20 curl -sS "http://127.0.0.1:$p2/big" | wc -c)
	((n == 1048576)) || fail "GET /big through db's port: $n bytes"
	for ((i = 0; i < 50; i++)); do
		grep -q "client=public -> 127.0.0.1:$web " "$tmp/proxy.log" && break
		sleep 0.1
	done
	grep -q "client=public -> 127.0.0.1:$web " "$tmp/proxy.log" ||
		fail "the proxy does not say the relay service's flow came from a public port"
	status=$(timeout 10 curl -sS "http://127.0.0.1:$admin/api/v1/status")
	python3 -c 'import json,sys; x = [e for e in json.loads(sys.argv[1])["exposures"] if e["name"] == "db"]; sys.exit(len(x) != 1 or len(x[0]["replicas"]) != 1)' "$status" ||
		fail "db is not one port served by one replica: $status"
	log "ok: the management API refuses a service name or port taken twice"

	# SIGHUP: public_addr moves to 127.0.0.2, db (API only) goes, files (in the file) comes.
	relay_conf 127.0.0.2 proxy-1 "{proxy: proxy-1, name: files, public_port: $p3, target: 127.0.0.1:$web}"
	kill -HUP "${pid[relay]}"
	wait_log relay 'reload: done' 15
	grep -q "reload: public_addr 127.0.0.2 applies to the public ports opened from now on" \
		"$tmp/relay.log" || fail "the relay did not say how public_addr changes"
	n=$(timeout 20 curl -sS "http://127.0.0.2:$p3/big" | wc -c)
	((n == 1048576)) || fail "files, added to the file, is not served on 127.0.0.2:$p3: $n bytes"
	timeout 10 curl -sS -o /dev/null "http://127.0.0.1:$p2/big" 2>/dev/null &&
		fail "db's port $p2 still answers after a reload without it"
	status=$(timeout 10 curl -sS "http://127.0.0.1:$admin/api/v1/status")
	[[ $status == *"\"listen\":\"127.0.0.1:$p1\""* && $status == *"\"listen\":\"127.0.0.2:$p3\""* ]] ||
		fail "the status does not show where the ports listen: $status"
	n=$(timeout 20 curl -sS "http://127.0.0.1:$p1/big" | wc -c)
	((n == 1048576)) || fail "web stopped answering on 127.0.0.1:$p1 after the reload: $n bytes"
	log "ok: SIGHUP published files, closed db, and web stays on 127.0.0.1"

	# A reload that no longer allows proxy-1: its open transfer finishes, then it leaves.
	timeout 30 curl -sS -o "$tmp/slow.out" "http://127.0.0.1:$p1/slow" &
	slow=$!
	sleep 0.5
	relay_conf 127.0.0.2 someone-else
	kill -HUP "${pid[relay]}"
	wait_log proxy 'relay refused registration' 15
	rc=0
	wait "$slow" || rc=$?
	n=$(wc -c <"$tmp/slow.out")
	((rc == 0 && n == 327680)) || fail "the transfer open at the reload ended with curl $rc after $n bytes"
	wait_log proxy 'registration refused: leaving the relay' 5
	wait_status proxy 1 20
	log "ok: the transfer open at the reload finished ($n bytes), then the proxy left with status 1"
	# Nor may it publish with no network to announce (an HTTP host would be its to take).
	tls proxy
	start proxy2 "$proxy" --server "127.0.0.1:$relay_port" "${tls[@]}" \
		--expose "name=web,target=127.0.0.1:$web"
	wait_log proxy2 "refused registration: proxy id 'proxy-1' is not in the relay's proxies list" 15
	wait_status proxy2 1 10
	log "ok: a proxy the list does not name is refused with services only"
	alive relay
	stop relay
	;;
*)
	fail "$usage"
	;;
esac
log "passed"
