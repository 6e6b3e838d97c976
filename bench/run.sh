#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: the performance benchmark of the tunnel (bench/README.md explains the metrics).
#
#   sudo bench/run.sh [--reps N] [--duration S] [--peers "direct socat stunnel"] [--scale N]
#                     [--smoke] [--out FILE] [--keep-logs] [--log-level LEVEL]
#
# Builds three network namespaces of its own (client host, relay, LAN), starts the services
# in the LAN (iperf3, nginx, an echo server), then, for each repetition and in an order that
# rotates, starts one path at a time -- ours (client -> relay -> proxy, mutual TLS), the direct
# routed path, a socat relay, a two-leg mutual-TLS stunnel chain -- measures it from the client
# host and stops it. Then the scale test (N flows held open through ours). Prints a markdown
# table with medians and ratios, and writes JSON. Everything is removed on every exit.
#
# Exit status: 0 done; 1 ours failed a check (no traffic, a metric missing or zero, a crash, a
# non-zero exit on SIGTERM, flows lost in the scale test); 2 bad usage; 77 not root or a tool or
# program missing (CTest counts that as skipped).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
PY=${TN_PYTHON:-python3}
SKIP=77

usage() {
	local out=2
	[ "${1:-2}" = 0 ] && out=1
	cat >&"$out" <<-EOF
		usage: sudo bench/run.sh [options]
		  --reps N          repetitions, medians over them (default 3; --smoke: 1)
		  --duration S      seconds of each iperf3 and wrk run (default 5; --smoke: 1)
		  --peers "LIST"    paths measured besides ours: direct socat stunnel
		                    (default "direct socat stunnel"; --smoke: "direct")
		  --scale N         flows held open in the scale test, 0 to skip (default 10000;
		                    --smoke: 200)
		  --smoke           a quick run for CI: fails when ours is missing a metric or carries
		                    nothing, never judges the numbers
		  --out FILE        the JSON results (default bench/results/bench-<UTC stamp>.json;
		                    --smoke: \$TN_BUILD_DIR/bench/bench-smoke.json)
		  --keep-logs       keep the run directory (certificates, configs, logs, raw outputs)
		  --log-level L     log level of our programs (default warn)
		The programs come from \$TN_BUILD_DIR (default: build/ at the top of the checkout).
	EOF
	exit "${1:-2}"
}

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
skip() {
	say "skipped: $*"
	exit "$SKIP"
}

# ------------------------------------------------------------------------------ options

REPS="" DURATION="" PEERS="" PEERS_SET=0 SCALE="" SMOKE=0 OUT="" KEEP=0 LOG_LEVEL=warn
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
while [ $# -gt 0 ]; do
	opt=$1 val=""
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		;;
	--reps | --duration | --peers | --scale | --out | --log-level)
		[ $# -ge 2 ] || usage
		val=$2
		shift
		;;
	esac
	shift
	case $opt in
	--reps) REPS=$val ;;
	--duration) DURATION=$val ;;
	--peers) PEERS=$val PEERS_SET=1 ;;
	--scale) SCALE=$val ;;
	--out) OUT=$val ;;
	--log-level) LOG_LEVEL=$val ;;
	--smoke) SMOKE=1 ;;
	--keep-logs) KEEP=1 ;;
	-h | --help) usage 0 ;;
	*)
		echo "run.sh: unknown option '$opt'" >&2
		usage
		;;
	esac
done
if [ "$SMOKE" = 1 ]; then
	REPS=${REPS:-1} DURATION=${DURATION:-1} SCALE=${SCALE:-200}
	[ "$PEERS_SET" = 1 ] || PEERS="direct"
	RTT_N=200 TTFB_N=50 SCALE_RATE=1000
else
	REPS=${REPS:-3} DURATION=${DURATION:-5} SCALE=${SCALE:-10000}
	[ "$PEERS_SET" = 1 ] || PEERS="direct socat stunnel"
	RTT_N=2000 TTFB_N=500 SCALE_RATE=2000
fi
for v in REPS DURATION SCALE; do
	is_uint "${!v}" || { echo "run.sh: --${v,,} wants a whole number" >&2; usage; }
done
if [ "$REPS" -lt 1 ] || [ "$REPS" -gt 50 ]; then echo "run.sh: --reps must be 1..50" >&2; usage; fi
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 120 ]; then echo "run.sh: --duration must be 1..120" >&2; usage; fi
[ "$SCALE" -le 200000 ] || { echo "run.sh: --scale must be at most 200000" >&2; usage; }
case $LOG_LEVEL in debug | info | warn | error) ;; *) usage ;; esac
PEER_LIST=(ours)
for p in $PEERS; do
	case $p in
	ours) ;;
	direct | socat | stunnel) [[ " ${PEER_LIST[*]} " == *" $p "* ]] || PEER_LIST+=("$p") ;;
	*)
		echo "run.sh: unknown peer '$p' (direct, socat, stunnel)" >&2
		usage
		;;
	esac
done

# ------------------------------------------------------------------------------ requirements

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, iptables)"
BUILD=${TN_BUILD_DIR:-$ROOT_DIR/build}
BIN=$(cd "$BUILD" 2>/dev/null && pwd) || skip "no build tree at $BUILD (set TN_BUILD_DIR)"
for b in server/server proxy/proxy client/client certs-tool/certs-tool; do
	[ -x "$BIN/$b" ] || skip "$BIN/$b is not built"
done
PROBE=$BIN/bench/probe
if [ ! -x "$PROBE" ] && [ -f "$BIN/CMakeCache.txt" ]; then
	say "building the probe"
	timeout 300 cmake --build "$BIN" --target probe >/dev/null || true
