# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034,SC2119,SC2120
# (variables are used by the scripts that source this file; helpers take optional arguments)
# lib.sh: the three-namespace topology and the helpers every end-to-end test sources.
#
#                 tn-cli-$$                        tn-relay-$$                    tn-lan-$$
#   apps, client (iptables REDIRECT)                 server                 proxy, test servers
#   ┌────────────────────────────┐       ┌──────────────────────────┐       ┌──────────────────┐
#   │ tnc$$      10.201.1.1/24 ──┼───────┼─ tnr$$c   10.201.1.2/24  │       │                  │
#   │                            │       │  tnr$$l   10.201.2.1/24 ─┼───────┼─ tnl$$ 10.201.2.2│
#   │ tns$$a ◀─▶ tns$$b  (sink)  │       │  ip_forward=0            │       │ (no route back)  │
#   └────────────────────────────┘       └──────────────────────────┘       └──────────────────┘
#
#   cli routes 10.201.2.0/24 and 100.64.0.0/10 into the sink pair (no address, no ARP): connect()
#   finds a route, so the nat OUTPUT hook sees the SYN, but a packet the client did not intercept
#   dies there. The relay does not forward and the LAN has no route back, so the only way from
#   cli to lan is the tunnel: client ══h2/mTLS══▶ server:8443 ◀══h2/mTLS══ proxy.
#   The proxy serves 10.201.2.0/24 as the virtual 100.64.2.0/24 (100.64.2.2 is 10.201.2.2);
#   the client intercepts 100.64.0.0/10 only.
#
#   tn_lanb_up adds a second LAN, tn-lanb-$$, that uses the same 10.201.2.0/24 inside (its
#   10.201.2.2 sits on a veth pair of its own) and reaches the relay over 10.201.3.0/24:
#
#                 tn-relay-$$                        tn-lanb-$$
#   ┌──────────────────────────┐       ┌──────────────────────────────────────────┐
#   │  tnr$$b   10.201.3.1/24 ─┼───────┼─ tnb$$r 10.201.3.2/24                    │
#   │                          │       │  tnb$$a 10.201.2.2/24 ◀─▶ tnb$$z (sink)  │
#   └──────────────────────────┘       └──────────────────────────────────────────┘
#
# Usage in a test:
#   . "$(dirname "$0")/lib.sh"
#   tn_init            # needs root and the binaries (else exit 77), makes the topology and trap
#   tn_certs; start_tunnel
#   n_cli timeout 5 curl ...
#
# The binaries come from $TN_BUILD_DIR (CTest sets it to the build tree).
# TN_KEEP_TMP=1 keeps the temporary directory (certificates, logs) after the run.

TN_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TN_TOOLS="$TN_E2E_DIR/tools.py"
TN_PYTHON=${TN_PYTHON:-python3}

TN_NS_CLI="tn-cli-$$"
TN_NS_RELAY="tn-relay-$$"
TN_NS_LAN="tn-lan-$$"
TN_NAMESPACES="$TN_NS_CLI $TN_NS_RELAY $TN_NS_LAN"

TN_CLI_IP=10.201.1.1
TN_RELAY_CLI_IP=10.201.1.2
TN_RELAY_LAN_IP=10.201.2.1
TN_LAN_IP=10.201.2.2
TN_LAN_NET=10.201.2.0/24
TN_VIRT_NET=100.64.2.0/24
TN_VIRT_IP=100.64.2.2
TN_INTERCEPT=100.64.0.0/10
TN_RELAY_PORT=8443
TN_CLIENT_PORT=9999

# What start_proxy / start_client use; a test may change them before the call.
TN_PROXY_ID=proxy-1
TN_PROXY_MANAGED=$TN_LAN_NET
TN_PROXY_VIRTUAL=$TN_VIRT_NET
TN_PROXY_CERTS=""       # default: $TN_CERTS/proxy
TN_PROXY_NS=""          # default: $TN_NS_LAN
TN_PROXY_RELAY=""       # the relay's address as the proxy dials it; default: $TN_RELAY_LAN_IP
TN_CLIENT_CERTS=""      # default: $TN_CERTS/client
TN_PROXY_NAME=proxy     # process name: the log is $TN_TMP/NAME.log
TN_CLIENT_NAME=client
TN_SKIP_RC=${TN_SKIP_RC:-77}
TN_CHECK_EXIT=${TN_CHECK_EXIT:-1} # 1: a program that exits non-zero on SIGTERM fails the test
TN_READY_RE='(^|[^[:alnum:]_])ready([^[:alnum:]_]|$)' # the client's "ready" log line, as a word

