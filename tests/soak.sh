#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh: a long run of mixed traffic through the tunnel while the relay is restarted again
# and again; every transfer that completes must be whole, and the client and the proxy must
# neither die nor grow.  Not part of the CTest suite: it takes minutes.
#
#   sudo TN_BUILD_DIR=build tests/soak.sh [--duration S] [options]   (--help lists them)
#
#   curl, soak-xfer ─▶ client ══▶ relay (SIGTERM / kill -9, started again) ◀══ proxy ─▶ LAN
#   tn-cli-$$                     tn-relay-$$                                  tn-lan-$$
#
# Traffic, all inside the three namespaces of tests/e2e/lib.sh:
#   - short connections: HTTP GETs of small files (python http.server), several a second,
#     each checked against the file's sha256;
#   - long ones: a few workers, each running one transfer after another of 1-50 MiB (random
#     size, direction and seed) to `tools.py serve-soak`, paced at --rate: uploads are hashed
#     by the LAN server and checked against the stream, downloads against its known hash.
# Every --restart-every seconds the relay is stopped, alternately by SIGTERM (it drains for
# --drain-timeout) and by kill -9, and started again --down seconds after it has exited; the
# client and the proxy reconnect by themselves.  RSS and open descriptors of the client, the
# proxy and the relay are sampled at the start (after a warm-up, no traffic), every
# --sample-every seconds, and at the end (traffic stopped, --settle seconds later).
#
# A failed transfer is put down to the restart whose window it overlaps (from the signal until
# the client and the proxy are back, plus a second): in flight when a kill -9 came ("cut"), in
# flight when a SIGTERM came ("drain"), or started while the relay was away ("outage");
# a failure outside every window is "unexplained".
#
# Exit status: 0 pass; 1 a completed transfer with wrong bytes (either end), the client or
# the proxy died or was restarted, or ended with more than 10 descriptors or 16 MiB of RSS
# over its baseline, a relay that would not stop or peers that did not come back, or a program
# that exited non-zero on the final SIGTERM; 2 bad usage; 77 not root or a program not built.
set -uo pipefail

SOAK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TN_BUILD_DIR:=$SOAK_DIR/../build}"
export TN_BUILD_DIR

DURATION=300      # seconds of traffic
RESTART_EVERY=60  # seconds between relay restarts (0: never)
DOWN=3            # seconds the relay stays away after it has exited
DRAIN=5           # the relay's --drain-timeout, seconds
WORKERS=3         # long transfers at a time
RATE_MIB=16       # MiB/s of each long transfer (50 MiB: about 3 s, under the drain timeout)
MIN_MIB=1         # sizes of the long transfers
MAX_MIB=50
GETS_PER_SEC=4    # short connections
SAMPLE_EVERY=10   # seconds between RSS/fd samples
SETTLE=10         # seconds between the end of the traffic and the last sample
LOG_LEVEL=debug
FD_SLACK=10
RSS_SLACK_KB=16384
XFER_TIMEOUT=60   # seconds one long transfer may take at most
BACK_TIMEOUT=30   # seconds for the client and the proxy to come back after a restart

usage() {
	cat <<-EOF
		usage: sudo [TN_BUILD_DIR=build] tests/soak.sh [options]
		  --duration S        seconds of traffic (default $DURATION)
		  --restart-every S   restart the relay every S seconds, 0: never (default $RESTART_EVERY)
		  --down S            seconds the relay stays away after it exited (default $DOWN)
		  --drain-timeout S   the relay's --drain-timeout in seconds (default $DRAIN)
		  --workers N         long transfers at a time (default $WORKERS)
		  --rate MIB          MiB/s of each long transfer (default $RATE_MIB)
		  --gets-per-sec N    short HTTP GETs per second (default $GETS_PER_SEC)
		  --sample-every S    seconds between RSS/fd samples (default $SAMPLE_EVERY)
		  --settle S          seconds after the traffic before the last sample (default $SETTLE)
		  --log-level L       log level of the programs (default $LOG_LEVEL)
		  --keep              keep the run directory (logs, records) after the run
		The programs come from \$TN_BUILD_DIR (default: build/ at the top of the checkout).
	EOF
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--keep) export TN_KEEP_TMP=1; shift; continue ;;
	--duration | --restart-every | --down | --drain-timeout | --workers | --rate | --gets-per-sec | \
		--sample-every | --settle | --log-level)
		[ $# -ge 2 ] || { echo "soak.sh: $1 needs a value" >&2; exit 2; }
		if [ "$1" != --log-level ] && ! is_uint "$2"; then
			echo "soak.sh: $1 wants a whole number, not '$2'" >&2
			exit 2
		fi
		case $1 in
		--duration) DURATION=$2 ;;
		--restart-every) RESTART_EVERY=$2 ;;
		--down) DOWN=$2 ;;
		--drain-timeout) DRAIN=$2 ;;
		--workers) WORKERS=$2 ;;
		--rate) RATE_MIB=$2 ;;
		--gets-per-sec) GETS_PER_SEC=$2 ;;
		--sample-every) SAMPLE_EVERY=$2 ;;
		--settle) SETTLE=$2 ;;
		--log-level) LOG_LEVEL=$2 ;;
		esac
		shift 2
		;;
	*) echo "soak.sh: unknown argument '$1' (--help lists the options)" >&2; exit 2 ;;
	esac
