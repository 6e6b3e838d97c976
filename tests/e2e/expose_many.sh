#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expose_many.sh: 50 services of one proxy published at once on auto-assigned ports, each
# reached by a user at the same time and answering from the right service; a replica (the same
# proxy id) publishing one of them shares its connections; the relay's file descriptors come
# back to their count before the users, and before the proxies once they left.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

count=50
relay=$TN_RELAY_CLI_IP
n_lan ip link set lo up
tn_spawn echoes "$TN_NS_LAN" "$TN_PYTHON" "$TN_TOOLS" serve-echo-ports 7100 $((count + 1))
wait_port "$TN_NS_LAN" $((7100 + count)) 10 || fail "the services do not listen"
tn_certs

fds() { find "/proc/$(tn_pid relay)/fd" -mindepth 1 -maxdepth 1 | wc -l; }

start_relay --public-ports 10000-10100 --public-grace 0
sleep 0.5
fds_idle=$(fds)
args=()
for ((i = 0; i < count; i++)); do
	args+=(--expose "name=s$i,target=127.0.0.1:$((7100 + i))")
done
TN_PROXY_MANAGED="" start_proxy "${args[@]}"
wait_count "$TN_TMP/proxy.log" "published s[0-9]+: tcp://" "$count" 15 || fail "not every service was published"
ports=() want=()
while read -r public target; do
	ports+=("$public")
	want+=("$target")
done < <(sed -nE 's/.*published s[0-9]+: tcp:\/\/[^:]+:([0-9]+) -> 127\.0\.0\.1:([0-9]+)$/\1 \2/p' "$TN_TMP/proxy.log")
[ "${#ports[@]}" = "$count" ] || fail "${#ports[@]} published ports in the proxy's log, expected $count"
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = "$count" ] || fail "two services got the same port"
sleep 0.5
fds_published=$(fds)
tn_log "relay descriptors: $fds_idle idle, $fds_published with $count public ports"
[ "$fds_published" -ge $((fds_idle + count)) ] || fail "the relay does not hold a listener per port"

want_csv=$(IFS=,; echo "${want[*]}")
out=$(tools_in "$TN_NS_CLI" 60 echo-ports "$relay" "${ports[@]}" --want "$want_csv" --timeout 20) ||
	fail "not every public port answered from its own service: $out"
tn_log "$out"
for ((i = 0; i < 50; i++)); do
	[ "$(fds)" = "$fds_published" ] && break
	sleep 0.1
done
[ "$(fds)" = "$fds_published" ] || fail "the relay holds $(fds) descriptors after the users left, $fds_published before"

tn_log "a replica of the same id serves s0 from another target: connections spread over both"
TN_PROXY_MANAGED="" TN_PROXY_NAME=replica start_proxy --expose "name=s0,target=127.0.0.1:$((7100 + count))"
wait_for_log "$TN_TMP/replica.log" "published s0: tcp://[^:]+:${ports[0]} " 10 ||
	fail "the replica did not join port ${ports[0]}"
many=()
for ((i = 0; i < 40; i++)); do many+=("${ports[0]}"); done
out=$(tools_in "$TN_NS_CLI" 60 echo-ports "$relay" "${many[@]}" --tally --timeout 20) ||
	fail "connections to the shared port failed: $out"
tn_log "shared port ${ports[0]}: $(echo "$out" | tail -1)"
echo "$out" | tail -1 | grep -Eq "^${want[0]}=([1-9]|[1-3][0-9]) $((7100 + count))=([1-9]|[1-3][0-9])$" ||
	fail "the two replicas did not both serve the shared port: $out"
tn_stop replica

tn_stop proxy
for ((i = 0; i < 50; i++)); do
	[ "$(fds)" = "$fds_idle" ] && break
	sleep 0.1
done
[ "$(fds)" = "$fds_idle" ] || fail "the relay holds $(fds) descriptors after the proxy left, $fds_idle before it came"
out=$(tools_in "$TN_NS_CLI" 10 probe "$relay" "${ports[0]}" --expect refused) ||
	fail "port ${ports[0]} still accepts after its proxy left: $out"
tn_log "ok: descriptors back to $fds_idle, ports closed"
