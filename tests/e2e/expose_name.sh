#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expose_name.sh: a proxy's published service may name its target (a docker-compose service, a
# host of /etc/hosts).  The name is looked up for each public connection, off the loop: the
# service follows the name to its new address without a reload, and a name that does not resolve
# refuses its connections with the reason, but does not keep the proxy from starting.
#
#   user ──▶ relay:10040 ══▶ proxy (--expose name=web,target=web.lan:8080) ──▶ web.lan:8080
#   web.lan is 10.201.2.2 in the LAN's /etc/hosts, then 127.0.0.1 (another web server)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

relay=$TN_RELAY_CLI_IP
etc="/etc/netns/$TN_NS_LAN" # ip netns exec mounts its files over /etc; removed with the namespace
mkdir -p "$etc"
printf '127.0.0.1 localhost\n%s web.lan\n' "$TN_LAN_IP" >"$etc/hosts"
# Names not in hosts go to a resolver that answers nothing at once (no server on 127.0.0.1).
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$etc/resolv.conf"
for side in lan:$TN_LAN_IP loop:127.0.0.1; do
	mkdir -p "$TN_TMP/www-${side%%:*}"
	echo "web on ${side%%:*}" >"$TN_TMP/www-${side%%:*}/index.html"
	tn_spawn "web-${side%%:*}" "$TN_NS_LAN" "$TN_PYTHON" -m http.server --bind "${side#*:}" \
		--directory "$TN_TMP/www-${side%%:*}" 8080
done
for ((i = 0; i < 100; i++)); do
	[ "$(ss -N "$TN_NS_LAN" -tlnH 'sport = :8080' | wc -l)" = 2 ] && break
	sleep 0.1
done
tn_certs
start_relay --public-ports 10040-10045
start_proxy --expose name=web,target=web.lan:8080,public_port=10040 \
	--expose name=ghost,target=ghost.lan:8080,public_port=10041 \
	--expose name=lo,target=:8080,public_port=10042
wait_registered
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "published ghost: tcp://" 10 ||
	fail "the proxy did not publish its services"
get() { n_cli timeout 10 curl -sS --max-time 5 "http://$relay:$1/"; }

[ "$(get 10040)" = "web on lan" ] || fail "the service named web.lan did not answer from $TN_LAN_IP"
[ "$(get 10042)" = "web on loop" ] || fail "the service with target :8080 (loopback) did not answer"
tn_log "web.lan moves to 127.0.0.1 (no reload)"
printf '127.0.0.1 localhost\n127.0.0.1 web.lan\n' >"$etc/hosts" # the same file: the mount sees it
[ "$(get 10040)" = "web on loop" ] || fail "the service did not follow its name to the new address"

tn_log "a name that does not resolve: its connection is refused, with the reason"
! get 10041 >/dev/null 2>&1 || fail "a connection to a service whose target does not resolve succeeded"
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "ghost.lan:8080 .*the target's name" 5 ||
	fail "the proxy did not log why: $(grep ghost "$TN_TMP/$TN_PROXY_NAME.log")"
[ "$(get 10040)" = "web on loop" ] || fail "the other service stopped answering"
tn_stop "$TN_PROXY_NAME" TERM 10 || fail "the proxy did not stop cleanly"
grep -q 'exit.summary .*errors="unreachable=1"' "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the refused connection is not counted as unreachable: $(grep exit.summary "$TN_TMP/$TN_PROXY_NAME.log")"
tn_log "ok: $(grep -m1 "ghost.lan:8080 .*the target's name" "$TN_TMP/$TN_PROXY_NAME.log" | cut -d' ' -f3-)"
