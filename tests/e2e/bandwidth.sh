#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bandwidth.sh: the relay's bandwidth limits (limits.bandwidth), set by SIGHUP on a running relay.
#
#   tn-cli-$$   client-1 ══╗                                    ╔══ serve-source 7003 (endless)
#                          ╠══ relay ══ proxy (tn-lan-$$) ══════╣
#   tn-cli2-$$  client-2 ══╝   public ports 10000 (web: 7003)   ╚══ serve-sink 7004
#                              and 10001 (drop: 7004)
#
# First without limits, then with {client: client-1, up: 20MB, down: 20MB}: two flows of
# client-1 each get 10 MB/s +-20% (down, then up) while client-2's flow beside them is not
# slowed (its rate against its own unlimited run); bytes under the limit arrive intact; a new
# rate given by SIGHUP reaches flows already open; {service: ...} rules limit public ports;
# {route: ...} and {proxy: ...} rules are shared by both clients, {client: "*"} is one bucket per
# client, and a flow under several rules waits for each; rules that cannot work are refused with
# a message.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

# ---- a second client namespace, its own link to the relay and the same sink route as tn-cli
TN_NS_CLI2="tn-cli2-$$"
CLI2_IP=10.201.4.1
RELAY_CLI2_IP=10.201.4.2
TN_NAMESPACES+=" $TN_NS_CLI2"
tn_ns_setup "$TN_NS_CLI2"
tn_veth "$TN_NS_CLI2" "tnd$$c" "$CLI2_IP" "$TN_NS_RELAY" "tnr$$d" "$RELAY_CLI2_IP"
ip link add "tnd$$a" netns "$TN_NS_CLI2" type veth peer name "tnd$$b" netns "$TN_NS_CLI2"
ip -n "$TN_NS_CLI2" link set "tnd$$a" arp off up
ip -n "$TN_NS_CLI2" link set "tnd$$b" arp off up
ip -n "$TN_NS_CLI2" route replace "$TN_INTERCEPT" dev "tnd$$a" metric 100

relay=$TN_RELAY_CLI_IP
MB=1000000
lan_serve source 7003 serve-source 7003 $((1 << 40)) 2
lan_serve sink 7004 serve-sink 7004
lan_serve sha 7002 serve-sha 7002
lan_serve block 7005 serve-source 7005 $((30 * MB)) 4
tn_certs
tn_issue client client-2

