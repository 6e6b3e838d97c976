#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Security tests that run the real relay and proxy on 127.0.0.1 (no namespaces):
#
#   slow_handshake   500 half-open TLS connections (nothing, or half a ClientHello) held against
#                    the relay: a proxy still connects at once; each of the 500 is closed after
#                    --handshake-timeout with a logged reason; descriptors go back to baseline
#   slow_handshake_emfile
#                    the same against a relay limited to 200 descriptors: it pauses accepting
#                    while out of them (EMFILE), the half-open ones time out in turn, and the
#                    proxy waiting in the backlog gets in within a few handshake timeouts
#   server_name      proxies check the relay's certificate against the name they dial
#                    (localhost: DNS, and SNI), 127.0.0.1 (IP), or --server-name; a wrong name
#                    is refused with the reason logged, and the proxy gives up.  Without
#                    --server-name, a relay certificate that names no host (certs-tool's
#                    default: loopback names only) passes on its CA and role, with a note; one
#                    issued with a name is refused when dialed by another
#   bootstrap        server --bootstrap with no certificates: makes a CA and its certificate in
#                    --state-dir, prints the CA and the certs-tool commands; a proxy with the
#                    certificate those commands make registers; a restart reuses the CA
#   bad_input        bursts of badinput.py (garbage, half handshakes, HTTP/2 floods, rapid
#                    reset, oversized, truncated and undecodable messages): each is refused
#                    with a logged reason, the relay's descriptors and RSS return to their
#                    baseline, the proxy registered before stays, a new one registers
#   no_certificate   a peer without a certificate sends 200 requests on one connection
#                    (nocert.py): without tokens it gets the TLS handshake and nothing else (no
#                    request read, one log line), and a proxy with a token is told so and gives
#                    up at once; with tokens its first refusal ends the connection, the refusals
#                    of many connections are rate-limited in the log, one that never registers
#                    is closed after 10 s even if it answers PINGs, a token proxy registers
#
# Usage: security_test.sh SCENARIO BUILD_DIR
# TN_KEEP_TMP=1 keeps the temporary directory (certificates, logs).
set -euo pipefail

usage="usage: $0 slow_handshake|slow_handshake_emfile|server_name|bootstrap|bad_input|no_certificate BUILD_DIR"
scenario=${1:?$usage}
log_prefix=security
build=$(realpath "${2:?$usage}")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tools/regress_lib.sh
. "$here/../tools/regress_lib.sh"

# prog_pid NAME: the PID of NAME's program (start runs it under timeout).
prog_pid() { pgrep -P "${pid[$1]}" | head -n 1; }

# fds NAME: how many descriptors NAME's program holds.
fds() { find "/proc/$(prog_pid "$1")/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# rss_kib NAME: the resident memory of NAME's program.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$(prog_pid "$1")/status"; }

# settle NAME FDS KIB SECONDS: wait until NAME holds at most FDS descriptors and KIB of RSS.
settle() {
	local deadline=$((SECONDS + $4))
	while (($(fds "$1") > $2 || $(rss_kib "$1") > $3)) && ((SECONDS < deadline)); do sleep 0.2; done
}

# count NAME REGEX: lines of NAME's log matching REGEX.
count() { grep -cE -- "$2" "$tmp/$1.log" || true; }

# attack_over SECONDS: the slow-handshake attacker ends (within SECONDS); each of its $n
# connections must have been timed out and logged, the relay's descriptors must be back to
# $base plus the proxy's, and both programs alive; then both stop.
attack_over() {
	wait_exit slowloris "$1"
	show slowloris
	timed_out=$(count relay 'TLS handshake timed out after [0-9.]+ s')
	((timed_out == n)) || fail "$timed_out handshake timeouts logged, expected $n"
	deadline=$((SECONDS + 5))
	while (($(fds relay) > base + 1)) && ((SECONDS < deadline)); do sleep 0.1; done
	after=$(fds relay)
	log "relay descriptors after the attack: $after (baseline $base + the proxy's)"
	((after <= base + 1)) || fail "the relay holds $after descriptors after the attack, baseline $base"
	alive relay
	alive proxy
	stop proxy
	stop relay
}

timeout 30 "$certs_tool" --out "$certs" >/dev/null

