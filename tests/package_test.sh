#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# package_test.sh: builds the Debian package of a build tree with CPack and checks it.
#
#   - its control fields, and that Depends names exactly the packages that own the shared
#     libraries the four programs link directly (readelf NEEDED, ldd, dpkg -S), plus iptables;
#   - its files (programs, units, sysusers.d, configs as conffiles, man pages);
#   - apt resolves its Depends on this machine (apt-get install --simulate);
#   - `dpkg --root` installs it into an empty root (maintainer scripts run chrootless, with
#     DPKG_ROOT, so postinst creates the user tunnel there), each program's --version runs
#     inside that root with chroot (only the libraries it loads copied next to it), each man
#     page documents every option of --help; removing keeps the configs, purging removes them.
#
# Usage: tests/package_test.sh BUILD_DIR [--no-man]    (root: dpkg --root, chroot)
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or a Debian tool missing).
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [--no-man]}
build=$(cd "$build" && pwd)
check_man=1
[ "${2:-}" = --no-man ] && check_man=0
PROGRAMS=(server proxy client certs-tool)

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
pass() { echo "ok: $*"; }

[ "$(id -u)" = 0 ] || {
	echo "SKIP: needs root (dpkg --root, chroot)"
	exit 77
}
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps apt-get ldd readelf chroot; do
	command -v "$tool" >/dev/null || {
		echo "SKIP: $tool is missing (deploy/install-deps.sh)"
		exit 77
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tn-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- build it ---
timeout 120 cpack --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
	{ cat "$tmp/cpack.log" >&2; fail "cpack"; }
debs=("$tmp"/out/*.deb)
[ "${#debs[@]}" = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made ${#debs[@]} .deb files: ${debs[*]}"
deb=${debs[0]}
pass "cpack built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# --- control fields ---
field() { dpkg-deb --field "$deb" "$1"; }
version=$("$build/server/server" --version | awk '{print $2}')
[ "$(field Package)" = tunnel ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version '$(field Version)', the programs say $version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture '$(field Architecture)'"
[ -n "$(field Maintainer)" ] && [ -n "$(field Description)" ] || fail "no Maintainer or Description"

# The package that owns a library file (usr-merged systems list either /lib or /usr/lib).
owner() {
	local f=$1 p
	for p in "$f" "$(readlink -f "$f")" "${f#/usr}" "/usr${f#/usr}"; do
		dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
	done
	return 1
}
# The files of the libraries |1| names itself (its NEEDED entries, as ldd resolves them): what
# the package must depend on; a library's own dependencies are its package's business.
direct_libs() {
	local needed
	needed=$(readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
	ldd "$1" | awk -v needed="$needed" 'BEGIN { n = split(needed, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		$2 == "=>" && $3 ~ /^\// && ($1 in want) {print $3}'
}
declare -A want=([iptables]=1)
for prog in "${PROGRAMS[@]}"; do
	while read -r lib; do
		pkg=$(owner "$lib") || fail "$prog loads $lib, which no package owns"
		want[$pkg]=1
	done < <(direct_libs "$build/$prog/$prog")
done
depends=$(field Depends)
got=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/[ (].*//' | grep . | sort -u)
expected=$(printf '%s\n' "${!want[@]}" | sort -u)
[ "$got" = "$expected" ] ||
	fail "Depends: $depends; the programs link libraries of: $(tr "\n" " " <<<"$expected")"
pass "Depends: $depends"

# --- files ---
dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/files"
need=(/usr/lib/sysusers.d/tunnel.conf /etc/tunnel/server.yaml /etc/tunnel/proxy.yaml /etc/tunnel/client.yaml)
for prog in "${PROGRAMS[@]}"; do
	need+=("/usr/bin/$prog")
	[ "$check_man" = 1 ] && need+=("/usr/share/man/man1/$prog.1.gz")
done
for unit in tunnel-server tunnel-proxy tunnel-client; do
	need+=("/usr/lib/systemd/system/$unit.service")
done
for f in "${need[@]}"; do
	grep -qxF "$f" "$tmp/files" || fail "the package lacks $f"
done
if grep -v -e '/$' -e '^/usr/bin/' -e '^/usr/share/man/man1/' -e '^/usr/lib/systemd/system/' \
	-e '^/usr/lib/sysusers.d/' -e '^/etc/tunnel/' "$tmp/files" >"$tmp/stray"; then
	fail "the package holds files nobody asked for: $(tr '\n' ' ' <"$tmp/stray")"
fi
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | sort >"$tmp/conffiles"
printf '/etc/tunnel/%s.yaml\n' client proxy server >"$tmp/conffiles.want"
cmp -s "$tmp/conffiles" "$tmp/conffiles.want" || fail "conffiles: $(tr '\n' ' ' <"$tmp/conffiles")"
pass "${#need[@]} files present, configs are conffiles"

# --- apt resolves the dependencies here (a simulation: no need to take the lock from an apt
# that may be running) ---
timeout 60 apt-get install --simulate -o Debug::NoLocking=1 "$deb" >"$tmp/apt.log" 2>&1 ||
	{ cat "$tmp/apt.log" >&2; fail "apt-get install --simulate"; }
grep -q '^Conf tunnel ' "$tmp/apt.log" || { cat "$tmp/apt.log" >&2; fail "apt would not configure tunnel"; }
pass "apt-get install --simulate resolves the Depends"

# --- install into an empty root ---
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
# The root holds none of the Depends (the libraries are this machine's): only that check is
# forced.  Maintainer scripts run outside the root, told where it is by DPKG_ROOT.
dpkg_root() { timeout 60 dpkg --root="$root" --force-script-chrootless --force-depends "$@"; }
dpkg_root -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --root -i"; }
dpkg --root="$root" -s tunnel | grep -qx 'Status: install ok installed' || fail "not installed in the root"
grep -q '^tunnel:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$root/etc/passwd" ||
	fail "postinst made no user tunnel in the root's /etc/passwd"
pass "dpkg --root installed it; postinst created the user tunnel in the root"

# Each program runs in the root with chroot: the dynamic loader and the libraries it loads are
# copied to the same paths, nothing else.
for prog in "${PROGRAMS[@]}"; do
	ldd "$root/usr/bin/$prog" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
		while read -r lib; do
			[ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
		done
done
for prog in "${PROGRAMS[@]}"; do
	out=$(timeout 10 chroot "$root" "/usr/bin/$prog" --version 2>&1) || fail "chroot: $prog --version: $out"
	[ "$out" = "$prog $version" ] || fail "$prog --version in the root says '$out'"
done
pass "in the root: $(for p in "${PROGRAMS[@]}"; do printf '%s --version, ' "$p"; done)all $version"

# Every option of --help is in the man page.
if [ "$check_man" = 1 ]; then
	for prog in "${PROGRAMS[@]}"; do
		page=$root/usr/share/man/man1/$prog.1.gz
		gzip -dc "$page" | sed 's/\\-/-/g' >"$tmp/$prog.1"
		grep -q "^\.TH ${prog^^} \"1\"" "$tmp/$prog.1" || fail "$prog.1 has no .TH header"
		grep -q '^\.SH SYNOPSIS' "$tmp/$prog.1" || fail "$prog.1 has no SYNOPSIS"
		n=0
		for opt in $("$build/$prog/$prog" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
			grep -qF -- "$opt" "$tmp/$prog.1" || fail "$prog.1 does not document $opt"
			n=$((n + 1))
		done
		[ "$n" -ge 2 ] || fail "$prog --help lists $n options"
	done
	pass "the four man pages document every option of their program's --help"
fi

# --- remove, purge ---
dpkg_root -r tunnel >>"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --root -r"; }
[ ! -e "$root/usr/bin/server" ] && [ ! -e "$root/usr/lib/systemd/system/tunnel-server.service" ] ||
	fail "remove left the programs or units"
[ -f "$root/etc/tunnel/server.yaml" ] || fail "remove took the configs (conffiles stay until purge)"
dpkg_root -P tunnel >>"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --root -P"; }
[ ! -e "$root/etc/tunnel/server.yaml" ] || fail "purge left /etc/tunnel/server.yaml"
pass "remove keeps the configs, purge removes them"
echo "package_test: ok"