TN_TMP=""
TN_PIDS=()  # "name:pid" of every background process, in start order
TN_PROGS=() # the PIDs of the programs under test among them (relay, proxy, client)
TN_REAPED=" " # PIDs whose end a test already waited for
TN_INIT_DONE=0

tn_log() { printf '[%s] %s\n' "${TN_NAME:-e2e}" "$*" >&2; }

tn_skip() {
	tn_log "SKIP: $*"
	exit "$TN_SKIP_RC"
}

# fail MSG: the test failed; cleanup prints the tails of the logs.
fail() {
	tn_log "FAIL: $*"
	exit 1
}

# Run a command in a namespace. A leading `timeout` gets --foreground (and a kill after 2 s) so
# that Ctrl-C reaches the command at once instead of waiting for its time limit.
tn_in() {
	local ns=$1
	shift
	if [ "${1:-}" = timeout ]; then
		shift
		set -- timeout --foreground --kill-after=2 "$@"
	fi
	ip netns exec "$ns" "$@"
}
n_cli() { tn_in "$TN_NS_CLI" "$@"; }
n_relay() { tn_in "$TN_NS_RELAY" "$@"; }
n_lan() { tn_in "$TN_NS_LAN" "$@"; }

# The same in the root namespace (certs-tool, local checks).
tmo() { timeout --foreground --kill-after=2 "$@"; }

tn_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ------------------------------------------------------------------------------ processes

# tn_alive PID: the process exists and is not a zombie.
tn_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# tn_spawn NAME NS CMD...: run CMD in namespace NS in the background, stdout and stderr to
# $TN_TMP/NAME.log; sets TN_LAST_PID. `ip netns exec` execs, so the PID is the program's own.
tn_spawn() {
	local name=$1 ns=$2
	shift 2
	# The saved outputs are closed: a daemon must not hold the test runner's pipe open.
	ip netns exec "$ns" "$@" >>"$TN_TMP/$name.log" 2>&1 </dev/null {TN_STDOUT}>&- {TN_STDERR}>&- &
	TN_LAST_PID=$!
	TN_PIDS+=("$name:$TN_LAST_PID")
	[ "${TN_VERBOSE:-1}" = 0 ] || tn_log "started $name (pid $TN_LAST_PID) in $ns: $*"
}