case $scenario in
slow_handshake)
	n=500
	hs=3
	start_relay --handshake-timeout "${hs}s" --log-level info
	base=$(fds relay)
	start slowloris python3 "$here/slowloris.py" 127.0.0.1 "$relay_port" -n "$n" --hold 30
	wait_log slowloris "^holding $n" 20
	# The attack is in place: the relay has accepted every connection and holds it.
	deadline=$((SECONDS + 5))
	while (($(fds relay) < base + n)) && ((SECONDS < deadline)); do sleep 0.1; done
	held=$(fds relay)
	log "relay descriptors: $base at rest, $held under attack"
	((held >= base + n)) || fail "the relay holds $held descriptors, expected at least $((base + n))"
	# A legitimate peer gets through at once, well before the half-open ones time out.
	t0=$(date +%s%N)
	start_proxy "127.0.0.1:$relay_port"
	wait_log relay 'proxy proxy-1 registered' "$hs"
	ms=$((($(date +%s%N) - t0) / 1000000))
	log "the proxy registered ${ms} ms after it started, under attack"
	timed_out=$(count relay 'TLS handshake timed out')
	((timed_out < n)) || fail "the attackers' connections had already timed out: the test proved nothing"
	attack_over 40
	;;
slow_handshake_emfile)
	n=500
	hs=2
	nofile=200
	relay_port=$(free_port)
	tls server
	start relay prlimit --nofile="$nofile:$nofile" -- "$server" --listen "127.0.0.1:$relay_port" \
		"${tls[@]}" --handshake-timeout "${hs}s" --log-level info
	wait_log relay 'listening on' 15
	base=$(fds relay)
	start slowloris python3 "$here/slowloris.py" 127.0.0.1 "$relay_port" -n "$n" --hold 60
	wait_log slowloris "^holding $n" 20
	wait_log relay 'accept.*pausing new connections' 10
	held=$(fds relay)
	log "relay descriptors: $base at rest, $held under attack (limit $nofile)"
	# (a descriptor inherited from the test runner may sit above the limit)
	((held >= nofile - 5)) || fail "the relay holds $held descriptors: it never ran out, the test proved nothing"
	# Each round of handshake timeouts frees about nofile - base descriptors for the backlog.
	bound=$(((n / (nofile - base) + 1) * hs + 5))
	t0=$(date +%s%N)
	start_proxy "127.0.0.1:$relay_port"
	wait_log relay 'proxy proxy-1 registered' "$bound"
	ms=$((($(date +%s%N) - t0) / 1000000))
	log "the proxy registered ${ms} ms after it started (bound ${bound} s), behind $n half-open connections"
	attack_over 60
	;;
