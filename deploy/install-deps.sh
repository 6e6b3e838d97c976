#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install-deps.sh: installs, from Debian's packages, what building, running and testing the
# tunnel needs.  Idempotent; used by the quick start, tests/run.sh and CI.
set -euo pipefail

PKGS=(
	# build
	cmake gcc make pkg-config protobuf-c-compiler
	libssl-dev libnghttp2-dev libprotobuf-c-dev libev-dev libyaml-dev
	libnetfilter-queue-dev libmnl-dev libcmocka-dev
	# run (client) and test
	iptables iproute2 openssl curl python3 python3-yaml procps
	# man pages, the Debian package and its test, the systemd units' test
	help2man man-db dpkg-dev apt systemd
	# test: /metrics through the Prometheus client's parser; the dashboard in headless Chromium
	python3-prometheus-client python3-websocket chromium
	# test: UDP, ICMP (dig, dnsmasq, iperf3, ping) and the packet parser's fuzz target (clang)
	bind9-dnsutils dnsmasq-base iperf3 iputils-ping clang
	# fuzz tests (tests/fuzz: clang with libFuzzer); setpriv for the privilege test
	libclang-rt-dev util-linux
)

[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (sudo)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
echo "install-deps.sh: ${#PKGS[@]} packages present"