# tn_pid NAME: the PID of the most recent process started under NAME.
tn_pid() {
	local e pid=""
	for e in "${TN_PIDS[@]}"; do
		[ "${e%%:*}" = "$1" ] && pid=${e#*:}
	done
	[ -n "$pid" ] || return 1
	echo "$pid"
}

# tn_wait_exit PID SECONDS: wait for PID (a child of ours) to end; returns its exit status, or
# 124 if it still runs after SECONDS.
tn_wait_exit() {
	local pid=$1 i rc=0
	for ((i = 0; i < $2 * 10; i++)); do
		tn_alive "$pid" || break
		sleep 0.1
	done
	tn_alive "$pid" && return 124
	wait "$pid" 2>/dev/null || rc=$?
	TN_REAPED+="$pid "
	return $rc
}

# tn_exit_of NAME SECONDS: waits for process NAME to end by itself; its exit status goes to
# TN_RC (124: still running after SECONDS).
tn_exit_of() {
	TN_RC=0
	tn_wait_exit "$(tn_pid "$1")" "$2" || TN_RC=$?
}

# tn_stop NAME [SIGNAL] [SECONDS]: signal the process and wait for it; returns its exit status.
tn_stop() {
	local pid rc=0
	pid=$(tn_pid "$1") || return 1
	kill "-${2:-TERM}" "$pid" 2>/dev/null || true
	tn_wait_exit "$pid" "${3:-10}" || rc=$?
	return $rc
}

# ------------------------------------------------------------------------------ waiting

# wait_for_log FILE PATTERN SECONDS [PID]: poll until FILE has a line matching the extended
# regex; gives up early when process PID (the one writing FILE) has ended.
wait_for_log() {
	local file=$1 pattern=$2 pid=${4:-} i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! tn_alive "$pid"; then
			grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
			tn_log "pid $pid ended without a line matching '$pattern' in $(basename "$file")"
			return 1
		fi
		sleep 0.1
	done
	tn_log "no line matching '$pattern' in $(basename "$file") after $3 s"
	return 1
}

# wait_port NS PORT SECONDS: poll until a TCP socket listens on PORT in namespace NS.
wait_port() {
	local ns=$1 port=$2 i
	for ((i = 0; i < $3 * 10; i++)); do
		[ -n "$(tmo 2 ss -N "$ns" -tlnH "sport = :$port" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	tn_log "nothing listens on port $port in $ns after $3 s"
	return 1
}

# wait_file FILE SECONDS: poll until FILE exists and is not empty.
wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------------------ topology

tn_ns_exists() { [ -e "/run/netns/$1" ]; }

# Kill what still runs in NS (every process there was started by this harness), then delete it.
tn_ns_delete() {
	local ns=$1 pids pid i
	tn_ns_exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	if [ -n "$pids" ]; then
		for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
		for ((i = 0; i < 20; i++)); do
			pids=$(ip netns pids "$ns" 2>/dev/null || true)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
	fi
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "/etc/netns/$ns" # a test's /etc/hosts for it (ip netns exec mounts it), if any
}

# Namespaces of earlier runs killed too hard to clean up (SIGKILL, a CTest timeout): ours are
# named tn-{cli,cli2,relay,lan,lanb,host}-PID; delete those whose PID is gone.
tn_reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
		[[ $ns =~ ^tn-(cli|cli2|relay|lan|lanb|host)-([0-9]+)$ ]] || continue
		pid=${BASH_REMATCH[2]}
		[ "$pid" = "$$" ] && continue
		[ -d "/proc/$pid" ] && continue
		tn_log "removing stale namespace $ns"
		tn_ns_delete "$ns"
	done
}

tn_ns_setup() {
	local ns=$1
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	n_sysctl "$ns" net.ipv4.ip_forward=0 \
		net.ipv4.ip_local_port_range="10000 65000" \
		net.ipv4.tcp_tw_reuse=1 \
		net.core.somaxconn=4096 \
		net.ipv4.tcp_max_syn_backlog=4096 \
		net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1
}
n_sysctl() {
	local ns=$1
	shift
	ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# tn_veth NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B: a veth pair made inside the namespaces (nothing
# appears in the root one), each end up with its /24 address ('' for none).
tn_veth() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
	[ -z "$3" ] || ip -n "$1" addr add "$3/24" dev "$2"
	[ -z "$6" ] || ip -n "$4" addr add "$6/24" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

tn_topology_up() {
	local ns c=tnc$$ rc=tnr$$c rl=tnr$$l l=tnl$$ sa=tns$$a sb=tns$$b
	for ns in $TN_NAMESPACES; do tn_ns_setup "$ns"; done
	# Links are created inside the namespaces: nothing ever appears in the root namespace.
	tn_veth "$TN_NS_CLI" "$c" "$TN_CLI_IP" "$TN_NS_RELAY" "$rc" "$TN_RELAY_CLI_IP"
	tn_veth "$TN_NS_RELAY" "$rl" "$TN_RELAY_LAN_IP" "$TN_NS_LAN" "$l" "$TN_LAN_IP"
	# The sink: no addresses, no ARP, so what is routed into it goes nowhere.
	ip link add "$sa" netns "$TN_NS_CLI" type veth peer name "$sb" netns "$TN_NS_CLI"
	ip -n "$TN_NS_CLI" link set "$sa" arp off up
	ip -n "$TN_NS_CLI" link set "$sb" arp off up
	ip -n "$TN_NS_CLI" route replace "$TN_LAN_NET" dev "$sa" metric 100
	ip -n "$TN_NS_CLI" route replace "$TN_INTERCEPT" dev "$sa" metric 100
}

# ------------------------------------------------------------------------------ setup, cleanup

# tn_init [--no-binaries]: check the requirements (exit 77 when unmet), make the temporary
# directory and the topology, and arm the cleanup.
tn_init() {
	local need_bins=1 b
	[ "${1:-}" = --no-binaries ] && need_bins=0
	TN_NAME=${TN_NAME:-$(basename "$0" .sh)}
	[ "$(id -u)" = 0 ] || tn_skip "needs root (network namespaces, iptables)"
	for b in ip ss iptables iptables-save timeout curl "$TN_PYTHON"; do
		command -v "$b" >/dev/null || tn_skip "$b is not installed"
	done
	if [ "$need_bins" = 1 ]; then
		[ -n "${TN_BUILD_DIR:-}" ] || tn_skip "TN_BUILD_DIR is not set (the CMake build tree)"
		TN_BIN=$(cd "$TN_BUILD_DIR" 2>/dev/null && pwd) || tn_skip "no build tree at $TN_BUILD_DIR"
		for b in certs-tool/certs-tool server/server proxy/proxy client/client; do
			[ -x "$TN_BIN/$b" ] || tn_skip "$TN_BIN/$b is not built"
		done
	fi

	# cleanup may run inside a redirected command (a trap fires where the shell is); it writes
	# to the original outputs saved here.
	exec {TN_STDOUT}>&1 {TN_STDERR}>&2
	TN_INIT_DONE=1
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	set -o errtrace
	trap 'tn_log "command failed (line $LINENO): $BASH_COMMAND"' ERR

	TN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tn-e2e-$TN_NAME.XXXXXX")
	chmod 755 "$TN_TMP"
	TN_CERTS="$TN_TMP/certs"
	tn_reap_stale
	tn_topology_up
	tn_log "topology up: $TN_NAMESPACES (logs in $TN_TMP)"
}

tn_dump_logs() {
	local f
	[ -n "$TN_TMP" ] && [ -d "$TN_TMP" ] || return 0
	for f in "$TN_TMP"/*.log; do
		[ -e "$f" ] || continue
		printf '\n----- %s (last %s lines) -----\n' "$(basename "$f")" "${TN_LOG_LINES:-40}" >&2
		tail -n "${TN_LOG_LINES:-40}" "$f" >&2 || true
	done
	echo >&2
}

cleanup() {
	local rc=$? e pid name i j any ns st
	# Bounded (about 5 s), so it ignores a second Ctrl-C rather than leaving namespaces behind.
	trap - EXIT ERR
	trap '' INT TERM HUP
	set +e
	[ "$TN_INIT_DONE" = 1 ] || exit "$rc"
	exec 1>&"$TN_STDOUT" 2>&"$TN_STDERR"
	# A program under test that ended while no test step waited for it crashed.
	for e in "${TN_PIDS[@]}"; do
		name=${e%%:*}
		pid=${e#*:}
		if ! tn_is_prog "$pid" || [[ $TN_REAPED == *" $pid "* ]]; then continue; fi
		if ! tn_alive "$pid"; then
			wait "$pid" 2>/dev/null
			st=$?
			TN_REAPED+="$pid "
			tn_log "$name (pid $pid) ended during the test with status $st"
			[ "$rc" = 0 ] && rc=1
		fi
	done
	local dumped=0
	case $rc in 0 | 130 | 143 | "$TN_SKIP_RC") ;; *) tn_dump_logs; dumped=1 ;; esac
	# The programs one at a time, newest first (client, proxy, relay): each stops while its
	# peer is still up, as it would in service. Then everything else at once.
	for ((i = ${#TN_PROGS[@]} - 1; i >= 0; i--)); do
		pid=${TN_PROGS[i]}
		tn_alive "$pid" || continue
		kill -TERM "$pid" 2>/dev/null
		for ((j = 0; j < 50; j++)); do
			tn_alive "$pid" || break
			sleep 0.1
		done
	done
	for e in "${TN_PIDS[@]}"; do
		pid=${e#*:}
		tn_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for ((i = 0; i < 50; i++)); do
		any=0
		for e in "${TN_PIDS[@]}"; do tn_alive "${e#*:}" && any=1; done
		[ "$any" = 0 ] && break
		sleep 0.1
	done
	for e in "${TN_PIDS[@]}"; do
		name=${e%%:*}
		pid=${e#*:}
		[[ $TN_REAPED == *" $pid "* ]] && continue
		if tn_alive "$pid"; then
			tn_log "$name (pid $pid) ignored SIGTERM for 5 s, killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		st=$?
		# The programs must stop cleanly on SIGTERM (a sanitizer's report makes this fail too).
		if tn_is_prog "$pid" && [ "$st" != 0 ]; then
			tn_log "$name (pid $pid) exited with status $st on SIGTERM"
			[ "$rc" = 0 ] && [ "$TN_CHECK_EXIT" = 1 ] && rc=1
		fi
	done
	[ "$rc" = 1 ] && [ "$dumped" = 0 ] && tn_dump_logs
	for ns in $TN_NAMESPACES; do tn_ns_delete "$ns"; done
	if [ -n "$TN_TMP" ] && [ -d "$TN_TMP" ]; then
		if [ "${TN_KEEP_TMP:-0}" = 1 ]; then
			tn_log "kept $TN_TMP"
		else
			rm -rf "$TN_TMP"
		fi
	fi
	case $rc in
	0) tn_log "PASS" ;;
	130 | 143) tn_log "interrupted" ;;
	"$TN_SKIP_RC") ;;
	*) tn_log "FAILED (exit $rc)" ;;
	esac
	exit "$rc"
}

# ------------------------------------------------------------------------------ the tunnel

# tn_certs [DIR]: a CA and the relay, proxy and client certificates (default $TN_CERTS); the
# relay's carries the addresses clients and proxies dial it by (they check them).  With
# TN_CERTS_UNNAMED=1, certs-tool's defaults instead: the relay's names no host.
tn_certs() {
	local dir=${1:-$TN_CERTS} names=()
	[ "${TN_CERTS_UNNAMED:-}" = 1 ] ||
		names=(--server-ip "$TN_RELAY_CLI_IP" --server-ip "$TN_RELAY_LAN_IP" --server-ip "$TN_RELAY_LANB_IP")
	mkdir -p "$dir"
	tmo 30 "$TN_BIN/certs-tool/certs-tool" --out "$dir" ${names[@]+"${names[@]}"} \
		>>"$TN_TMP/certs-tool.log" 2>&1 || fail "certs-tool --out failed"
	if [ ! -s "$dir/ca/cert.pem" ] || [ ! -s "$dir/client/key.pem" ]; then
		fail "certs-tool made no certificates in $dir"
	fi
}

tn_is_prog() { [[ " ${TN_PROGS[*]} " == *" $1 "* ]]; }

# start_relay [ARGS...]: the relay, named (and logging to) $TN_RELAY_NAME: relay unless a test
# starts another, such as relay-2 after a restart.
start_relay() {
	tn_spawn "${TN_RELAY_NAME:-relay}" "$TN_NS_RELAY" "$TN_BIN/server/server" \
		--listen "0.0.0.0:$TN_RELAY_PORT" \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug "$@"
	TN_PROGS+=("$TN_LAST_PID")
	wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "the relay does not listen"
}

# start_proxy [ARGS...]: a proxy as TN_PROXY_* say. An empty TN_PROXY_MANAGED leaves the
# networks to ARGS (--network cidr=...,virtual_cidr=...).
start_proxy() {
	local certs=${TN_PROXY_CERTS:-$TN_CERTS/proxy} net=() pre=()
	[ -n "$TN_PROXY_MANAGED" ] && net=(--managed-cidr "$TN_PROXY_MANAGED")
	[ -n "$TN_PROXY_MANAGED" ] && [ -n "$TN_PROXY_VIRTUAL" ] && net+=(--virtual-cidr "$TN_PROXY_VIRTUAL")
	[ -n "${TN_PROXY_PREFIX:-}" ] && read -ra pre <<<"$TN_PROXY_PREFIX" # e.g. prlimit --nofile=N
	tn_spawn "$TN_PROXY_NAME" "${TN_PROXY_NS:-$TN_NS_LAN}" ${pre[@]+"${pre[@]}"} "$TN_BIN/proxy/proxy" \
		--server "${TN_PROXY_RELAY:-$TN_RELAY_LAN_IP}:$TN_RELAY_PORT" --proxy-id "$TN_PROXY_ID" \
		${net[@]+"${net[@]}"} \
		--tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug "$@"
	TN_PROGS+=("$TN_LAST_PID")
}

start_client() {
	local certs=${TN_CLIENT_CERTS:-$TN_CERTS/client}
	tn_spawn "$TN_CLIENT_NAME" "$TN_NS_CLI" "$TN_BIN/client/client" \
		--server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" --cidr "$TN_INTERCEPT" \
		--listen-port "$TN_CLIENT_PORT" \
		--tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug "$@"
	TN_PROGS+=("$TN_LAST_PID")
}

# relay_again NAME: a relay started again on the same port (after the first was stopped).
relay_again() {
	tn_spawn "$1" "$TN_NS_RELAY" "$TN_BIN/server/server" --listen "0.0.0.0:$TN_RELAY_PORT" \
		--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
		--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
	TN_PROGS+=("$TN_LAST_PID")
	wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "the relay does not listen again"
}

# wait_back RELAY_NAME: after a relay restart, the proxy registered with it again and the client
# intercepts again.
wait_back() {
	wait_for_log "$TN_TMP/$1.log" "proxy $TN_PROXY_ID registered" 20 || fail "the proxy did not come back"
	wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "is back: intercepting again" 20 ||
		fail "the client did not come back"
}

# tn_python_with MODULE PACKAGE: sets PY to a python3 that imports MODULE (the Debian package's
# module is in the system python even when another python3 comes first), or skips the test.
tn_python_with() {
	local p
	for p in "$TN_PYTHON" /usr/bin/python3; do
		"$p" -c "import $1" 2>/dev/null && PY=$p && return 0
	done
	tn_skip "$2 is not installed (deploy/install-deps.sh)"
}

wait_registered() {
	wait_for_log "$TN_TMP/relay.log" "proxy $TN_PROXY_ID registered" "${1:-10}" "$(tn_pid relay)" ||
		fail "proxy $TN_PROXY_ID did not register"
}

wait_client_ready() {
	wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "$TN_READY_RE" "${1:-10}" "$(tn_pid "$TN_CLIENT_NAME")" ||
		fail "$TN_CLIENT_NAME did not become ready"
	wait_port "$TN_NS_CLI" "$TN_CLIENT_PORT" 5 || fail "the client does not listen"
}

# start_tunnel: relay, proxy and client, ready to carry traffic.
start_tunnel() {
	start_relay
	start_proxy
	wait_registered
	start_client
	wait_client_ready
}

# ------------------------------------------------------------------------------ traffic helpers

# lan_serve NAME PORT TOOL-ARGS...: a tools.py server in the LAN, waited for.
lan_serve() {
	local name=$1 port=$2
	shift 2
	tn_spawn "$name" "$TN_NS_LAN" "$TN_PYTHON" "$TN_TOOLS" "$@"
	wait_port "$TN_NS_LAN" "$port" 10 || fail "$name does not listen on $port"
}

# lan_dns ADDRESS ANSWER: dnsmasq in the LAN on ADDRESS port 53, answering ANSWER for every
# name under tunnel.test and logging the queries (dnsmasq.log); returns once it listens.
lan_dns() {
	local i
	tn_spawn dnsmasq "$TN_NS_LAN" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
		--no-hosts --bind-interfaces --listen-address="$1" --port 53 --user=root \
		--pid-file= --log-facility=- --log-queries --address="/tunnel.test/$2"
	for ((i = 0; i < 50; i++)); do
		[ -n "$(ss -N "$TN_NS_LAN" -ulnH 'sport = :53')" ] && return 0
		sleep 0.1
	done
	fail "dnsmasq does not listen on $1 port 53"
}

# lan_http PORT: a web server in the LAN whose index.html holds $TN_HTTP_BODY.
lan_http() {
	local port=$1
	mkdir -p "$TN_TMP/www"
	TN_HTTP_BODY="hello from the LAN, run $$ $RANDOM$RANDOM"
	echo "$TN_HTTP_BODY" >"$TN_TMP/www/index.html"
	tn_spawn http "$TN_NS_LAN" "$TN_PYTHON" -m http.server --bind 0.0.0.0 \
		--directory "$TN_TMP/www" "$port"
	wait_port "$TN_NS_LAN" "$port" 10 || fail "the web server does not listen on $port"
}

# tools_in NS TIMEOUT ARGS...: a tools.py client in a namespace under a time limit.
tools_in() {
	local ns=$1 t=$2
	shift 2
	tn_in "$ns" timeout "$t" "$TN_PYTHON" "$TN_TOOLS" "$@"
}

# rules_of_client: the client's lines in the cli namespace's netfilter state (IPv4 and IPv6).
rules_of_client() {
	{
		n_cli timeout 10 iptables-save
		n_cli timeout 10 ip6tables-save 2>/dev/null
	} | grep -E 'TUNNEL_CLIENT|tunnel-client' || true
}

# ------------------------------------------------------------------------------ more of them

# A second LAN (tn_lanb_up): the same real subnet as the first behind its own link to the relay.
TN_NS_LANB="tn-lanb-$$"
TN_RELAY_LANB_IP=10.201.3.1
TN_LANB_LINK_IP=10.201.3.2

n_lanb() { tn_in "$TN_NS_LANB" "$@"; }

# tn_lanb_up: make tn-lanb-$$ (drawn at the top); cleanup deletes it with the others.
tn_lanb_up() {
	local rb=tnr$$b br=tnb$$r la=tnb$$a lz=tnb$$z
	TN_NAMESPACES+=" $TN_NS_LANB"
	tn_ns_setup "$TN_NS_LANB"
	tn_veth "$TN_NS_RELAY" "$rb" "$TN_RELAY_LANB_IP" "$TN_NS_LANB" "$br" "$TN_LANB_LINK_IP"
	tn_veth "$TN_NS_LANB" "$la" "$TN_LAN_IP" "$TN_NS_LANB" "$lz" ''
	tn_log "second LAN up: $TN_NS_LANB ($TN_LAN_NET inside, relay link $TN_LANB_LINK_IP)"
}

# tn_issue ROLE ID: one more certificate of the test's CA, in $TN_CERTS/ROLE-ID.
tn_issue() {
	tmo 30 "$TN_BIN/certs-tool/certs-tool" issue --role "$1" --id "$2" --ca "$TN_CERTS/ca" \
		--out "$TN_CERTS/$1-$2" >>"$TN_TMP/certs-tool.log" 2>&1 ||
		fail "certs-tool issue --role $1 --id $2 failed"
	[ -s "$TN_CERTS/$1-$2/key.pem" ] || fail "certs-tool made no $1 certificate for $2"
}

# ns_http NAME NS PORT BODY: a web server in NS whose index.html holds BODY; log NAME.log.
ns_http() {
	local name=$1 ns=$2 port=$3
	mkdir -p "$TN_TMP/www-$name"
	echo "$4" >"$TN_TMP/www-$name/index.html"
	tn_spawn "$name" "$ns" "$TN_PYTHON" -m http.server --bind 0.0.0.0 \
		--directory "$TN_TMP/www-$name" "$port"
	wait_port "$ns" "$port" 10 || fail "$name does not listen on $port"
}

# count_lines FILE PATTERN: how many lines of FILE match the extended regex (0 if none).
count_lines() {
	local n
	n=$(grep -Ec -- "$2" "$1" 2>/dev/null) || true
	echo "${n:-0}"
}

# wait_count FILE PATTERN N SECONDS: poll until at least N lines of FILE match.
wait_count() {
	local i n=0
	for ((i = 0; i < $4 * 10; i++)); do
		n=$(count_lines "$1" "$2")
		[ "$n" -ge "$3" ] && return 0
		sleep 0.1
	done
	tn_log "$n lines matching '$2' in $(basename "$1") after $4 s, expected $3"
	return 1
}

# relay_flows DST: the relay's end-of-flow lines (debug) for flows to DST (address:port), as
# "FLOW-ID SRC PROXY-ID", in the order they ended.
relay_flows() {
	sed -nE "s/.*flow=([0-9a-f]{16}) client=[^ ]+ ([^ ]+) -> ${1//./\\.} proxy=([^ ]+) up=.*/\1 \2 \3/p" \
		"$TN_TMP/relay.log"
}

# proxy_flow_ids NAME: the flow ids proxy NAME logged, sorted.
proxy_flow_ids() {
	sed -nE 's/.*flow=([0-9a-f]{16}) client=.*/\1/p' "$TN_TMP/$1.log" | sort
}

# relay_status: SIGUSR1 to the relay; prints the routing table it logs (the "status:" lines).
relay_status() {
	local pid mark i
	pid=$(tn_pid relay) || fail "no relay"
	mark=$(wc -l <"$TN_TMP/relay.log")
	kill -USR1 "$pid"
	for ((i = 0; i < 50; i++)); do
		tail -n "+$((mark + 1))" "$TN_TMP/relay.log" | grep -Eq 'status: [0-9]+ proxies' && break
		sleep 0.1
	done
	tail -n "+$((mark + 1))" "$TN_TMP/relay.log" | grep -E 'status:' | sed -E 's/.*status: /status: /'
}

# wait_tunnel SECONDS: GET the LAN's page through the tunnel every 0.1 s until it answers; the
# caller measures from its own mark.  Returns 1 if it never did within SECONDS.
wait_tunnel() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(n_cli timeout 5 curl -sS --max-time 2 "http://$TN_VIRT_IP:8080/" 2>/dev/null)" = \
			"$TN_HTTP_BODY" ] && return 0
		sleep 0.1
	done
	return 1
}
