# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034
# regress_lib.sh: what the scripts that run the real relay and proxy on 127.0.0.1 share
# (badpeer_test.sh, tests/security/security_test.sh).  The sourcing script sets $scenario and
# $build first; this sets the programs' paths, $tmp, $certs and the cleanup trap.
server=$build/server/server
proxy=$build/proxy/proxy
certs_tool=$build/certs-tool/certs-tool
badpeer=$build/tests/tools/badpeer

tmp=$(mktemp -d)
certs=$tmp/certs
declare -A pid=() # name -> PID of a background process not reaped yet
shown=" "         # logs already printed in full
status=0          # set by reap

log() { printf '[%s_%s] %s\n' "${log_prefix:-regress}" "$scenario" "$*" >&2; }

fail() {
	log "FAIL: $*"
	exit 1
}

cleanup() {
	local rc=$? name f deadline=$((SECONDS + 5))
	for name in "${!pid[@]}"; do
		kill -TERM "${pid[$name]}" 2>/dev/null || true
	done
	for name in "${!pid[@]}"; do
		while kill -0 "${pid[$name]}" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		timeout 5 pkill -KILL -P "${pid[$name]}" 2>/dev/null || true
		kill -KILL "${pid[$name]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if ((rc != 0)); then
		for f in "$tmp"/*.log; do
			[[ -e $f && $shown != *" $f "* ]] || continue
			log "--- last lines of $(basename "$f")"
			tail -n 80 "$f" >&2
		done
	fi
	if [[ ${TN_KEEP_TMP:-0} == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

for f in "$server" "$proxy" "$certs_tool" "$badpeer"; do
	[[ -x $f ]] || fail "$f is not built"
done

# start NAME CMD...: runs CMD in the background (bounded by timeout), output in $tmp/NAME.log.
# --foreground: otherwise timeout follows the SIGTERM it forwards with a SIGCONT to the process
# group, which can cancel the SIGSTOP of LeakSanitizer's exit-time check and hang the program.
start() {
	local name=$1
	shift
	: >"$tmp/$name.log"
	timeout --foreground -k 25 100 "$@" >"$tmp/$name.log" 2>&1 &
	pid[$name]=$!
}

# is_running NAME: NAME's process exists and is no zombie.
is_running() {
	local p=${pid[$1]:-}
	[[ -n $p ]] && kill -0 "$p" 2>/dev/null && [[ $(timeout 5 ps -o stat= -p "$p") != Z* ]]
}

# reap NAME: waits for NAME, which has ended, and sets $status to its exit status.
reap() {
	status=0
	wait "${pid[$1]}" || status=$?
	unset "pid[$1]"
}

alive() {
	if ! is_running "$1"; then
		reap "$1"
		fail "$1 died (exit status $status)"
	fi
}

# wait_log NAME REGEX SECONDS: until NAME's log matches REGEX, while NAME runs.
wait_log() {
	local name=$1 re=$2 deadline=$((SECONDS + $3))
	until grep -qE -- "$re" "$tmp/$name.log"; do
		if ! is_running "$name"; then
			reap "$name"
			fail "$name exited (status $status) before logging /$re/"
		fi
		((SECONDS < deadline)) || fail "$name did not log /$re/ within $3 s"
		sleep 0.1
	done
}

# wait_exit NAME SECONDS: NAME must end by itself with status 0.
wait_exit() {
	local name=$1 deadline=$((SECONDS + $2))
	while is_running "$name"; do
		((SECONDS < deadline)) || fail "$name did not exit within $2 s"
		sleep 0.1
	done
	reap "$name"
	((status == 0)) || fail "$name exited with status $status"
}

# stop NAME: SIGTERM; NAME must exit 0 (a crash, a sanitizer report or a leak does not).
stop() {
	local name=$1 deadline=$((SECONDS + 20))
	kill -TERM "${pid[$name]}" 2>/dev/null || true
	while is_running "$name"; do
		((SECONDS < deadline)) || fail "$name did not exit within 20 s of SIGTERM"
		sleep 0.1
	done
	reap "$name"
	((status == 0)) || fail "$name exited with status $status on SIGTERM (a crash, a sanitizer report or a leak: see its log)"
	log "ok: $name exited 0 on SIGTERM"
}

# show NAME: prints NAME's log now (and not again at the end).
show() {
	cat "$tmp/$1.log" >&2
	shown+="$tmp/$1.log "
}

free_port() {
	timeout 10 python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_badpeer ARGS...: badpeer in the foreground; it must exit 0.
run_badpeer() {
	local rc=0
	timeout 60 "$badpeer" "$@" >"$tmp/badpeer.log" 2>&1 || rc=$?
	show badpeer
	((rc == 0)) || fail "badpeer $1 exited with status $rc"
}

# tls ROLE: sets $tls to the TLS flags of ROLE's certificate.
tls() { tls=(--tls-cert "$certs/$1/cert.pem" --tls-key "$certs/$1/key.pem" --tls-ca "$certs/ca/cert.pem"); }

# start_relay [ARGS...]: the real relay on a free port of 127.0.0.1 ($relay_port).
start_relay() {
	relay_port=$(free_port)
	tls server
	start relay "$server" --listen "127.0.0.1:$relay_port" "${tls[@]}" --log-level debug "$@"
	wait_log relay 'listening on' 15
}

# start_proxy HOST:PORT [ARGS...]: the real proxy (id proxy-1, from its certificate) serving
# 127.0.0.1/32.
start_proxy() {
	local relay=$1
	shift
	tls proxy
	start proxy "$proxy" --server "$relay" --managed-cidr 127.0.0.1/32 "${tls[@]}" \
		--log-level debug "$@"
}