fi
[ -x "$PROBE" ] || skip "$PROBE is not built (cmake --build $BUILD --target probe)"

# Debian packages, installed only when a command is missing.
ensure_tools() {
	local need=(iperf3:iperf3 wrk:wrk nginx:nginx-light ip:iproute2 iptables:iptables
		ss:iproute2 "$PY":python3 ps:procps timeout:coreutils)
	[[ " ${PEER_LIST[*]} " == *" socat "* ]] && need+=(socat:socat)
	[[ " ${PEER_LIST[*]} " == *" stunnel "* ]] && need+=(stunnel4:stunnel4)
	local e missing=() pkgs=()
	for e in "${need[@]}"; do
		command -v "${e%%:*}" >/dev/null 2>&1 && continue
		missing+=("${e%%:*}")
		[[ " ${pkgs[*]} " == *" ${e#*:} "* ]] || pkgs+=("${e#*:}")
	done
	[ ${#missing[@]} = 0 ] && return 0
	say "missing ${missing[*]}: apt-get install ${pkgs[*]}"
	command -v apt-get >/dev/null || skip "no apt-get to install ${pkgs[*]}"
	timeout 300 apt-get update -qq >/dev/null 2>&1
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
		"${pkgs[@]}" >/dev/null 2>&1 || skip "apt-get install ${pkgs[*]} failed"
	for e in "${missing[@]}"; do
		command -v "$e" >/dev/null 2>&1 || skip "$e is still missing"
	done
}
ensure_tools
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)

# ------------------------------------------------------------------------------ constants

NS_CLI=tnb-cli-$$
NS_RELAY=tnb-relay-$$
NS_LAN=tnb-lan-$$
NAMESPACES="$NS_CLI $NS_RELAY $NS_LAN"
IF_CLI=tbc$$ IF_RELAY_C=tbr$$c IF_RELAY_L=tbr$$l IF_LAN=tbl$$ IF_SINK_A=tbs$$a IF_SINK_B=tbs$$b

CLI_NET=10.202.1.0/24
CLI_IP=10.202.1.1
RELAY_CLI_IP=10.202.1.2
RELAY_LAN_IP=10.202.2.1
LAN_NET=10.202.2.0/24
LAN_IP=10.202.2.2
VIRT_NET=100.64.3.0/24
VIRT_IP=100.64.3.2
INTERCEPT=100.64.0.0/10

RELAY_PORT=8443
CLIENT_PORT=9999
# The LAN's services, name:port; socat and stunnel get one chain per port.
SERVICES="iperf:5201 http:80 echo:7007"
IPERF_PORT=5201 HTTP_PORT=80 ECHO_PORT=7007
SOCAT_BASE=41000                 # socat in the relay listens on RELAY_CLI_IP:41001..
ST_CLI=20000 ST_RELAY=21000 ST_RELAY_OUT=22000 ST_LAN=23000 # stunnel hops, + service index
MSG=64

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
if [ -z "$OUT" ]; then
	if [ "$SMOKE" = 1 ]; then OUT=$BIN/bench/bench-smoke.json; else OUT=$BENCH_DIR/results/bench-$STAMP.json; fi
fi

# ------------------------------------------------------------------------------ state, cleanup

NS_INODES=""    # inodes of our network namespaces (to tell our processes from others)
RUN=""          # the run directory (mktemp), removed at exit unless --keep-logs
ALL_PIDS=()     # every background process we started
PEER_PIDS=()    # the processes of the path under test (CPU, memory)
PEER_NAMES=()   # their names, same order
PEER_RULES=()   # "NS iptables-args" of the rules the path under test added
SAMPLER_PID=""
LOAD_PID=""
OURS_UP=0
TARGET=""
INIT_DONE=0

problem() { # SEVERITY(fail|warn|note) MESSAGE: recorded for the report
	local sev=$1
	shift
	say "$sev: $*"
	[ -n "$RUN" ] && printf '%s\t%s\n' "$sev" "$*" | tr -d '\r' >>"$RUN/problems.tsv"
}

alive() { # PID exists and is no zombie
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# kill_wait PID...: SIGTERM, up to 3 s, then SIGKILL; reaps them.
kill_wait() {
	local p i any
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 30; i++)); do
		any=0
		for p in "$@"; do alive "$p" && any=1; done
		[ $any = 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do
		alive "$p" && kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

ns_exists() { ip netns list 2>/dev/null | cut -d' ' -f1 | grep -qx -- "$1"; }

# Kill what still runs in NS (only this script starts processes there), then delete it.
ns_delete() {
	local ns=$1 pids i
	ns_exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null)
	# shellcheck disable=SC2086 # one PID per word
	if [ -n "$pids" ]; then
		kill -TERM $pids 2>/dev/null
		for ((i = 0; i < 20; i++)); do
			pids=$(ip netns pids "$ns" 2>/dev/null)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		# shellcheck disable=SC2086
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	fi
	ip netns del "$ns" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$? p
	trap - EXIT
	trap '' INT TERM HUP
	set +e
	[ "$INIT_DONE" = 1 ] || exit "$rc"
	[ -n "$LOAD_PID" ] && kill_wait "$LOAD_PID"
	[ -n "$SAMPLER_PID" ] && kill_wait "$SAMPLER_PID"
	[ "$OURS_UP" = 1 ] && stop_ours quiet
	local live=()
	for p in "${ALL_PIDS[@]}"; do alive "$p" && live+=("$p"); done
	[ ${#live[@]} -gt 0 ] && kill_wait "${live[@]}"
	for p in $NAMESPACES; do ns_delete "$p"; done
	if [ -n "$RUN" ] && [ -d "$RUN" ]; then
		if [ "$KEEP" = 1 ]; then
			say "kept the run directory $RUN"
		else
			rm -rf -- "$RUN"
		fi
	fi
	case $rc in 130 | 143) say "interrupted; everything removed" ;; esac
	exit "$rc"
}

# Namespaces of an earlier run that was killed too hard to clean up: tnb-*-PID, PID gone.
reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
		[[ $ns =~ ^tnb-(cli|relay|lan)-([0-9]+)$ ]] || continue
		pid=${BASH_REMATCH[2]}
		[ "$pid" = "$$" ] || [ -d "/proc/$pid" ] && continue
		say "removing the stale namespace $ns"
		ns_delete "$ns"
	done
}

# ------------------------------------------------------------------------------ processes

# spawn NAME NS CMD...: CMD in namespace NS in the background, output to logs/NAME.log. `ip
# netns exec` execs, so LAST_PID is the program's own PID.
spawn() {
	local name=$1 ns=$2
	shift 2
	ip netns exec "$ns" "$@" >>"$RUN/logs/$name.log" 2>&1 </dev/null &
	LAST_PID=$!
	ALL_PIDS+=("$LAST_PID")
}

# spawn_nofile LIMIT NAME NS CMD...: the same with RLIMIT_NOFILE raised to LIMIT for it alone.
spawn_nofile() {
	local lim=$1 name=$2 ns=$3
	shift 3
	(
		ulimit -n "$lim" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
		exec ip netns exec "$ns" "$@"
	) >>"$RUN/logs/$name.log" 2>&1 </dev/null &
	LAST_PID=$!
	ALL_PIDS+=("$LAST_PID")
}

peer_spawn() { # NAME NS CMD...: a process of the path under test
	spawn "$@"
	PEER_PIDS+=("$LAST_PID")
	PEER_NAMES+=("$1")
}

wait_port() { # NS PORT SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ -n "$(timeout 5 ss -N "$1" -tlnH "sport = :$2" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

in_ns() { # NS SECONDS CMD...: a bounded command in a namespace
	local ns=$1 t=$2
	shift 2
	timeout -k 2 "$t" ip netns exec "$ns" "$@"
}

# ------------------------------------------------------------------------------ topology

ns_setup() {
	local ns=$1
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="10000 65000" net.core.somaxconn=4096 \
		net.ipv4.tcp_max_syn_backlog=4096 net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null
}

# cli <-> relay <-> lan, each link a veth pair created inside the namespaces (nothing in the
# root namespace). In cli, the LAN and the intercepted range are routed into a dead-end veth
# pair without addresses or ARP: connect() has a route, so the nat OUTPUT hook sees the SYN,
# but nothing un-intercepted gets out. The relay does not forward; the LAN has no route back.
topology_up() {
	local ns
	for ns in $NAMESPACES; do ns_setup "$ns" || return 1; done
	ip link add "$IF_CLI" netns "$NS_CLI" type veth peer name "$IF_RELAY_C" netns "$NS_RELAY" &&
		ip link add "$IF_RELAY_L" netns "$NS_RELAY" type veth peer name "$IF_LAN" netns "$NS_LAN" &&
		ip link add "$IF_SINK_A" netns "$NS_CLI" type veth peer name "$IF_SINK_B" netns "$NS_CLI" ||
		return 1
	ip -n "$NS_CLI" addr add "$CLI_IP/24" dev "$IF_CLI"
	ip -n "$NS_RELAY" addr add "$RELAY_CLI_IP/24" dev "$IF_RELAY_C"
	ip -n "$NS_RELAY" addr add "$RELAY_LAN_IP/24" dev "$IF_RELAY_L"
	ip -n "$NS_LAN" addr add "$LAN_IP/24" dev "$IF_LAN"
	ip -n "$NS_CLI" link set "$IF_CLI" up
	ip -n "$NS_RELAY" link set "$IF_RELAY_C" up
	ip -n "$NS_RELAY" link set "$IF_RELAY_L" up
	ip -n "$NS_LAN" link set "$IF_LAN" up
	ip -n "$NS_CLI" link set "$IF_SINK_A" arp off up
	ip -n "$NS_CLI" link set "$IF_SINK_B" arp off up
	ip -n "$NS_CLI" route replace "$LAN_NET" dev "$IF_SINK_A" metric 100 &&
		ip -n "$NS_CLI" route replace "$INTERCEPT" dev "$IF_SINK_A" metric 100
}

# True when cli reaches neither the LAN address nor the virtual one (nothing runs).
isolated() {
	! in_ns "$NS_CLI" 3 "$PROBE" rtt "$LAN_IP" "$ECHO_PORT" -n 1 -t 0.3 >/dev/null 2>&1 &&
		! in_ns "$NS_CLI" 3 "$PROBE" rtt "$VIRT_IP" "$ECHO_PORT" -n 1 -t 0.3 >/dev/null 2>&1
}

# ------------------------------------------------------------------------------ LAN services

make_www() {
	mkdir -p "$RUN/www" "$RUN/nginx"
	# ~100 bytes, with a marker the readiness check looks for
	HTTP_MARK="tn-bench-$$-$RANDOM"
	printf '%-99s\n' "<p>$HTTP_MARK</p>" >"$RUN/www/index.html"
	local extra="" m
	for m in fastcgi uwsgi scgi; do
		nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" ||
			extra+="    ${m}_temp_path $RUN/nginx/$m;"$'\n'
	done
	cat >"$RUN/nginx/nginx.conf" <<-EOF
		# written by bench/run.sh for one run
		daemon off;
		worker_processes 1;
		user nobody nogroup;
		pid $RUN/nginx/nginx.pid;
		error_log $RUN/logs/nginx-error.log warn;
		events {
		    worker_connections 16384;
		}
		http {
		    access_log off;
		    server_tokens off;
		    default_type text/html;
		    sendfile on;
		    tcp_nodelay on;
		    keepalive_timeout 60s;
		    keepalive_requests 10000000;
		    client_body_temp_path $RUN/nginx/body;
		    proxy_temp_path $RUN/nginx/proxy;
		$extra
		    server {
		        listen $LAN_IP:$HTTP_PORT backlog=4096;
		        root $RUN/www;
		        index index.html;
		    }
		}
	EOF
}

start_services() {
	local nofile=$((SCALE + 4096))
	[ $nofile -lt 65536 ] && nofile=65536
	spawn iperf3-server "$NS_LAN" iperf3 -s -B "$LAN_IP" -p "$IPERF_PORT"
	spawn nginx "$NS_LAN" nginx -e "$RUN/logs/nginx-error.log" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf"
	spawn_nofile "$nofile" echo-server "$NS_LAN" "$PROBE" echo-server "$ECHO_PORT" -b "$LAN_IP"
	local p
	for p in $IPERF_PORT $HTTP_PORT $ECHO_PORT; do
		wait_port "$NS_LAN" "$p" 10 || die "nothing listens on $LAN_IP:$p in the LAN (see the logs)"
	done
}

http_ok() { # HOST: GET / through whatever path is up returns the page
	in_ns "$NS_CLI" 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "GET / HTTP/1.0\r\nHost: bench\r\n\r\n" >&3; cat <&3' _ "$1" "$HTTP_PORT" 2>/dev/null |
		grep -q "$HTTP_MARK"
}

ready() { # TARGET: echo and HTTP work through the path
	in_ns "$NS_CLI" 3 "$PROBE" rtt "$1" "$ECHO_PORT" -n 3 -t 1 >/dev/null 2>&1 && http_ok "$1"
}

wait_ready() { # TARGET SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt "$end" ]; do
		ready "$1" && return 0
		sleep 0.2
	done
	return 1
}

# ------------------------------------------------------------------------------ the paths

# rule NS ARGS...: add an iptables rule for the path under test (removed by stop_path).
rule() {
	local ns=$1
	shift
	ip netns exec "$ns" iptables -w 5 "$@" -m comment --comment tn-bench || return 1
	PEER_RULES+=("$ns $*")
}

# ours: relay in the relay namespace, proxy in the LAN (serving the LAN as VIRT_NET), client
# on the client host intercepting INTERCEPT; certificates from certs-tool. Logs per repetition.
start_ours() {
	local tag=$1 c=$RUN/certs
	peer_spawn "relay-$tag" "$NS_RELAY" "$BIN/server/server" --listen "0.0.0.0:$RELAY_PORT" \
		--tls-cert "$c/server/cert.pem" --tls-key "$c/server/key.pem" --tls-ca "$c/ca/cert.pem" \
		--log-level "$LOG_LEVEL"
	OURS_UP=1
	wait_port "$NS_RELAY" "$RELAY_PORT" 10 || { problem fail "$tag: the relay does not listen"; return 1; }
	peer_spawn "proxy-$tag" "$NS_LAN" "$BIN/proxy/proxy" --server "$RELAY_LAN_IP:$RELAY_PORT" \
		--managed-cidr "$LAN_NET" --virtual-cidr "$VIRT_NET" \
		--tls-cert "$c/proxy/cert.pem" --tls-key "$c/proxy/key.pem" --tls-ca "$c/ca/cert.pem" \
		--log-level "$LOG_LEVEL"
	peer_spawn "client-$tag" "$NS_CLI" "$BIN/client/client" --server "$RELAY_CLI_IP:$RELAY_PORT" \
		--cidr "$INTERCEPT" --listen-port "$CLIENT_PORT" \
		--tls-cert "$c/client/cert.pem" --tls-key "$c/client/key.pem" --tls-ca "$c/ca/cert.pem" \
		--log-level "$LOG_LEVEL"
	wait_port "$NS_CLI" "$CLIENT_PORT" 10 || { problem fail "$tag: the client does not listen"; return 1; }
	TARGET=$VIRT_IP
}

client_rules() { in_ns "$NS_CLI" 10 iptables-save 2>/dev/null | grep -E 'TUNNEL_CLIENT|tunnel-client'; }

# stop_ours [quiet]: client, proxy, relay in turn (each while its peer is still up), SIGTERM;
# each must exit with status 0 within 10 s, and the client must leave no rule behind.
stop_ours() {
	local quiet=${1:-} i pid name st j
	for ((i = ${#PEER_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PEER_PIDS[i]} name=${PEER_NAMES[i]}
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			st=$?
			[ -z "$quiet" ] && problem fail "$name (pid $pid) had ended before it was stopped, status $st"
			continue
		fi
		kill -TERM "$pid" 2>/dev/null
		for ((j = 0; j < 100; j++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			problem fail "$name (pid $pid) still runs 10 s after SIGTERM; killed"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		st=$?
		[ "$st" != 0 ] && [ -z "$quiet" ] && problem fail "$name (pid $pid) exited with status $st on SIGTERM"
		if [[ $name == client-* ]] && [ -z "$quiet" ] && [ -n "$(client_rules)" ]; then
			problem fail "$name left rules behind after SIGTERM: $(client_rules | tr '\n' ' ')"
		fi
	done
	OURS_UP=0
}

# direct: the relay forwards and both ends get a route: no tunnel at all.
start_direct() {
	ip netns exec "$NS_RELAY" sysctl -qw net.ipv4.ip_forward=1 >/dev/null &&
		ip -n "$NS_CLI" route add "$LAN_NET" via "$RELAY_CLI_IP" metric 10 &&
		ip -n "$NS_LAN" route add "$CLI_NET" via "$RELAY_LAN_IP" || return 1
	TARGET=$LAN_IP
}
direct_off() {
	ip netns exec "$NS_RELAY" sysctl -qw net.ipv4.ip_forward=0 >/dev/null 2>&1
	ip -n "$NS_CLI" route del "$LAN_NET" via "$RELAY_CLI_IP" metric 10 2>/dev/null
	ip -n "$NS_LAN" route del "$CLI_NET" via "$RELAY_LAN_IP" 2>/dev/null
	return 0
}

# socat: DNAT on the client host sends VIRT_IP:port to a socat in the relay (one per service,
# a fork per connection), which dials the LAN target. One user-space hop, no crypto.
start_socat() {
	local i=0 s port lp
	for s in $SERVICES; do
		i=$((i + 1)) port=${s#*:} lp=$((SOCAT_BASE + i))
		peer_spawn "socat-${s%%:*}" "$NS_RELAY" socat -b 65536 \
			"TCP-LISTEN:$lp,bind=$RELAY_CLI_IP,reuseaddr,fork,backlog=4096,nodelay" \
			"TCP:$LAN_IP:$port,nodelay"
		rule "$NS_CLI" -t nat -A OUTPUT -d "$VIRT_IP" -p tcp --dport "$port" \
			-j DNAT --to-destination "$RELAY_CLI_IP:$lp" || return 1
	done
	for ((i = 1; i <= 3; i++)); do wait_port "$NS_RELAY" $((SOCAT_BASE + i)) 10 || return 1; done
	TARGET=$VIRT_IP
}

# stunnel: client host REDIRECT -> stunnel (TLS client) -> relay stunnel (TLS server, then TLS
# client over loopback) -> LAN stunnel (TLS server) -> target. Two mutual-TLS 1.3 legs with
# our certs-tool's certificates, the same cipher preference as ours (AES-128-GCM first).
make_stunnel() {
	local d=$RUN/stunnel c=$RUN/certs i=0 s name port head tls
	mkdir -p "$d"
	head="foreground = yes
pid =
syslog = no
debug = warning
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1"
	tls="CAfile = $c/ca/cert.pem
verifyChain = yes
sslVersionMin = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
	local as_client="client = yes
cert = $c/client/cert.pem
key = $c/client/key.pem
$tls" as_server="cert = $c/server/cert.pem
key = $c/server/key.pem
$tls"
	echo "$head" >"$d/cli.conf"
	echo "$head" >"$d/relay.conf"
	echo "$head" >"$d/lan.conf"
	for s in $SERVICES; do
		i=$((i + 1)) name=${s%%:*} port=${s#*:}
		printf '\n[%s]\naccept = 127.0.0.1:%d\nconnect = %s:%d\n%s\n' \
			"$name" $((ST_CLI + i)) "$RELAY_CLI_IP" $((ST_RELAY + i)) "$as_client" >>"$d/cli.conf"
		printf '\n[%s-in]\naccept = %s:%d\nconnect = 127.0.0.1:%d\n%s\n' \
			"$name" "$RELAY_CLI_IP" $((ST_RELAY + i)) $((ST_RELAY_OUT + i)) "$as_server" >>"$d/relay.conf"
		printf '\n[%s-out]\naccept = 127.0.0.1:%d\nconnect = %s:%d\n%s\n' \
			"$name" $((ST_RELAY_OUT + i)) "$LAN_IP" $((ST_LAN + i)) "$as_client" >>"$d/relay.conf"
		printf '\n[%s]\naccept = %s:%d\nconnect = %s:%d\n%s\n' \
			"$name" "$LAN_IP" $((ST_LAN + i)) "$LAN_IP" "$port" "$as_server" >>"$d/lan.conf"
	done
}

start_stunnel() {
	local i=0 s
	[ -n "$STUNNEL" ] || return 1
	peer_spawn stunnel-lan "$NS_LAN" "$STUNNEL" "$RUN/stunnel/lan.conf"
	peer_spawn stunnel-relay "$NS_RELAY" "$STUNNEL" "$RUN/stunnel/relay.conf"
	peer_spawn stunnel-cli "$NS_CLI" "$STUNNEL" "$RUN/stunnel/cli.conf"
	for s in $SERVICES; do
		i=$((i + 1))
		rule "$NS_CLI" -t nat -A OUTPUT -d "$VIRT_IP" -p tcp --dport "${s#*:}" \
			-j REDIRECT --to-ports $((ST_CLI + i)) || return 1
	done
	for ((i = 1; i <= 3; i++)); do
		wait_port "$NS_CLI" $((ST_CLI + i)) 10 && wait_port "$NS_RELAY" $((ST_RELAY + i)) 10 &&
			wait_port "$NS_LAN" $((ST_LAN + i)) 10 || return 1
	done
	TARGET=$VIRT_IP
}

# stop_path PEER: stop the path under test and undo what it changed.
stop_path() {
	local peer=$1 r a i
	if [ "$peer" = ours ]; then
		stop_ours
	elif [ ${#PEER_PIDS[@]} -gt 0 ]; then
		kill_wait "${PEER_PIDS[@]}"
	fi
	[ "$peer" = direct ] && direct_off
	for r in "${PEER_RULES[@]}"; do
		# "NS -t nat -A OUTPUT ..." -> the same with -D
		read -r -a a <<<"$r"
		for i in "${!a[@]}"; do [ "${a[$i]}" = -A ] && a[$i]=-D; done
		ip netns exec "${a[0]}" iptables -w 5 "${a[@]:1}" -m comment --comment tn-bench 2>/dev/null
	done
	PEER_PIDS=() PEER_NAMES=() PEER_RULES=() TARGET=""
}

# ------------------------------------------------------------------------------ measuring

cpu_now() { # JSON: CPU seconds of the path's processes so far, or null
	if [ ${#PEER_PIDS[@]} -gt 0 ]; then "$PY" "$BENCH_DIR/procmon.py" cpu "${PEER_PIDS[@]}"; else echo null; fi
}

# measure DIR NAME SECONDS CMD...: CMD on the client host, bounded; keeps its output, exit
# status, times and the CPU used meanwhile by the path's processes.
measure() {
	local dir=$1 name=$2 t=$3 c0 c1 t0 t1 rc
	shift 3
	c0=$(cpu_now)
	t0=$EPOCHREALTIME
	timeout -k 2 "$t" ip netns exec "$NS_CLI" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
	LOAD_PID=$!
	wait "$LOAD_PID"
	rc=$?
	LOAD_PID=""
	t1=$EPOCHREALTIME
	c1=$(cpu_now)
	printf '{"rc":%d,"t0":%s,"t1":%s,"cpu0":%s,"cpu1":%s}\n' "$rc" "$t0" "$t1" "$c0" "$c1" >"$dir/$name.meta.json"
	[ "$rc" = 0 ] || say "  $name: exit status $rc $(head -c 200 "$dir/$name.err" | tr '\n' ' ')"
	return 0
}

iperf() { # DIR NAME ARGS...: iperf3, once more if the server was still busy
	local dir=$1 name=$2 k
	shift 2
	for k in 1 2; do
		measure "$dir" "$name" $((DURATION + 20)) iperf3 -c "$TARGET" -p "$IPERF_PORT" \
			-t "$DURATION" --connect-timeout 3000 -J "$@"
		grep -q '"error".*busy' "$dir/$name.out" 2>/dev/null || break
		sleep 1
	done
	sleep 0.3
}

wrk_run() { # DIR NAME ARGS...
	local dir=$1 name=$2
	shift 2
	measure "$dir" "$name" $((DURATION + 15)) wrk -t2 -c32 -d"${DURATION}s" --latency \
		--timeout 5s "$@" "http://$TARGET:$HTTP_PORT/"
}

sampler_start() { # OUT: peak memory of the path's processes until sampler_stop
	[ ${#PEER_PIDS[@]} -gt 0 ] || return 0
	"$PY" "$BENCH_DIR/procmon.py" sample "$1" 0.5 $((DURATION * 10 + 300)) "${PEER_PIDS[@]}" &
	SAMPLER_PID=$!
}
sampler_stop() {
	[ -n "$SAMPLER_PID" ] || return 0
	kill -TERM "$SAMPLER_PID" 2>/dev/null
	wait "$SAMPLER_PID" 2>/dev/null
	SAMPLER_PID=""
}

# JSON: CPU seconds used so far by whatever else runs on the machine (see procmon.py others).
others_now() { "$PY" "$BENCH_DIR/procmon.py" others "$$" $NS_INODES 2>/dev/null || echo null; }

# Warn (in the report too) when other processes already load the machine: 2 s of watching.
busy_check() {
	local o0 o1 used
	o0=$(others_now)
	sleep 2
	o1=$(others_now)
	used=$("$PY" -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:]); print("%.2f" % ((b["cpu_s"] - a["cpu_s"]) / 2))' "$o0" "$o1" 2>/dev/null) || return 0
	if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0.1 else 1)' "$used"; then
		problem warn "before the start, other processes kept $used cores busy: the numbers will be disturbed"
	fi
}

pids_json() { # {"name": pid, ...} of the path's processes
	local i s=""
	for i in "${!PEER_PIDS[@]}"; do s+="${s:+,}\"${PEER_NAMES[i]%-*}\":${PEER_PIDS[i]}"; done
	echo "{$s}"
}

# Lines our programs logged at warn or above (info and debug lines are not problems).
scan_logs() { # TAG
	local f n
	for f in "$RUN/logs/relay-$1.log" "$RUN/logs/proxy-$1.log" "$RUN/logs/client-$1.log"; do
		[ -s "$f" ] || continue
		n=$(grep -ciE '(^|[^a-z])(warn|warning|error|fatal|crit)' "$f")
		[ "$n" -gt 0 ] || continue
		problem note "$(basename "$f" .log): $n warning/error lines, e.g. $(grep -iE '(^|[^a-z])(warn|warning|error|fatal|crit)' "$f" | head -n 3 | paste -sd '|')"
	done
}

run_path() { # REP PEER
	local rep=$1 peer=$2 dir t0 ok=1
	dir=$RUN/raw/r$rep/$peer
	mkdir -p "$dir"
	t0=$SECONDS
	isolated || die "the client host reaches the LAN before $peer started (rep $rep): isolation broken"
	say "rep $rep/$REPS: $peer"
	case $peer in
	ours) start_ours "r$rep" || ok=0 ;;
	*) "start_$peer" || ok=0 ;;
	esac
	if [ $ok = 1 ] && ! wait_ready "$TARGET" 20; then
		ok=0
	fi
	if [ $ok = 0 ]; then
		if [ "$peer" = ours ]; then
			problem fail "rep $rep: ours did not carry traffic (echo and HTTP to $VIRT_IP)"
		else
			problem warn "rep $rep: $peer did not start or carry traffic"
		fi
		printf '{"status":"error","target":"%s"}\n' "$TARGET" >"$dir/path.json"
		stop_path "$peer"
		[ "$peer" = ours ] && scan_logs "r$rep"
		return 0
	fi
	if [ "$peer" = ours ]; then
		sleep 0.5
		"$PY" "$BENCH_DIR/procmon.py" mem "${PEER_PIDS[@]}" >"$dir/idle.json"
	fi
	local o0 o1 w0 w1
	o0=$(others_now) w0=$EPOCHREALTIME
	sampler_start "$dir/mem.json"
	iperf "$dir" iperf_fwd
	iperf "$dir" iperf_rev -R
	iperf "$dir" iperf_p8 -P 8
	wrk_run "$dir" wrk_close -H "Connection: close"
	wrk_run "$dir" wrk_ka
	measure "$dir" rtt 30 "$PROBE" rtt "$TARGET" "$ECHO_PORT" -n "$RTT_N" -s "$MSG" -w 100 -t 20
	measure "$dir" ttfb 30 "$PROBE" ttfb "$TARGET" "$ECHO_PORT" -n "$TTFB_N" -s "$MSG" -t 20
	sampler_stop
	o1=$(others_now) w1=$EPOCHREALTIME
	local carried=1
	ready "$TARGET" || carried=0
	printf '{"status":"ok","target":"%s","pids":%s,"after_ok":%s,"order":%d,"t0":%s,"t1":%s,"others0":%s,"others1":%s}\n' \
		"$TARGET" "$(pids_json)" "$([ $carried = 1 ] && echo true || echo false)" "$ORDER_POS" \
		"$w0" "$w1" "$o0" "$o1" >"$dir/path.json"
	if [ $carried = 0 ]; then
		if [ "$peer" = ours ]; then problem fail "rep $rep: ours stopped carrying traffic during the run"; else problem warn "rep $rep: $peer stopped carrying traffic"; fi
	fi
	stop_path "$peer"
	[ "$peer" = ours ] && scan_logs "r$rep"
	say "  $peer done in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------------------ scale test

flows_now() { # NS FILTER: how many established TCP sockets match
	timeout 10 ss -N "$1" -tnH state established "$2" 2>/dev/null | wc -l
}

# wait_drained: until neither the client nor the LAN holds one of the flows (at most 30 s);
# prints the seconds that took, -1 when they never all went.
wait_drained() {
	local t0=$SECONDS i
	for ((i = 0; i < 300; i++)); do
		if [ "$(flows_now "$NS_CLI" "( sport = :$CLIENT_PORT )")" = 0 ] &&
			[ "$(flows_now "$NS_LAN" "( dport = :$ECHO_PORT )")" = 0 ]; then
			echo $((SECONDS - t0))
			return 0
		fi
		sleep 0.1
	done
	echo -1
}

# hold_start BASE ROUNDS [PAUSE]: `probe hold` with SCALE flows in the background (LOAD_PID),
# its descriptor limit raised for it alone; output to BASE.out, BASE.err.
hold_start() {
	local base=$1 rounds=$2 pause=${3:-} limit=$((SCALE / SCALE_RATE + 90))
	(
		ulimit -n $((SCALE + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
		exec timeout -k 2 $((limit + 10)) ip netns exec "$NS_CLI" "$PROBE" hold "$VIRT_IP" \
			"$ECHO_PORT" -c "$SCALE" -r "$rounds" -R "$SCALE_RATE" ${pause:+-p "$pause"} -t "$limit"
	) >"$base.out" 2>"$base.err" &
	LOAD_PID=$!
}
hold_wait() { # the exit status of the probe started by hold_start
	local rc
	wait "$LOAD_PID"
	rc=$?
	LOAD_PID=""
	return $rc
}

mem_of_path() { "$PY" "$BENCH_DIR/procmon.py" mem "${PEER_PIDS[@]}" >"$1"; }

# N flows through one client, relay and proxy, all open at once. Pass 1: open them, one echo
# round (so every flow reached the LAN), RSS with all open, two more rounds, close, RSS after.
# Pass 2: the same flows once more (one round), RSS after: memory that a second pass adds
# again is not merely kept by the allocator for reuse.
# Our programs give freed memory back to the system every 5 s (libtn/proc.c), not at each free:
# RSS "after" is read once that has happened.
TRIM_WAIT=6
scale_test() {
	local dir=$RUN/scale n=$SCALE line i flows_cli=0 flows_lan=0 drain1 drain2 rc1 rc2 after=false
	mkdir -p "$dir"
	isolated || die "the client host reaches the LAN before the scale test: isolation broken"
	say "scale: $n flows through ours"
	if ! start_ours scale || ! wait_ready "$VIRT_IP" 20; then
		problem fail "scale: ours did not carry traffic"
		stop_path ours
		scan_logs scale
		return 0
	fi
	sleep 1
	mem_of_path "$dir/before.json"
	sampler_start "$dir/mem.json"
	hold_start "$dir/hold" 3 60
	line=""
	for ((i = 0; i < (n / SCALE_RATE + 100) * 10; i++)); do
		line=$(grep -m1 '^holding ' "$dir/hold.err" 2>/dev/null)
		[ -n "$line" ] && break
		alive "$LOAD_PID" || break
		sleep 0.1
	done
	if [ -n "$line" ]; then
		sleep 0.5
		mem_of_path "$dir/open.json"
		flows_cli=$(flows_now "$NS_CLI" "( sport = :$CLIENT_PORT )")
		flows_lan=$(flows_now "$NS_LAN" "( dport = :$ECHO_PORT )")
		kill -USR1 "${line##* }" 2>/dev/null
	fi
	hold_wait
	rc1=$?
	drain1=$(wait_drained)
	sleep "$TRIM_WAIT"
	mem_of_path "$dir/after.json"
	hold_start "$dir/hold2" 1
	hold_wait
	rc2=$?
	drain2=$(wait_drained)
	sleep "$TRIM_WAIT"
	mem_of_path "$dir/after2.json"
	sampler_stop
	ready "$VIRT_IP" && after=true
	printf '{"n":%d,"rate":%d,"rc":%d,"rc2":%d,"pids":%s,"flows_client":%d,"flows_lan":%d,"drain_s":%d,"drain2_s":%d,"after_ok":%s}\n' \
		"$n" "$SCALE_RATE" "$rc1" "$rc2" "$(pids_json)" "$flows_cli" "$flows_lan" "$drain1" "$drain2" "$after" >"$dir/scale.json"
	[ "$rc1" = 0 ] || problem fail "scale: not every one of $n flows answered: $(tr -d '\n' <"$dir/hold.out" | head -c 600) $(grep -v '^holding' "$dir/hold.err" | head -c 300)"
	[ "$rc2" = 0 ] || problem fail "scale, second pass: not every one of $n flows answered: $(tr -d '\n' <"$dir/hold2.out" | head -c 600) $(head -c 300 "$dir/hold2.err")"
	[ "$drain1" -ge 0 ] && [ "$drain2" -ge 0 ] || problem fail "scale: flows still established 30 s after the probe closed them"
	[ "$after" = true ] || problem fail "scale: ours carries no traffic after the scale test"
	stop_path ours
	scan_logs scale
}

# ------------------------------------------------------------------------------ main

host_info() {
	local p
	{
		printf 'kernel\t%s\n' "$(uname -r)"
		printf 'cpus\t%s\n' "$(nproc)"
		printf 'cpu_model\t%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
		printf 'mem_mib\t%s\n' "$(free -m | awk '/^Mem:/ { print $2 }')"
		printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf 'os\t%s\n' "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
		printf 'commit\t%s\n' "$(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT_DIR" diff --quiet HEAD -- 2>/dev/null || echo +dirty)"
		for p in iperf3 wrk nginx-light socat stunnel4 openssl libssl3 libnghttp2-14 libev4; do
			printf 'pkg_%s\t%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"
		done
	} >"$RUN/host.tsv"
}

main() {
	local t_start=$SECONDS rep i k n=${#PEER_LIST[@]} order
	INIT_DONE=1
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	RUN=$(mktemp -d -t tn-bench.XXXXXX) || die "mktemp failed"
	chmod 755 "$RUN" # nginx's worker (nobody) reads www/
	mkdir -p "$RUN/logs" "$RUN/raw" "$(dirname "$OUT")" || die "cannot create $(dirname "$OUT")"
	: >"$RUN/problems.tsv"
	say "run directory $RUN; paths: ${PEER_LIST[*]}; reps $REPS, ${DURATION} s, scale $SCALE"
	reap_stale
	host_info
	timeout 30 "$BIN/certs-tool/certs-tool" --out "$RUN/certs" --server-ip "$RELAY_CLI_IP" \
		--server-ip "$RELAY_LAN_IP" >"$RUN/logs/certs-tool.log" 2>&1 ||
		die "certs-tool failed: $(tail -n 3 "$RUN/logs/certs-tool.log")"
	make_www
	make_stunnel
	topology_up || die "could not build the namespaces"
	NS_INODES=$(for ns in $NAMESPACES; do ip netns exec "$ns" stat -L -c %i /proc/self/ns/net; done | tr '\n' ' ')
	start_services
	isolated || die "the client host reaches the LAN without any tunnel: isolation broken"
	busy_check

	local orders=""
	for ((rep = 1; rep <= REPS; rep++)); do
		order=""
		for ((i = 0; i < n; i++)); do
			k=$(((i + rep - 1) % n))
			ORDER_POS=$i
			order+="${order:+ }${PEER_LIST[k]}"
			run_path "$rep" "${PEER_LIST[k]}"
		done
		orders+="${orders:+,}\"$order\""
	done
	[ "$SCALE" -gt 0 ] && scale_test

	local wall=$((SECONDS - t_start))
	cat >"$RUN/config.json" <<-EOF
		{"stamp":"$STAMP","reps":$REPS,"duration_s":$DURATION,"smoke":$([ "$SMOKE" = 1 ] && echo true || echo false),
		 "paths":["$(echo "${PEER_LIST[*]}" | sed 's/ /","/g')"],"orders":[$orders],
		 "scale":$SCALE,"scale_rate":$SCALE_RATE,"rtt_n":$RTT_N,"ttfb_n":$TTFB_N,"msg_bytes":$MSG,
		 "wrk":"-t2 -c32","log_level":"$LOG_LEVEL","wall_s":$wall,
		 "lan_target":"$LAN_IP","virtual_target":"$VIRT_IP"}
	EOF
	printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN/host.tsv"
	say "measured in $wall s; report:"
	"$PY" "$BENCH_DIR/report.py" "$RUN" "$OUT"
	local rc=$?
	say "results: $OUT"
	[ "$rc" = 0 ] || say "FAILED: ours failed a check (see above)"
	return "$rc"
}

main
exit $?
