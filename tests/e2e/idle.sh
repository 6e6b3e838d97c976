#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# idle.sh: a flow that moves no byte for --idle-timeout is closed (reset) by the client and the
# proxy; one that keeps talking, slowly, is not.  The two timeouts differ, so that each check
# knows which side closes: with equal ones, either could fire first.
#
#   python ─▶ client (--idle-timeout 1s, then 30s) ══▶ relay ══▶ proxy (--idle-timeout 2s) ─▶ echo
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve echo 7001 serve-echo 7001
tn_certs
start_relay
start_proxy --idle-timeout 2s
wait_registered
start_client --idle-timeout 1s
wait_client_ready

# talk PAUSE ROUNDS: one echo round trip every PAUSE s; prints "ok" or where it broke.
talk() {
	n_cli timeout 20 python3 - "$TN_VIRT_IP" 7001 "$1" "$2" <<'PY'
import socket, sys, time
host, port, pause, rounds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=5)
for i in range(rounds):
    time.sleep(pause)
    try:
        s.sendall(b"ping")
        if s.recv(4) != b"ping":
            print("closed after %.1f s" % ((i + 1) * pause)); sys.exit(0)
    except OSError as e:
        print("broken after %.1f s: %s" % ((i + 1) * pause, e)); sys.exit(0)
print("ok")
PY
}

tn_log "a flow that talks every 0.4 s for 4 s stays open"
talk 0.4 10 >"$TN_TMP/talk.out" &
talker=$!
# Meanwhile both ends of it have TCP keepalive: the client's socket inherits it from the
# listener, the proxy sets it on the socket it dials.
sleep 1
cli_ka=$(n_cli ss -tnoH state established "( sport = :$TN_CLIENT_PORT )")
lan_ka=$(n_lan ss -tnoH state established "( dport = :7001 )")
wait "$talker" || true
r=$(cat "$TN_TMP/talk.out")
[ "$r" = ok ] || fail "an active flow was closed: $r"
[[ $cli_ka == *keepalive* ]] || fail "the client's socket of the flow has no keepalive: $cli_ka"
[[ $lan_ka == *keepalive* ]] || fail "the proxy's socket of the flow has no keepalive: $lan_ka"

tn_log "a flow silent for 1.5 s is closed by the client"
r=$(talk 1.5 2)
case $r in closed* | broken*) tn_log "as it should: $r" ;; *) fail "an idle flow stayed open: $r" ;; esac
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "idle timeout" 5 || fail "the client did not log the idle timeout"

tn_log "a flow silent for 3 s is closed by the proxy"
tn_stop "$TN_CLIENT_NAME" TERM 10 || fail "the client did not exit 0"
TN_CLIENT_NAME=client-2 start_client --idle-timeout 30s
TN_CLIENT_NAME=client-2 wait_client_ready
[ "$(count_lines "$TN_TMP/$TN_PROXY_NAME.log" "idle timeout")" = 0 ] ||
	fail "the proxy closed the first silent flow: the client should have, 1 s earlier"
r=$(talk 3 2)
case $r in closed* | broken*) tn_log "as it should: $r" ;; *) fail "an idle flow stayed open: $r" ;; esac
wait_for_log "$TN_TMP/$TN_PROXY_NAME.log" "idle timeout" 5 || fail "the proxy did not log the idle timeout"