done
[ "$DURATION" -ge 10 ] || { echo "soak.sh: --duration must be at least 10" >&2; exit 2; }
if [ "$WORKERS" -lt 1 ] || [ "$WORKERS" -gt 16 ]; then echo "soak.sh: --workers 1..16" >&2; exit 2; fi
if [ "$GETS_PER_SEC" -lt 1 ] || [ "$GETS_PER_SEC" -gt 50 ]; then
	echo "soak.sh: --gets-per-sec 1..50" >&2
	exit 2
fi
[ "$SAMPLE_EVERY" -ge 1 ] || { echo "soak.sh: --sample-every must be at least 1" >&2; exit 2; }
[ "$RATE_MIB" -ge 1 ] || { echo "soak.sh: --rate must be at least 1" >&2; exit 2; }

TN_NAME=soak
# shellcheck source-path=SCRIPTDIR source=e2e/lib.sh
. "$SOAK_DIR/e2e/lib.sh"
tn_init
trap - ERR # failures are expected here (transfers cut by a restart) and counted, not traced

HTTP_PORT=8080
SOAK_PORT=9100
NSMALL=16
EVENTS="$TN_TMP/events.txt"   # "<ms> <event> [args]"
SAMPLES="$TN_TMP/samples.txt" # "<ms> <label> <proc> <pid> <rss kB|dead> <fds>"
PROBLEMS="$TN_TMP/problems.txt"
STOP="$TN_TMP/stop"
: >"$EVENTS"
: >"$SAMPLES"
: >"$PROBLEMS"