# ---- rules that cannot work are refused before anything starts
refused_config() {
	local why=$1 out rc=0
	shift
	out=$(n_relay timeout 10 "$TN_BIN/server/server" --listen 127.0.0.1:1 \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" "$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "the relay accepted $*"
	grep -Eq -- "$why" <<<"$out" || fail "$*: expected '$why', got: $out"
	tn_log "refused: $* ($(grep -E -- "$why" <<<"$out" | head -1))"
}
refused_config "rule 1 names none of client, proxy, service, route" --bandwidth up=1MB
refused_config "rule 1 \(client=a\) sets neither up nor down" --bandwidth client=a
refused_config "'1KiB' is too small \(at least 16KiB\)" --bandwidth client=a,up=1MB,burst=1KiB
refused_config "'fast' is not" --bandwidth client=a,up=fast
refused_config "rules 1 and 2 are both for client=a" --bandwidth client=a,up=1MB \
	--bandwidth client=a,down=2MB

cat >"$TN_TMP/relay.yaml" <<'EOF'
public_ports: "10000-10010"
EOF
start_relay --config "$TN_TMP/relay.yaml"
start_proxy --expose name=web,target=127.0.0.1:7003,public_port=10000 \
	--expose name=drop,target=127.0.0.1:7004,public_port=10001
wait_registered
wait_for_log "$TN_TMP/proxy.log" "published drop: tcp://" 10 || fail "the proxy did not publish"
start_client
wait_client_ready
TN_NS_CLI=$TN_NS_CLI2 TN_RELAY_CLI_IP=$RELAY_CLI2_IP TN_CLIENT_NAME=client-2 \
	TN_CLIENT_CERTS="$TN_CERTS/client-client-2" start_client --server-name "$TN_RELAY_CLI_IP"
TN_NS_CLI=$TN_NS_CLI2 TN_CLIENT_NAME=client-2 wait_client_ready

# reload YAML: the relay reads $TN_TMP/relay.yaml (with YAML appended) again on SIGHUP.
reload() {
	local mark
	printf 'public_ports: "10000-10010"\n%s\n' "$1" >"$TN_TMP/relay.yaml"
	mark=$(count_lines "$TN_TMP/relay.log" "reload: done")
	kill -HUP "$(tn_pid relay)"
	wait_count "$TN_TMP/relay.log" "reload: done" $((mark + 1)) 5 || fail "the relay did not reload"
}

# measure KIND START SECONDS: two flows of client-1 and one of client-2, all at once, KIND
# (down: from the endless source, up: to the sink); sets A1 A2 (client-1) and B (client-2) in
# bytes/s.
measure() {
	local kind=$1 port=7003 pa pb
	[ "$kind" = up ] && port=7004
	tools_in "$TN_NS_CLI" 60 rate-flows "$TN_VIRT_IP" --flow "$kind:$port" --flow "$kind:$port" \
		--start "$2" --seconds "$3" >"$TN_TMP/a.out" &
	pa=$!
	tools_in "$TN_NS_CLI2" 60 rate-flows "$TN_VIRT_IP" --flow "$kind:$port" \
		--start "$2" --seconds "$3" >"$TN_TMP/b.out" &
	pb=$!
	wait "$pa" || fail "client-1's $kind flows failed"
	wait "$pb" || fail "client-2's $kind flow failed"
	read -r A1 A2 < <(awk '{ printf "%s ", $3 } END { print "" }' "$TN_TMP/a.out")
	B=$(awk '{ print $3 }' "$TN_TMP/b.out")
	[ -n "$A1" ] && [ -n "$A2" ] && [ -n "$B" ] || fail "rate-flows printed no rates"
	tn_log "$kind: client-1 $(mbs "$A1") + $(mbs "$A2") MB/s, client-2 $(mbs "$B") MB/s"
}

mbs() { awk -v r="$1" 'BEGIN { printf "%.1f", r / 1e6 }'; }

# within RATE WANT PCT: RATE is WANT +-PCT%.
within() { awk -v r="$1" -v w="$2" -v p="$3" 'BEGIN { exit !(r >= w * (1 - p / 100) && r <= w * (1 + p / 100)) }'; }
# at_least RATE WANT: RATE >= WANT.
at_least() { awk -v r="$1" -v w="$2" 'BEGIN { exit !(r >= w) }'; }

# ---- without limits: what the machine does, the reference for the ratios below
for kind in down up; do
	measure "$kind" 1 4
	# Well above the 12 MB/s that the limit allows a flow (sanitizer builds reach about 20)
	at_least "$A1" $((15 * MB)) && at_least "$A2" $((15 * MB)) ||
		fail "unlimited $kind flows ran at $(mbs "$A1") and $(mbs "$A2") MB/s: too slow to tell a 10 MB/s limit"
	declare "U1_$kind=$(awk -v a="$A1" -v b="$A2" 'BEGIN { print (a + b) / 2 }')" "U2_$kind=$B"
done

# ---- client-1 under 20 MB/s each way: two flows get half each, client-2 is not slowed
reload 'limits:
  bandwidth:
    - {client: client-1, up: 20MB, down: 20MB}
    - {service: web, down: 8MB}
    - {service: drop, up: 8MB, burst: 256KiB}'
for kind in down up; do
	measure "$kind" 1 5
	within "$A1" $((10 * MB)) 20 && within "$A2" $((10 * MB)) 20 ||
		fail "$kind: client-1's flows ran at $(mbs "$A1") and $(mbs "$A2") MB/s, not 10 +-20%"
	u1=U1_$kind u2=U2_$kind
	# client-2 ran beside two unlimited flows before; now beside two slow ones: at least as fast
	# give or take the noise of a shared machine, and far above the limit.
	at_least "$B" "$(awk -v u="${!u2}" 'BEGIN { print u * 0.6 }')" && at_least "$B" $((25 * MB)) ||
		fail "$kind: client-2 slowed to $(mbs "$B") MB/s (unlimited: $(mbs "${!u2}") MB/s)"
	tn_log "$kind: client-1 per flow $(mbs "${!u1}") -> $(mbs "$A1")/$(mbs "$A2") MB/s; client-2 $(mbs "${!u2}") -> $(mbs "$B") MB/s"
done

# ---- bytes under the limit arrive whole and in order
want=$(tmo 30 "$TN_PYTHON" "$TN_TOOLS" stream-sha $((30 * MB)) 4)
out=$(tools_in "$TN_NS_CLI" 30 recv-sha "$TN_VIRT_IP" 7005 --timeout 20) || fail "limited download failed"
read -r sha n secs _ <<<"$out"
[ "$n" = $((30 * MB)) ] && [ "$sha" = "$want" ] || fail "limited download: $n bytes sha256 $sha, expected $want"
at_least "$secs" 1.2 || fail "30 MB came in $secs s under a 20 MB/s limit"
out=$(tools_in "$TN_NS_CLI" 30 send-sha "$TN_VIRT_IP" 7002 $((30 * MB)) 5 --timeout 20) ||
	fail "limited upload: the server did not get the same bytes"
read -r sha n secs _ <<<"$out"
at_least "$secs" 1.2 || fail "30 MB went in $secs s under a 20 MB/s limit"
tn_log "30 MB each way under the limit, intact (upload $secs s)"

# ---- public ports under service rules, both directions at once
tools_in "$TN_NS_CLI" 60 rate-flows "$relay" --flow down:10000 --flow up:10001 --start 1 \
	--seconds 4 >"$TN_TMP/x.out" || fail "public port flows failed"
read -r down up < <(awk '{ printf "%s ", $3 } END { print "" }' "$TN_TMP/x.out")
tn_log "public ports: web down $(mbs "$down") MB/s, drop up $(mbs "$up") MB/s (8 MB/s limits)"
within "$down" $((8 * MB)) 20 || fail "public port web: down at $(mbs "$down") MB/s, not 8 +-20%"
within "$up" $((8 * MB)) 20 || fail "public port drop: up at $(mbs "$up") MB/s, not 8 +-20%"

# ---- route, proxy and wildcard rules across identities; a flow under several rules waits for
# each: down, client-1 is held to 4 by its own rule and client-2 gets the rest of the route's 12;
# up, two flows of client-1 and one of client-2 share proxy-1's 6 round robin (2 each), which
# also keeps client-1 within its own 4 ("*": a bucket per client, not one for all)
reload 'limits:
  bandwidth:
    - {client: client-1, down: 4MB}
    - {route: 100.64.2.0/24, down: 12MB}
    - {client: "*", up: 4MB}
    - {proxy: proxy-1, up: 6MB}'
tools_in "$TN_NS_CLI" 60 rate-flows "$TN_VIRT_IP" --flow down:7003 --flow up:7004 --flow up:7004 \
	--start 1 --seconds 5 >"$TN_TMP/a.out" &
pa=$!
tools_in "$TN_NS_CLI2" 60 rate-flows "$TN_VIRT_IP" --flow down:7003 --flow up:7004 \
	--start 1 --seconds 5 >"$TN_TMP/b.out" &
pb=$!
wait "$pa" || fail "client-1's flows failed"
wait "$pb" || fail "client-2's flows failed"
read -r d1 u1 u1b < <(awk '{ printf "%s ", $3 } END { print "" }' "$TN_TMP/a.out")
read -r d2 u2 < <(awk '{ printf "%s ", $3 } END { print "" }' "$TN_TMP/b.out")
tn_log "down: client-1 $(mbs "$d1"), client-2 $(mbs "$d2") MB/s;" \
	"up: client-1 $(mbs "$u1") + $(mbs "$u1b"), client-2 $(mbs "$u2") MB/s"
within "$d1" $((4 * MB)) 20 || fail "client-1 under 4 and 12 MB/s rules: $(mbs "$d1") MB/s, not 4"
within "$d2" $((8 * MB)) 20 || fail "client-2 beside it under the 12 MB/s route: $(mbs "$d2") MB/s, not 8"
within "$u1" $((2 * MB)) 20 && within "$u1b" $((2 * MB)) 20 && within "$u2" $((2 * MB)) 20 ||
	fail "three flows sharing proxy-1's 6 MB/s up: $(mbs "$u1"), $(mbs "$u1b") and $(mbs "$u2") MB/s, not 2 each"

# ---- a new rate reaches flows already open
tools_in "$TN_NS_CLI" 60 rate-flows "$TN_VIRT_IP" --flow down:7003 --flow down:7003 --start 3 \
	--seconds 4 >"$TN_TMP/a.out" &
pa=$!
sleep 1.5
reload 'limits:
  bandwidth:
    - {client: client-1, up: 20MB, down: 10MB}'
for _ in 1 2 3; do
	status=$(relay_status)
	grep -Eq "bandwidth client=client-1 down: 10000000 B/s, 2 flows" <<<"$status" && break
done
grep -Eq "bandwidth client=client-1 down: 10000000 B/s, 2 flows" <<<"$status" ||
	fail "the relay's status shows no 10 MB/s bucket for the 2 open flows: $status"
wait "$pa" || fail "client-1's flows failed across the reload"
read -r A1 A2 < <(awk '{ printf "%s ", $3 } END { print "" }' "$TN_TMP/a.out")
tn_log "after the reload to 10 MB/s: client-1 $(mbs "$A1") + $(mbs "$A2") MB/s"
within "$A1" $((5 * MB)) 20 && within "$A2" $((5 * MB)) 20 ||
	fail "open flows ran at $(mbs "$A1") and $(mbs "$A2") MB/s after the reload, not 5 +-20%"