server_name)
	# name_ok HOST:PORT ARGS...: a proxy dialing with ARGS registers.
	name_ok() {
		local n deadline=$((SECONDS + 15))
		n=$(count relay 'proxy proxy-1 registered')
		log "proxy: $*"
		start_proxy "$@"
		while (($(count relay 'proxy proxy-1 registered') == n)); do
			((SECONDS < deadline)) || fail "the proxy did not register with $*"
			alive proxy
			sleep 0.1
		done
		stop proxy
	}
	# proxy_refuses REGEX HOST:PORT ARGS...: a proxy dialing with ARGS refuses the relay's
	# certificate, logs a line matching REGEX, and gives up.
	proxy_refuses() {
		local re=$1 n deadline=$((SECONDS + 15))
		shift
		n=$(count relay 'proxy proxy-1 registered')
		log "proxy: $* (must refuse the relay: $re)"
		start_proxy "$@"
		while is_running proxy && ((SECONDS < deadline)); do sleep 0.1; done
		is_running proxy && fail "a proxy that must refuse the relay ($re) still runs after 15 s"
		reap proxy
		((status != 0)) || fail "a proxy that must refuse the relay ($re) exited 0"
		grep -E "certificate refused: $re" "$tmp/proxy.log" >&2 ||
			fail "the proxy did not log why it refused the relay ($re)"
		(($(count relay 'proxy proxy-1 registered') == n)) || fail "registered with a refused relay"
	}
	# name_refused NAME HOST:PORT ARGS...: ... because the relay is not issued to NAME.
	name_refused() {
		local name=$1
		shift
		proxy_refuses "tunnel://server/relay .*it is not issued to '$name'" "$@"
	}
	# certs-tool's relay certificate names localhost, 127.0.0.1 and ::1 only.
	start_relay
	name_ok "localhost:$relay_port"
	name_ok "127.0.0.1:$relay_port"
	name_ok "127.0.0.1:$relay_port" --server-name localhost
	name_refused relay.example.test "127.0.0.1:$relay_port" --server-name relay.example.test
	name_refused 127.0.0.2 "127.0.0.1:$relay_port" --server-name 127.0.0.2
	alive relay
	stop relay
	# Dialed by an address it does not carry, that certificate names no host: without
	# --server-name the CA and the role vouch for it alone, and the proxy says so.
	relay_port=$(free_port)
	tls server
	start relay "$server" --listen "127.0.0.2:$relay_port" "${tls[@]}" --log-level debug
	wait_log relay 'listening on' 15
	name_ok "127.0.0.2:$relay_port"
	grep -q "relay certificate tunnel://server/relay names no host" "$tmp/proxy.log" ||
		fail "the proxy did not say that the relay's certificate names no host"
	name_refused 127.0.0.2 "127.0.0.2:$relay_port" --server-name 127.0.0.2
	stop relay
	# A relay certificate issued with a name binds the relay to it, also without --server-name.
	timeout 30 "$certs_tool" issue --role server --id relay --dns relay.example.test \
		--ca "$certs/ca" --out "$tmp/named" >/dev/null
	relay_port=$(free_port)
	start relay "$server" --listen "127.0.0.2:$relay_port" --tls-cert "$tmp/named/cert.pem" \
		--tls-key "$tmp/named/key.pem" --tls-ca "$certs/ca/cert.pem" --log-level debug
	wait_log relay 'listening on' 15
	name_refused 127.0.0.2 "127.0.0.2:$relay_port"
	name_ok "127.0.0.2:$relay_port" --server-name relay.example.test
	alive relay
	stop relay
	# The waiver is the server role's alone: a certificate of the CA that names no host and may
	# serve TLS (serverAuth), but is a proxy's, still has to carry the host dialed.
	odd=$tmp/odd
	mkdir -p "$odd"
	printf 'subjectAltName=URI:tunnel://proxy/odd\nextendedKeyUsage=serverAuth\n' >"$odd/ext"
	timeout 30 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=odd \
		-keyout "$odd/key.pem" -out "$odd/req.pem" 2>/dev/null
	timeout 30 openssl x509 -req -in "$odd/req.pem" -CA "$certs/ca/cert.pem" \
		-CAkey "$certs/ca/key.pem" -set_serial 0x0dd -days 1 -extfile "$odd/ext" \
		-out "$odd/cert.pem" 2>/dev/null
	relay_port=$(free_port)
	# Our relay will not serve with it; a TLS server that is not ours would.
	rc=0
	timeout 10 "$server" --listen "127.0.0.2:$relay_port" --tls-cert "$odd/cert.pem" \
		--tls-key "$odd/key.pem" --tls-ca "$certs/ca/cert.pem" >"$tmp/odd.log" 2>&1 || rc=$?
	((rc == 2)) && grep -q "is a proxy certificate, and the relay needs a server certificate" \
		"$tmp/odd.log" || fail "the relay started with a proxy's certificate (status $rc)"
	start relay openssl s_server -accept "127.0.0.2:$relay_port" -cert "$odd/cert.pem" \
		-key "$odd/key.pem" -CAfile "$certs/ca/cert.pem" -tls1_3 -alpn h2 -quiet
	for ((i = 0; i < 50; i++)); do
		ss -Hltn "sport = :$relay_port" | grep -q . && break
		sleep 0.1
	done
	proxy_refuses "tunnel://proxy/odd .*it is not issued to '127.0.0.2'" "127.0.0.2:$relay_port"
	kill "${pid[relay]}"
	reap relay
	;;