ev() { echo "$(tn_now_ms) $*" >>"$EVENTS"; }
problem() {
	tn_log "PROBLEM: $*"
	echo "$*" >>"$PROBLEMS"
}
sleep_ms() { [ "$1" -gt 0 ] && sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
rand30() { echo $(((RANDOM << 15) | RANDOM)); }

# ------------------------------------------------------------------------------ processes

RELAY_N=0
RELAY_PID=""

# relay_up: the next incarnation of the relay, relay-N, listening.
relay_up() {
	RELAY_N=$((RELAY_N + 1))
	tn_spawn "relay-$RELAY_N" "$TN_NS_RELAY" "$TN_BIN/server/server" \
		--listen "0.0.0.0:$TN_RELAY_PORT" \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level "$LOG_LEVEL" --drain-timeout "${DRAIN}s"
	TN_PROGS+=("$TN_LAST_PID")
	RELAY_PID=$TN_LAST_PID
	ev relay_start "$RELAY_N" "$RELAY_PID"
	wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "relay-$RELAY_N does not listen"
}

# starttime PID: the process's start time (clock ticks since boot), to tell a restart.
starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# sample LABEL PROC PID: one line of RSS and descriptors to $SAMPLES.
sample() {
	local rss fds
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$3/status" 2>/dev/null)
	fds=$(find "/proc/$3/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	tn_alive "$3" || rss=""
	echo "$(tn_now_ms) $1 $2 $3 ${rss:-dead} $fds" >>"$SAMPLES"
}
sample_all() {
	sample "$1" client "$CLIENT_PID"
	sample "$1" proxy "$PROXY_PID"
	sample "$1" "relay-$RELAY_N" "$RELAY_PID"
}

peers_alive() {
	local ok=0
	if ! tn_alive "$CLIENT_PID" || [ "$(starttime "$CLIENT_PID")" != "$CLIENT_START" ]; then
		problem "the client (pid $CLIENT_PID) is gone"
		ok=1
	fi
	if ! tn_alive "$PROXY_PID" || [ "$(starttime "$PROXY_PID")" != "$PROXY_START" ]; then
		problem "the proxy (pid $PROXY_PID) is gone"
		ok=1
	fi
	return $ok
}

# restart_relay TERM|KILL: stop the current relay that way, wait for it to exit, start the
# next one --down seconds later and wait until the proxy has registered and the client is back.
RESTARTS=0
restart_relay() {
	local sig=$1 n=$RELAY_N rc=0 back=$((RESTARTS + 1)) t0 left
	tn_log "restart $back: $sig to relay-$n (pid $RELAY_PID)"
	ev signal "$n" "$sig"
	if [ "$sig" = TERM ]; then
		tn_stop "relay-$n" TERM $((DRAIN + 10)) || rc=$?
		if [ "$rc" = 124 ]; then
			problem "relay-$n still runs $((DRAIN + 10)) s after SIGTERM (drain timeout ${DRAIN}s): killed"
			tn_stop "relay-$n" KILL 5 || true
		elif [ "$rc" != 0 ]; then
			problem "relay-$n exited with status $rc on SIGTERM"
		fi
	else
		tn_stop "relay-$n" KILL 5 || rc=$?
	fi
	ev relay_exit "$n" "$rc"
	RESTARTS=$back
	sleep "$DOWN"
	relay_up
	t0=$(tn_now_ms)
	if wait_for_log "$TN_TMP/relay-$RELAY_N.log" "proxy $TN_PROXY_ID registered" "$BACK_TIMEOUT" "$RELAY_PID"; then
		ev proxy_reg "$RELAY_N"
	else
		problem "the proxy did not register with relay-$RELAY_N within $BACK_TIMEOUT s"
	fi
	left=$((BACK_TIMEOUT - ($(tn_now_ms) - t0) / 1000))
	if wait_count "$TN_TMP/client.log" "is back: intercepting again" "$back" $((left > 1 ? left : 1)); then
		ev client_back "$RELAY_N"
	else
		problem "the client was not back with relay-$RELAY_N within $BACK_TIMEOUT s"
	fi
	sample start "relay-$RELAY_N" "$RELAY_PID"
}

# ------------------------------------------------------------------------------ traffic

# get_loop: short GETs of the small files at GETS_PER_SEC until END_MS; records to gets.txt as
# "get FILE SIZE T0 T1 RC ok|corrupt|error BYTES".
get_loop() {
	local i=0 k t0 t1 rc got sha outcome next now period=$((1000 / GETS_PER_SEC))
	local out="$TN_TMP/get.out" rec="$TN_TMP/gets.txt" max=$((DURATION * GETS_PER_SEC + 10))
	RANDOM=$((BASHPID ^ $(tn_now_ms)))
	next=$(tn_now_ms)
	while ((i < max)); do
		[ -e "$STOP" ] && break
		t0=$(tn_now_ms)
		((t0 < END_MS)) || break
		i=$((i + 1))
		k=$((RANDOM % NSMALL))
		rm -f "$out"
		n_cli timeout 10 curl -sS --max-time 8 -o "$out" "http://$TN_VIRT_IP:$HTTP_PORT/s$k.bin" \
			2>>"$TN_TMP/get.err"
		rc=$?
		t1=$(tn_now_ms)
		got=$(stat -c %s "$out" 2>/dev/null || echo 0)
		outcome=error
		if [ "$rc" = 0 ]; then
			sha=$(sha256sum <"$out" | cut -d' ' -f1)
			outcome=corrupt
			[ "$sha" = "${SMALL_SHA[k]}" ] && [ "$got" = "${SMALL_SIZE[k]}" ] && outcome=ok
		fi
		echo "get s$k.bin ${SMALL_SIZE[k]} $t0 $t1 $rc $outcome $got" >>"$rec"
		next=$((next + period))
		now=$(tn_now_ms)
		if ((next > now)); then sleep_ms $((next - now)); else next=$now; fi
	done
}

# xfer_worker W: long transfers one after another until END_MS; records to xfer-W.txt as
# "up|down ID SIZE T0 T1 RC OUTCOME BYTES START SECS DETAIL" (T0, T1: around the tool;
# START: its connect(), the moment that counts for the report).
xfer_worker() {
	local w=$1 i=0 kind size seed id t0 t1 rc line span
	local rec="$TN_TMP/xfer-$w.txt" max=$((DURATION * 10 + 10)) rate=$((RATE_MIB << 20))
	span=$(((MAX_MIB - MIN_MIB) * 1048576 + 1))
	RANDOM=$((BASHPID ^ $(tn_now_ms) ^ (w * 7919)))
	while ((i < max)); do
		[ -e "$STOP" ] && break
		t0=$(tn_now_ms)
		((t0 < END_MS)) || break
		i=$((i + 1))
		kind=up
		((RANDOM % 2)) && kind=down
		size=$((MIN_MIB * 1048576 + $(rand30) % span))
		seed=$((w * 1000000 + i))
		id="w$w-$i"
		line=$(tools_in "$TN_NS_CLI" "$XFER_TIMEOUT" soak-xfer "$TN_VIRT_IP" "$SOAK_PORT" \
			"$kind" "$size" "$seed" --id "$id" --rate "$rate" --timeout 20 2>>"$TN_TMP/xfer-$w.err")
		rc=$?
		t1=$(tn_now_ms)
		[ -n "$line" ] || line="error 0 0 0 no-output(status-$rc)"
		echo "$kind $id $size $t0 $t1 $rc $line" >>"$rec"
		[ "$rc" = 0 ] || sleep 0.5 # no tight loop while the relay is away
	done
}

# ------------------------------------------------------------------------------ set up

lan_http "$HTTP_PORT"
declare -a SMALL_SHA SMALL_SIZE
for ((k = 0; k < NSMALL; k++)); do
	SMALL_SIZE[k]=$((200 + RANDOM * 2)) # 200 B .. 64 KiB
	head -c "${SMALL_SIZE[k]}" /dev/urandom >"$TN_TMP/www/s$k.bin"
	SMALL_SHA[k]=$(sha256sum <"$TN_TMP/www/s$k.bin" | cut -d' ' -f1)
done
lan_serve soak "$SOAK_PORT" serve-soak "$SOAK_PORT" --results "$TN_TMP/lan-results.txt"
tn_certs
relay_up
LEVEL_ARGS=() # start_proxy and start_client pass --log-level debug; a later flag overrides it
[ "$LOG_LEVEL" = debug ] || LEVEL_ARGS=(--log-level "$LOG_LEVEL")
start_proxy ${LEVEL_ARGS[@]+"${LEVEL_ARGS[@]}"}
wait_for_log "$TN_TMP/relay-1.log" "proxy $TN_PROXY_ID registered" 10 "$RELAY_PID" ||
	fail "proxy $TN_PROXY_ID did not register"
start_client ${LEVEL_ARGS[@]+"${LEVEL_ARGS[@]}"}
wait_client_ready
CLIENT_PID=$(tn_pid client)
PROXY_PID=$(tn_pid proxy)
CLIENT_START=$(starttime "$CLIENT_PID")
PROXY_START=$(starttime "$PROXY_PID")

tn_log "warm-up: a few GETs and one transfer each way"
for ((k = 0; k < 4; k++)); do
	[ "$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:$HTTP_PORT/s$k.bin" | sha256sum |
		cut -d' ' -f1)" = "${SMALL_SHA[k]}" ] || fail "warm-up GET of s$k.bin failed"
done
for kind in up down; do
	line=$(tools_in "$TN_NS_CLI" 30 soak-xfer "$TN_VIRT_IP" "$SOAK_PORT" "$kind" 4194304 $((RANDOM + 1)) \
		--id "warm-$kind") || fail "warm-up $kind transfer failed: $line"
done
sleep 3
sample_all baseline
sample start relay-1 "$RELAY_PID"
tn_log "baseline: $(awk '$2 == "baseline" { printf "%s %d kB %d fds; ", $3, $5, $6 }' "$SAMPLES")"

# ------------------------------------------------------------------------------ the soak

START_MS=$(tn_now_ms)
END_MS=$((START_MS + DURATION * 1000))
ev traffic_start
tn_log "soak: $DURATION s, relay restarts every $RESTART_EVERY s, $WORKERS transfer workers at" \
	"$RATE_MIB MiB/s, $GETS_PER_SEC GETs/s"
WORKER_PIDS=()
get_loop &
WORKER_PIDS+=($!)
TN_PIDS+=("get-loop:$!")
for ((w = 1; w <= WORKERS; w++)); do
	xfer_worker "$w" &
	WORKER_PIDS+=($!)
	TN_PIDS+=("xfer-$w:$!")
done

progress() {
	local t=$((($(tn_now_ms) - START_MS) / 1000))
	tn_log "t=${t}s: $(cat "$TN_TMP"/xfer-*.txt 2>/dev/null | awk '{ n++; if ($6 == 0) ok++ }
		END { printf "transfers %d ok of %d", ok, n }'), $(awk '{ n++; if ($6 == 0) ok++ }
		END { printf "GETs %d ok of %d", ok, n }' "$TN_TMP/gets.txt" 2>/dev/null);" \
		"$(awk -v t="$1" '$2 == t { printf "%s %s kB %s fds; ", $3, $5, $6 }' "$SAMPLES" | tail -n 3)"
}

next_restart=$((START_MS + RESTART_EVERY * 1000))
next_sample=$((START_MS + SAMPLE_EVERY * 1000))
sig=TERM
guard=0
while (($(tn_now_ms) < END_MS && guard < DURATION * 4 + 100)); do
	guard=$((guard + 1))
	peers_alive || break
	now=$(tn_now_ms)
	if [ "$RESTART_EVERY" -gt 0 ] && ((now >= next_restart)); then
		next_restart=$((next_restart + RESTART_EVERY * 1000))
		# Only when the relay can be back well before the end of the traffic.
		if ((END_MS - now >= (DOWN + 10) * 1000)); then
			restart_relay "$sig"
			[ "$sig" = TERM ] && sig=KILL || sig=TERM
		fi
	fi
	now=$(tn_now_ms)
	if ((now >= next_sample)); then
		sample_all "periodic-$(((now - START_MS) / 1000))"
		progress "periodic-$(((now - START_MS) / 1000))"
		next_sample=$((next_sample + SAMPLE_EVERY * 1000))
	fi
	sleep 0.5
done
ev traffic_deadline
tn_log "traffic stops: waiting for the transfers in flight"
touch "$STOP"
for ((i = 0; i < (XFER_TIMEOUT + 15) * 10; i++)); do
	any=0
	for pid in "${WORKER_PIDS[@]}"; do tn_alive "$pid" && any=1; done
	[ "$any" = 0 ] && break
	sleep 0.1
done
for pid in "${WORKER_PIDS[@]}"; do
	if tn_alive "$pid"; then
		problem "a traffic loop (pid $pid) still ran $((XFER_TIMEOUT + 15)) s after the end"
		kill -TERM "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	TN_REAPED+="$pid "
done
ev traffic_stopped
tn_log "settling for $SETTLE s"
sleep "$SETTLE"
peers_alive
sample_all end

# ------------------------------------------------------------------------------ the report

rc=0
cat "$TN_TMP"/xfer-*.txt "$TN_TMP/gets.txt" 2>/dev/null >"$TN_TMP/records.txt"
"$TN_PYTHON" - "$TN_TMP" "$DURATION" "$FD_SLACK" "$RSS_SLACK_KB" "$DRAIN" "$WORKERS" "$RATE_MIB" \
	"$GETS_PER_SEC" "$RESTART_EVERY" <<-'EOF' || rc=$?
	import os, sys
	tmp, duration, fd_slack, rss_slack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	drain, workers, rate, gps, every = sys.argv[5:10]
	GRACE = 1000  # ms after the peers are back that still counts as the restart's window

	def lines(name):
	    p = os.path.join(tmp, name)
	    return [l.split() for l in open(p)] if os.path.exists(p) else []

	ev = lines("events.txt")
	t_start = next(int(e[0]) for e in ev if e[1] == "traffic_start")
	t_stop = next((int(e[0]) for e in ev if e[1] == "traffic_stopped"), None)
	restarts = []  # dicts: n (relay stopped), sig, t_sig, t_exit, rc, t_start, t_back
	for e in ev:
	    t, kind = int(e[0]), e[1]
	    if kind == "signal":
	        restarts.append(dict(n=int(e[2]), sig=e[3], t_sig=t, t_exit=None, rc=None, t_up=None,
	                             proxy=None, client=None))
	    elif kind == "relay_exit" and restarts:
	        restarts[-1].update(t_exit=t, rc=int(e[3]))
	    elif kind == "relay_start" and restarts and int(e[2]) == restarts[-1]["n"] + 1:
	        restarts[-1]["t_up"] = t
	    elif kind == "proxy_reg" and restarts:
	        restarts[-1]["proxy"] = t
	    elif kind == "client_back" and restarts:
	        restarts[-1]["client"] = t
	INF = float("inf")
	for r in restarts:
	    back = None if r["proxy"] is None or r["client"] is None else max(r["proxy"], r["client"])
	    r["t_back"] = back
	    r["w_end"] = back + GRACE if back is not None else INF

	recs = lines("records.txt")
	KINDS = ["get", "up", "down"]
	st = {k: dict(ok=0, fail=0, corrupt=0, bytes=0, partial=0, cut=0, drain=0, outage=0,
	              unexplained=0, truncated=0, survived_term=0, survived_kill=0) for k in KINDS}
	bad, unexplained = [], []
	for r in recs:
	    kind, xid, size, t0, t1, rc, outcome = r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), r[6]
	    nbytes = int(r[7]) if len(r) > 7 and r[7].isdigit() else 0
	    if kind != "get" and len(r) > 8 and r[8].isdigit() and int(r[8]) > 0:
	        t0 = max(t0, int(r[8]))  # the tool's connect(), not its start-up
	    s = st[kind]
	    hit = [w for w in restarts if t0 < w["w_end"] and t1 > w["t_sig"]]
	    if outcome == "ok" and rc == 0:
	        s["ok"] += 1
	        s["bytes"] += size
	        for w in hit:
	            if t0 < w["t_sig"]:
	                s["survived_term" if w["sig"] == "TERM" else "survived_kill"] += 1
	        continue
	    if outcome == "corrupt":
	        s["corrupt"] += 1
	        bad.append(" ".join(r))
	        continue
	    s["fail"] += 1
	    s["partial"] += nbytes
	    if outcome == "truncated":
	        s["truncated"] += 1
	    if not hit:
	        s["unexplained"] += 1
	        unexplained.append(" ".join(r))
	    elif t0 < hit[0]["t_sig"]:
	        s["cut" if hit[0]["sig"] == "KILL" else "drain"] += 1
	    else:
	        s["outage"] += 1

	lan = lines("lan-results.txt")
	lan_up = {}
	for l in lan:
	    if l[0] == "up":
	        key = l[4] if not l[4].startswith("error") else "error"
	        lan_up[key] = lan_up.get(key, 0) + 1
	lan_bad = [" ".join(l) for l in lan if l[0] == "up" and l[4] == "corrupt"]
	lan_trunc = [" ".join(l) for l in lan if l[0] == "up" and l[4] == "truncated"]

	samples = lines("samples.txt")
	def pick(label, proc):
	    v = [s for s in samples if s[1] == label and s[2] == proc]
	    return v[-1] if v else None
	relays = sorted({s[2] for s in samples if s[2].startswith("relay-")}, key=lambda x: int(x[6:]))
	last_relay = relays[-1]
	problems = [l.rstrip("\n") for l in open(os.path.join(tmp, "problems.txt"))]
	fails = []

	def mib(kb):
	    return "%.1f MiB" % (int(kb) / 1024) if kb not in (None, "dead") else "dead"

	out = []
	p = out.append
	p("")
	p("==================== soak summary ====================")
	p("duration         %d s of traffic (asked %d s, then the transfers in flight finished), "
	  "%s transfer workers at %s MiB/s, %s GETs/s"
	  % (((t_stop or t_start) - t_start) / 1000, duration, workers, rate, gps))
	nterm = sum(1 for r in restarts if r["sig"] == "TERM")
	nkill = len(restarts) - nterm
	p("relay restarts   %d (every %s s): %d SIGTERM (drain %s s), %d kill -9"
	  % (len(restarts), every, nterm, drain, nkill))
	for r in restarts:
	    down = "%.1f s" % ((r["t_exit"] - r["t_sig"]) / 1000) if r["t_exit"] else "?"
	    back = "%.1f s" % ((r["t_back"] - r["t_up"]) / 1000) if r["t_back"] and r["t_up"] else "never"
	    p("  at %5.1f s  %-4s relay-%d exited with %s after %s; peers back %s after relay-%d started"
	      % ((r["t_sig"] - t_start) / 1000, r["sig"], r["n"], r["rc"], down, back, r["n"] + 1))
	p("transfers        completed / failed (in flight at kill -9 | in flight at SIGTERM | "
	  "started while it drained or was away | unexplained)")
	total = 0
	for k in KINDS:
	    s = st[k]
	    total += s["bytes"]
	    name = {"get": "short GETs", "up": "uploads", "down": "downloads"}[k]
	    p("  %-12s %5d / %-4d (%d | %d | %d | %d)  %8.1f MiB  checksum errors %d"
	      % (name, s["ok"], s["fail"], s["cut"], s["drain"], s["outage"], s["unexplained"],
	         s["bytes"] / 1048576, s["corrupt"]))
	    extra = []
	    if s["survived_term"]:
	        extra.append("%d completed across a SIGTERM drain" % s["survived_term"])
	    if s["survived_kill"]:
	        extra.append("%d completed although a kill -9 came during them" % s["survived_kill"])
	    if s["truncated"]:
	        extra.append("%d of the failures were a clean EOF before the end (not a reset)" % s["truncated"])
	    if s["partial"]:
	        extra.append("%.1f MiB moved by failed transfers" % (s["partial"] / 1048576))
	    if extra:
	        p("  %-12s %s" % ("", "; ".join(extra)))
	p("bytes moved      %.1f MiB in completed transfers (%.1f MiB/s)"
	  % (total / 1048576, total / 1048576 / max(1, ((t_stop or t_start) - t_start) / 1000)))
	ncorrupt = sum(st[k]["corrupt"] for k in KINDS)
	p("checksum errors  %d at the client end, %d at the LAN end (uploads the LAN server hashed: %s)"
	  % (ncorrupt, len(lan_bad), ", ".join("%s %d" % kv for kv in sorted(lan_up.items())) or "none"))
	if lan_trunc:
	    p("                 %d uploads reached the LAN server as a clean EOF before the end "
	      "(a cut flow closed, not reset)" % len(lan_trunc))
	p("resources        baseline -> end (peak)")
	for proc, first in (("client", "baseline"), ("proxy", "baseline"), (last_relay, "start")):
	    b, e = pick(first, proc), pick("end", proc)
	    peak = max((int(s[4]) for s in samples if s[2] == proc and s[4] != "dead"), default=0)
	    peakfd = max((int(s[5]) for s in samples if s[2] == proc), default=0)
	    label = proc if proc != last_relay else "%s (latest; from its start)" % proc
	    if b is None or e is None:
	        p("  %-34s no samples" % label)
	        fails.append("%s: no samples" % proc)
	        continue
	    p("  %-34s pid %-7s RSS %s -> %s (%s)   fds %s -> %s (%d)"
	      % (label, e[3], mib(b[4]), mib(e[4]), mib(peak), b[5], e[5], peakfd))
	    if proc in ("client", "proxy"):
	        if e[4] == "dead" or b[3] != e[3]:
	            fails.append("%s died or was restarted" % proc)
	            continue
	        if int(e[5]) > int(b[5]) + fd_slack:
	            fails.append("%s: %s descriptors at the end, baseline %s (+%d allowed)"
	                         % (proc, e[5], b[5], fd_slack))
	        if int(e[4]) > int(b[4]) + rss_slack:
	            fails.append("%s: RSS %s kB at the end, baseline %s kB (+%d kB allowed)"
	                         % (proc, e[4], b[4], rss_slack))
	for rl in relays[:-1]:
	    b = pick("start", rl)
	    last = [s for s in samples if s[2] == rl and s[4] != "dead"]
	    if b and last:
	        p("  %-34s pid %-7s RSS %s -> %s   fds %s -> %s (its start -> its last sample)"
	          % (rl, b[3], mib(b[4]), mib(last[-1][4]), b[5], last[-1][5]))
	if ncorrupt or lan_bad:
	    fails.append("%d transfers completed with wrong bytes" % (ncorrupt + len(lan_bad)))
	    for l in bad[:20] + lan_bad[:20]:
	        p("  wrong: " + l)
	if unexplained:
	    p("note: %d failures outside every restart window:" % len(unexplained))
	    for l in unexplained[:20]:
	        p("  " + l)
	fails += problems
	p("result           " + ("PASS" if not fails else "FAIL"))
	for f in fails:
	    p("  - " + f)
	p("======================================================")
	print("\n".join(out))
	sys.exit(1 if fails else 0)
EOF
[ "$rc" = 0 ] || fail "the soak found problems (summary above)"
