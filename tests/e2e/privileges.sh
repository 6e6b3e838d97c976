#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# privileges.sh: the relay and the proxy run without root, and the client, once set up, keeps
# CAP_NET_ADMIN and CAP_NET_RAW only (bits 12 and 13: 0x3000) in every capability set, as root
# or as another user, and still removes its rules when it exits.  One started without CAP_NET_RAW
# (TCP only) says it keeps CAP_NET_ADMIN only, and warns that a legacy iptables would need it.
#
#   curl ─▶ client (root, then --user nobody) ══▶ relay (nobody) ══▶ proxy (nobody) ─▶ lan
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

WANT=0000000000003000
nobody_uid=$(id -u nobody)

# status_of PID FIELD: a field of /proc/PID/status.
status_of() { sed -nE "s/^$2:[[:space:]]+//p" "/proc/$1/status"; }

# check_client_caps PID UID: the client's capability sets are exactly the two, its real and
# effective uid UID.
check_client_caps() {
	local pid=$1 set v
	for set in CapEff CapPrm CapInh CapBnd CapAmb; do
		v=$(status_of "$pid" "$set")
		[ "$v" = "$WANT" ] || fail "client $set is $v, expected $WANT (CAP_NET_ADMIN, CAP_NET_RAW)"
	done
	[ "$(status_of "$pid" NoNewPrivs)" = 1 ] || fail "client: no_new_privs is not set"
	v=$(status_of "$pid" Uid | awk '{print $1, $2}')
	[ "$v" = "$2 $2" ] || fail "client: real and effective uid are '$v', expected $2"
	tn_log "client pid $pid: uid $2, CapEff=CapPrm=CapInh=CapBnd=CapAmb=$WANT, NoNewPrivs 1"
}

get() { n_cli timeout 10 curl -sS --max-time 5 "http://$TN_VIRT_IP:8080/"; }

lan_http 8080
tn_certs
# The relay and the proxy read their keys as nobody.
chown -R nobody:nogroup "$TN_CERTS"
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all --)

tn_spawn relay "$TN_NS_RELAY" "${AS_NOBODY[@]}" "$TN_BIN/server/server" --listen "0.0.0.0:$TN_RELAY_PORT" \
	--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "the relay (as nobody) does not listen"
tn_spawn proxy "$TN_NS_LAN" "${AS_NOBODY[@]}" "$TN_BIN/proxy/proxy" \
	--server "$TN_RELAY_LAN_IP:$TN_RELAY_PORT" --managed-cidr "$TN_LAN_NET" --virtual-cidr "$TN_VIRT_NET" \
	--tls-cert "$TN_CERTS/proxy/cert.pem" --tls-key "$TN_CERTS/proxy/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_registered
for name in relay proxy; do
	pid=$(tn_pid "$name")
	[ "$(status_of "$pid" Uid | awk '{print $2}')" = "$nobody_uid" ] || fail "$name does not run as nobody"
	[ "$(status_of "$pid" CapEff)" = 0000000000000000 ] || fail "$name has capabilities: $(status_of "$pid" CapEff)"
done
tn_log "relay and proxy run as nobody (uid $nobody_uid) with no capability"

for user in root nobody; do
	tn_log "client started by root, running as $user"
	args=()
	[ "$user" = root ] || args=(--user "$user")
	TN_CLIENT_NAME=client-$user start_client ${args[@]+"${args[@]}"}
	TN_CLIENT_NAME=client-$user wait_client_ready
	check_client_caps "$(tn_pid "client-$user")" "$(id -u "$user")"
	[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic through the client running as $user"
	[ -n "$(rules_of_client)" ] || fail "the client running as $user has no rules"
	rc=0
	tn_stop "client-$user" TERM 15 || rc=$?
	[ "$rc" = 0 ] || fail "the client running as $user exited $rc on SIGTERM"
	[ -z "$(rules_of_client)" ] || fail "the client running as $user left its rules: $(rules_of_client)"
	tn_log "as $user: traffic passed, and the rules were gone after SIGTERM"
done

tn_log "a client started without CAP_NET_RAW (TCP only) says what it keeps, and carries TCP"
tn_spawn client-noraw "$TN_NS_CLI" setpriv --bounding-set=-net_raw -- "$TN_BIN/client/client" \
	--server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" --cidr "$TN_INTERCEPT" --listen-port "$TN_CLIENT_PORT" --udp=false \
	--tls-cert "$TN_CERTS/client/cert.pem" --tls-key "$TN_CERTS/client/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
TN_CLIENT_NAME=client-noraw wait_client_ready
grep -q "privileges: running as uid 0 with CAP_NET_ADMIN only" "$TN_TMP/client-noraw.log" ||
	fail "the client without CAP_NET_RAW did not say what it kept: $(grep 'privileges:' "$TN_TMP/client-noraw.log")"
grep -q "warn: privileges: CAP_NET_RAW is missing: an iptables of the legacy backend" \
	"$TN_TMP/client-noraw.log" && ! grep -q "CAP_NET_ADMIN or CAP_NET_RAW is missing" "$TN_TMP/client-noraw.log" ||
	fail "the client without CAP_NET_RAW did not warn of what it may need: $(grep 'warn: privileges' "$TN_TMP/client-noraw.log")"
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic through the client without CAP_NET_RAW"
tn_stop client-noraw TERM 15 || fail "the client without CAP_NET_RAW did not stop cleanly"
[ -z "$(rules_of_client)" ] || fail "the client without CAP_NET_RAW left its rules: $(rules_of_client)"

tn_log "an unknown --user is refused before anything changes (exit 2, no rule, not even fail-closed)"
rc=0
n_cli timeout 20 "$TN_BIN/client/client" --server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" \
	--cidr "$TN_INTERCEPT" --fail-closed --user no-such-user-here \
	--tls-cert "$TN_CERTS/client/cert.pem" --tls-key "$TN_CERTS/client/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" >"$TN_TMP/client-nouser.log" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "no user 'no-such-user-here'" "$TN_TMP/client-nouser.log" ||
	fail "an unknown --user: status $rc: $(cat "$TN_TMP/client-nouser.log")"
[ -z "$(rules_of_client)" ] || fail "an unknown --user left rules: $(rules_of_client)"