bootstrap)
	state=$tmp/state
	relay_port=$(free_port)
	boot=("$server" --listen "127.0.0.1:$relay_port" --bootstrap --state-dir "$state")
	start relay "${boot[@]}"
	wait_log relay 'listening on' 15
	show relay
	grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp/relay.log" || fail "the CA certificate was not printed"
	cmp -s <(sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$tmp/relay.log") \
		"$state/ca/cert.pem" || fail "what was printed is not the CA certificate in $state/ca"
	[ "$(stat -c %a "$state/ca/key.pem")" = 600 ] || fail "the CA key is not mode 0600"
	# Run the printed commands as they are (certs-tool from the build tree).
	mapfile -t cmds < <(sed -nE 's/^  (certs-tool issue --role (client|proxy) .*)$/\1/p' "$tmp/relay.log")
	((${#cmds[@]} == 2)) || fail "expected 2 certs-tool commands for a client and a proxy, got ${#cmds[@]}"
	for c in "${cmds[@]}"; do
		log "running: $c"
		read -ra argv <<<"${c#certs-tool }"
		(cd "$tmp" && timeout 30 "$certs_tool" "${argv[@]}") >&2 || fail "the printed command failed: $c"
	done
	start proxy "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 \
		--tls-cert "$tmp/proxy-1/cert.pem" --tls-key "$tmp/proxy-1/key.pem" \
		--tls-ca "$state/ca/cert.pem" --log-level debug
	wait_log relay 'proxy proxy-1 registered' 15
	stop proxy
	stop relay
	sum=$(sha256sum <"$state/ca/cert.pem")
	start relay "${boot[@]}"
	wait_log relay 'using the CA and certificate made earlier' 15
	wait_log relay 'listening on' 15
	[ "$(sha256sum <"$state/ca/cert.pem")" = "$sum" ] || fail "the restart replaced the CA"
	! grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp/relay.log" || fail "the restart printed a CA again"
	stop relay
	;;
bad_input)
	start_relay --open-timeout 1s --log-level info
	start_proxy "127.0.0.1:$relay_port"
	wait_log relay 'proxy proxy-1 registered' 15
	burst() {
		timeout 300 python3 "$here/badinput.py" 127.0.0.1 "$relay_port" "$certs" --rounds "$1" \
			>"$tmp/badinput.log" 2>&1 || { show badinput; fail "badinput.py failed"; }
	}
	# One round first: what the allocator keeps after its first use is the baseline.
	burst 1
	settle relay 0 0 7 # the relay trims its heap 5 s after memory was released
	base_fd=$(fds relay)
	base_rss=$(rss_kib relay)
	log "baseline after a warm-up round: $base_fd descriptors, $base_rss KiB"
	t0=$SECONDS
	burst 5
	show badinput
	peak_fd=$(fds relay)
	peak_rss=$(rss_kib relay)
	settle relay "$base_fd" $((base_rss + 2048)) 20
	fd=$(fds relay)
	rss=$(rss_kib relay)
	log "after 5 rounds ($((SECONDS - t0)) s): $fd descriptors (just after: $peak_fd), $rss KiB (just after: $peak_rss)"
	((fd <= base_fd)) || fail "the relay holds $fd descriptors, baseline $base_fd"
	if ldd "$server" | grep -q libasan; then
		# AddressSanitizer keeps freed memory in quarantine: RSS says nothing there; its leak
		# check when the relay stops (it must exit 0) does the job instead.
		log "AddressSanitizer build: RSS not compared, LeakSanitizer checks at exit"
	else
		((rss <= base_rss + 2048)) || fail "the relay's RSS is $rss KiB, baseline $base_rss KiB (+2 MiB allowed)"
	fi
	# Every kind was refused with a reason in the log.
	for re in 'TLS (handshake|failure).*(wrong version|unexpected|record|packet)|TLS handshake: |neither TLS nor an HTTP request' \
		'refused: unknown method' 'bad Open: limit exceeded \(limits.max_message\)' 'bad Open: protocol' 'stream ended before its Open was complete' \
		'no Open in time' 'request headers over 16384 bytes \(limits.max_header_list\): reset'; do
		grep -Eq -- "$re" "$tmp/relay.log" || fail "the relay did not log /$re/"
		log "relay logged: $(grep -E -- "$re" "$tmp/relay.log" | head -n 1 | cut -c 1-160)"
	done
	alive relay
	alive proxy
	! grep -q 'proxy proxy-1.* left' "$tmp/relay.log" || fail "the proxy lost its registration"
	n=$(count relay 'proxy proxy-1 registered')
	tls proxy
	start proxy2 "$proxy" --server "127.0.0.1:$relay_port" --managed-cidr 127.0.0.1/32 "${tls[@]}"
	deadline=$((SECONDS + 15))
	while (($(count relay 'proxy proxy-1 registered') == n)); do
		((SECONDS < deadline)) || fail "a new proxy cannot register after the burst"
		sleep 0.1
	done
	stop proxy2
	stop proxy
	stop relay
	;;
no_certificate)
	n=200
	token=nocert-test-token-0123456789
	# nocert ARGS...: nocert.py's line (one connection without a certificate, requests on it).
	nocert() { timeout 30 python3 "$here/nocert.py" 127.0.0.1 "$relay_port" "$@" || fail "nocert.py failed"; }
	# lines_since N: lines of the relay's log after its first N.
	lines_since() { tail -n "+$(($1 + 1))" "$tmp/relay.log"; }
	# token_proxy TOKEN: the real proxy, without a certificate, registering with TOKEN.
	token_proxy() {
		start proxy "$proxy" --server "127.0.0.1:$relay_port" --proxy-id tok --token "$1" \
			--tls-ca "$certs/ca/cert.pem" --managed-cidr 127.0.0.1/32
	}
	# proxy_gives_up: the proxy must end by itself within 10 s (its status in $status).
	proxy_gives_up() {
		local deadline=$((SECONDS + 10))
		while is_running proxy && ((SECONDS < deadline)); do sleep 0.1; done
		is_running proxy && fail "the proxy still runs after 10 s: it should have given up"
		reap proxy
	}

	# Without tokens: the TLS handshake and nothing else.
	start_relay --log-level info
	before=$(wc -l <"$tmp/relay.log")
	out=$(nocert --requests "$n" --wait 5)
	log "no tokens, $n requests on one connection: $out"
	[[ $out == "answered=0 "*" closed=yes "* ]] ||
		fail "the relay read the requests of a peer without a certificate, or kept its connection"
	sleep 0.5
	lines_since "$before" >&2
	(($(lines_since "$before" | wc -l) == 1)) || fail "expected one line in the relay's log for that connection"
	lines_since "$before" | grep -q "closed: refused: no certificate, and one is required" ||
		fail "the relay did not log why it closed the connection"
	# A proxy with a token is told (the certificate_required alert) and gives up at once.
	before=$(wc -l <"$tmp/relay.log")
	token_proxy "$token"
	proxy_gives_up
	((status == 1)) || fail "the proxy exited with status $status, expected 1"
	grep -q "TLS alert from the peer: certificate required" "$tmp/proxy.log" ||
		fail "the proxy did not log that the relay requires a certificate"
	conns=$(lines_since "$before" | grep -c "closed: refused: no certificate" || true)
	((conns == 1)) || fail "the proxy connected $conns times: it must give up at the first refusal"
	log "a proxy with a token gave up after 1 connection: $(grep 'certificate required' "$tmp/proxy.log")"
	# A health probe over TLS needs no certificate.
	[[ $(timeout 10 curl --http1.1 -k -s "https://127.0.0.1:$relay_port/healthz") == ok ]] ||
		fail "the TLS health probe (HTTP/1.1, no certificate) did not get ok"
	alive relay
	stop relay

	# With tokens: its first refusal ends the connection.
	relay_port=$(free_port)
	tls server
	start relay "$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --log-level info \
		--token "proxy=tok,token=$token"
	wait_log relay 'listening on' 15
	for path in /tunnel.v1.Relay/Connect /tunnel.v1.Relay/Register; do
		before=$(wc -l <"$tmp/relay.log")
		out=$(nocert --requests "$n" --wait 5 --path "$path")
		log "tokens, $n requests for $path on one connection: $out"
		[[ $out == "answered="[01]" "*" closed=yes "* ]] ||
			fail "the relay answered more than one request without a certificate, or kept the connection"
		sleep 0.5
		lines_since "$before" >&2
		(($(lines_since "$before" | wc -l) <= 3)) || fail "more than 3 lines in the relay's log for that connection"
	done
	# One that sends nothing but answers PINGs may not keep its session: it has 10 s to register.
	out=$(nocert --requests 0 --pong --wait 15)
	log "tokens, no request, PINGs answered: $out"
	[[ $out == *" closed=yes "* ]] || fail "the relay kept a session without a certificate that never registered"
	grep -q "closed: no certificate, and no registration by token within 10 s" "$tmp/relay.log" ||
		fail "the relay did not log why it closed the session that never registered"
	# Many connections, one refusal each: the warnings are rate-limited (10 a second of the
	# relay's clock, of which a burst within t of ours may touch t + 1).
	before=$(wc -l <"$tmp/relay.log")
	t0=$SECONDS
	nocert --requests 1 --wait 5 --connections 40 >/dev/null
	t=$((SECONDS - t0 + 1))
	refused=$(lines_since "$before" | grep -c 'refused: no certificate' || true)
	log "40 connections with one request each within $t s: $refused refusals logged"
	((refused <= 10 * (t + 1))) || fail "$refused refusals logged within $t s: not rate-limited"
	lines_since "$before" | grep 'refused: no certificate' | tail -n 1 | grep -q '(no certificate): refused' ||
		fail "a refusal without an id does not say 'no certificate'"
	# The bootstrap still works: a wrong token is told so, the right one registers.
	token_proxy wrong-token-0123456789
	proxy_gives_up
	((status == 1)) && grep -q "relay refused registration: the token is not valid" "$tmp/proxy.log" ||
		fail "the proxy with a wrong token was not told so (status $status)"
	token_proxy "$token"
	wait_log relay 'proxy tok registered' 15
	stop proxy
	alive relay
	stop relay
	;;
*)
	fail "unknown scenario '$scenario'; $usage"
	;;
esac
log "passed"
