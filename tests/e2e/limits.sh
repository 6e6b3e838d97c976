#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# limits.sh: the relay's per-identity flow limits refuse what is over them, say so in its log,
# and the client's other flows and later ones go on.  The limits change with SIGHUP.
#
#   apps ─▶ client ══▶ relay (--config relay.yaml) ══▶ proxy ─▶ lan (echo server 7000)
#   1. limits.flows_per_client: 3   3 connections held open; a 4th is refused (reset); once
#                                   one closes, a new one works; the 3 held still echo
#   2. limits.flow_rate: 5 (burst 5), SIGHUP: 30 connections as fast as they go: 5 to about
#                                   10 pass, the rest are refused; 2 s later, a new one works
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve echo 7000 serve-echo 7000
tn_certs
echo "limits: {flows_per_client: 3}" >"$TN_TMP/relay.yaml"
start_relay --config "$TN_TMP/relay.yaml"
start_proxy
wait_registered
start_client
wait_client_ready

tn_log "1. at most 3 flows of client-1 at once"
mark=$(wc -l <"$TN_TMP/relay.log")
n_cli timeout 40 "$TN_PYTHON" - "$TN_VIRT_IP" 7000 <<'PY' || fail "the flows-per-client check failed"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])

def echo(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(100)
        if not d:
            break
        got += d
    return got == msg

def conn():
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(5)
    return s

held = [conn() for _ in range(3)]
for i, s in enumerate(held):
    assert echo(s, b"held %d\n" % i), "held connection %d does not echo" % i
try:  # the client resets it as soon as the relay refuses: maybe during connect already
    extra = conn()
    ok = echo(extra, b"fourth\n")
    extra.close()
except OSError:
    ok = False
assert not ok, "a 4th flow was carried although flows_per_client is 3"
print("the 4th connection was refused", file=sys.stderr)
held.pop().close()
# The relay counts the flow until both its streams have ended: poll for the slot (5 s).
deadline = time.monotonic() + 5
while True:
    try:
        s = conn()
        if echo(s, b"after\n"):
            break
    except OSError:
        pass
    assert time.monotonic() < deadline, "a new flow is still refused 5 s after one of the 3 closed"
    time.sleep(0.2)
for i, h in enumerate(held):
    assert echo(h, b"still %d\n" % i), "held connection %d stopped echoing" % i
print("a new one works once one closed; the held ones still echo", file=sys.stderr)
PY
tail -n "+$((mark + 1))" "$TN_TMP/relay.log" |
	grep -E "client client-1: flow refused: 3 flows open, the most one client may have \(limits.flows_per_client\)" >&2 ||
	fail "the relay did not log the refusal"

tn_log "2. at most 5 new flows a second (burst 5), set by SIGHUP"
echo "limits: {flow_rate: 5, flow_burst: 5}" >"$TN_TMP/relay.yaml"
mark=$(wc -l <"$TN_TMP/relay.log")
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "reload: done" 5 || fail "the relay did not reload"
sleep 1.2 # a full bucket
t0=$(tn_now_ms)
tools_in "$TN_NS_CLI" 60 conns "$TN_VIRT_IP" 7000 --count 30 --timeout 3 >"$TN_TMP/conns.out" || true
ms=$(($(tn_now_ms) - t0))
ok=$(grep -c ' ok ' "$TN_TMP/conns.out" || true)
tn_log "$ok of 30 connections passed in $ms ms"
# The burst, plus what the rate refills while they run: 5 per second.
max=$((5 + 5 * (ms + 999) / 1000))
((ok >= 5)) || fail "only $ok connections passed: the burst of 5 should"
((ok <= max)) || fail "$ok connections passed in $ms ms, more than the burst and the rate allow ($max)"
tail -n "+$((mark + 1))" "$TN_TMP/relay.log" |
	grep -E "client client-1: flow refused: more than 5 new flows per second \(limits.flow_rate\)" >&2 ||
	fail "the relay did not log the rate refusals"
sleep 2
tools_in "$TN_NS_CLI" 20 conns "$TN_VIRT_IP" 7000 --count 1 --timeout 5 >/dev/null ||
	fail "a connection 2 s later is still refused"
tn_alive "$(tn_pid relay)" || fail "the relay died"
