#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks certs-tool's files against the openssl command line: layout, modes, chains, identity
# URIs, key usages, reruns and every refusal.  Usage: certs_tool_test.sh PATH/TO/certs-tool
set -euo pipefail

tool=$(realpath "${1:?usage: $0 PATH/TO/certs-tool}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

T() { timeout 30 "$tool" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# Runs the tool expecting exit status $1 and a message matching $2 on stderr.
expect_fail() {
    local want=$1 pattern=$2 rc=0
    shift 2
    T "$@" >out.txt 2>err.txt || rc=$?
    [[ $rc == "$want" ]] || fail "certs-tool $* exited $rc, expected $want: $(cat err.txt)"
    grep -qE -- "$pattern" err.txt || fail "certs-tool $*: no '$pattern' in: $(cat err.txt)"
    [[ $(wc -l <err.txt) == 1 ]] || fail "certs-tool $*: not one line: $(cat err.txt)"
    pass "refused: certs-tool $* ($(cat err.txt))"
}

mode() { stat -c %a "$1"; }
fingerprint() { timeout 10 openssl x509 -in "$1" -noout -fingerprint -sha256; }
ext() { timeout 10 openssl x509 -in "$1" -noout -ext "$2"; }

# Checks one leaf pair: modes, key type, chain to the CA, identity, SANs and key usages.
check_leaf() {
    local dir=$1 ca=$2 role=$3 id=$4 eku purpose
    [[ $(mode "$dir/key.pem") == 600 ]] || fail "$dir/key.pem mode $(mode "$dir/key.pem")"
    [[ $(mode "$dir/cert.pem") == 644 ]] || fail "$dir/cert.pem mode $(mode "$dir/cert.pem")"
    [[ $(head -n1 "$dir/key.pem") == "-----BEGIN PRIVATE KEY-----" ]] || fail "$dir/key.pem not PKCS#8"
    timeout 10 openssl pkey -in "$dir/key.pem" -noout -text | grep -q 'ASN1 OID: prime256v1' ||
        fail "$dir/key.pem is not P-256"
    [[ $(ls -A "$dir" | tr '\n' ' ') == "cert.pem key.pem " ]] || fail "$dir has stray files: $(ls -A "$dir")"
    case $role in
    server) eku="TLS Web Server Authentication" purpose=sslserver ;;
    *) eku="TLS Web Client Authentication" purpose=sslclient ;;
    esac
    timeout 10 openssl verify -x509_strict -purpose "$purpose" -CAfile "$ca/cert.pem" "$dir/cert.pem" >/dev/null ||
        fail "$dir/cert.pem does not verify against $ca"
    timeout 10 openssl x509 -in "$dir/cert.pem" -noout -subject | grep -qx "subject=CN = $id" ||
        fail "$dir/cert.pem subject is not CN = $id"
    ext "$dir/cert.pem" subjectAltName | grep -q "URI:tunnel://$role/$id\(,\|$\)" ||
        fail "$dir/cert.pem lacks URI:tunnel://$role/$id"
    [[ $(ext "$dir/cert.pem" subjectAltName | grep -o 'URI:' | wc -l) == 1 ]] ||
        fail "$dir/cert.pem has more than one URI"
    [[ $(ext "$dir/cert.pem" extendedKeyUsage | tail -n1 | xargs) == "$eku" ]] ||
        fail "$dir/cert.pem EKU is not $eku"
    ext "$dir/cert.pem" basicConstraints | grep -q 'critical' || fail "$dir basicConstraints not critical"
    ext "$dir/cert.pem" basicConstraints | grep -q 'CA:FALSE' || fail "$dir is a CA"
    ext "$dir/cert.pem" keyUsage | grep -q 'critical' || fail "$dir keyUsage not critical"
    [[ $(ext "$dir/cert.pem" keyUsage | tail -n1 | xargs) == "Digital Signature" ]] ||
        fail "$dir keyUsage is not digitalSignature only"
    ext "$dir/cert.pem" subjectKeyIdentifier | grep -q ':' || fail "$dir lacks SKI"
    ext "$dir/cert.pem" authorityKeyIdentifier | grep -q ':' || fail "$dir lacks AKI"
    timeout 10 openssl x509 -in "$dir/cert.pem" -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA256' ||
        fail "$dir not signed with SHA-256"
    [[ $(T show "$dir/cert.pem" | sed -n 's/^role: *//p') == "$role" ]] || fail "show: role of $dir"
    [[ $(T show "$dir/cert.pem" | sed -n 's/^id: *//p') == "$id" ]] || fail "show: id of $dir"
    pass "$dir is $role/$id"
}

# --- help, version, usage errors ---
T --help | grep -q '^Usage: certs-tool' || fail "--help"
T issue --help | grep -q -- '--role ROLE' || fail "issue --help"
T --version | grep -qE '^certs-tool [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"
expect_fail 2 "unknown command 'frobnicate'.*see --help" frobnicate
expect_fail 2 "unknown option '--bogus'.*see --help" --bogus
expect_fail 2 "unknown option '--dns'.*see --help" init --dns x
expect_fail 2 "--out needs a value" --out
expect_fail 2 "needs --role and --id" issue --id a
expect_fail 2 "show needs a FILE" show
expect_fail 2 "unexpected argument 'extra'" init extra
[[ ! -e certs ]] || fail "a usage error created files"

# --- default layout ---
T >init1.txt
for d in ca server client proxy; do
    grep -q "^created  certs/$d: " init1.txt || fail "init did not report certs/$d: $(cat init1.txt)"
done
[[ $(mode certs/ca/key.pem) == 600 ]] || fail "CA key mode"
[[ $(mode certs/ca/cert.pem) == 644 ]] || fail "CA cert mode"
timeout 10 openssl x509 -in certs/ca/cert.pem -noout -subject | grep -Eqx 'subject=CN = tunnel CA [0-9a-f]{8}' || fail "CA subject"
ext certs/ca/cert.pem basicConstraints | grep -q 'critical' || fail "CA basicConstraints not critical"
ext certs/ca/cert.pem basicConstraints | grep -q 'CA:TRUE, pathlen:0' || fail "CA basicConstraints"
ext certs/ca/cert.pem keyUsage | grep -q 'critical' || fail "CA keyUsage not critical"
[[ $(ext certs/ca/cert.pem keyUsage | tail -n1 | xargs) == "Certificate Sign, CRL Sign" ]] || fail "CA keyUsage"
timeout 10 openssl verify -x509_strict -CAfile certs/ca/cert.pem certs/ca/cert.pem >/dev/null || fail "CA self-check"
check_leaf certs/server certs/ca server relay
check_leaf certs/client certs/ca client client-1
check_leaf certs/proxy certs/ca proxy proxy-1
for n in DNS:localhost 'IP Address:127.0.0.1' 'IP Address:0:0:0:0:0:0:0:1'; do
    ext certs/server/cert.pem subjectAltName | grep -q "$n" || fail "server cert lacks $n"
done
! ext certs/client/cert.pem subjectAltName | grep -q 'DNS:' || fail "client cert has DNS names"

# Serials: 128 random bits, distinct.
serial=$(timeout 10 openssl x509 -in certs/server/cert.pem -noout -serial | cut -d= -f2)
(( ${#serial} >= 30 && ${#serial} <= 32 )) || fail "serial $serial is not ~128 bits"
[[ $serial != $(timeout 10 openssl x509 -in certs/client/cert.pem -noout -serial | cut -d= -f2) ]] ||
    fail "equal serials"
# notBefore lies about five minutes in the past.
nb=$(date -d "$(timeout 10 openssl x509 -in certs/server/cert.pem -noout -startdate | cut -d= -f2)" +%s)
now=$(date +%s)
(( now - nb >= 290 && now - nb <= 400 )) || fail "notBefore is $((now - nb)) s ago, not ~300"
pass "CA, serials, validity"

# --- rerun keeps everything; a missing leaf is added; --force replaces leaves, never the CA ---
ca_fp=$(fingerprint certs/ca/cert.pem)
server_fp=$(fingerprint certs/server/cert.pem)
T init >init2.txt
[[ $(grep -c '^kept ' init2.txt) == 4 ]] || fail "rerun did not keep all: $(cat init2.txt)"
rm -r certs/client
T --out certs >init3.txt
grep -q '^created  certs/client: tunnel://client/client-1' init3.txt || fail "client not re-added"
grep -q '^kept     certs/server:' init3.txt || fail "server not kept"
[[ $(fingerprint certs/ca/cert.pem) == "$ca_fp" ]] || fail "CA changed on rerun"
[[ $(fingerprint certs/server/cert.pem) == "$server_fp" ]] || fail "server cert changed on rerun"
check_leaf certs/client certs/ca client client-1
T init --force >init4.txt
grep -q '^replaced certs/server:' init4.txt || fail "--force did not replace: $(cat init4.txt)"
[[ $(fingerprint certs/ca/cert.pem) == "$ca_fp" ]] || fail "CA changed with --force"
[[ $(fingerprint certs/server/cert.pem) != "$server_fp" ]] || fail "server cert kept with --force"
check_leaf certs/server certs/ca server relay
pass "rerun keeps the CA"

# A kept leaf must still fit what is asked; a mismatch is refused, not silently kept.
expect_fail 1 "is for tunnel://server/relay, not tunnel://server/relay-2; use --force" init --server-id relay-2
expect_fail 1 "lacks DNS:relay.example.com; use --force" init --server-dns relay.example.com
T init --server-id relay-2 --server-dns relay.example.com --force >/dev/null
check_leaf certs/server certs/ca server relay-2
ext certs/server/cert.pem subjectAltName | grep -q 'DNS:relay.example.com' || fail "--server-dns"

# --- issue ---
T issue --role proxy --id lan-1 --dns gw.lan --dns gw2.lan --ip 10.0.0.1 --ip fd00::1 --days 30 >issue1.txt
grep -q '^created  certs/proxy-lan-1: tunnel://proxy/lan-1' issue1.txt || fail "issue output: $(cat issue1.txt)"
check_leaf certs/proxy-lan-1 certs/ca proxy lan-1
san=$(ext certs/proxy-lan-1/cert.pem subjectAltName)
for n in DNS:gw.lan DNS:gw2.lan 'IP Address:10.0.0.1' 'IP Address:FD00:0:0:0:0:0:0:1'; do
    grep -q "$n" <<<"$san" || fail "issued cert lacks $n: $san"
done
! grep -q localhost <<<"$san" || fail "proxy cert has localhost"
end=$(date -d "$(timeout 10 openssl x509 -in certs/proxy-lan-1/cert.pem -noout -enddate | cut -d= -f2)" +%s)
(( end - now >= 30 * 86400 - 60 && end - now <= 30 * 86400 + 60 )) || fail "--days 30"
T issue --role server --id edge.1 --ca certs/ca --out other/edge --ip 192.0.2.7 >/dev/null
check_leaf other/edge certs/ca server edge.1
ext other/edge/cert.pem subjectAltName | grep -q 'IP Address:192.0.2.7' || fail "--ip on server"
T issue --role client --id c_2 >/dev/null
check_leaf certs/client-c_2 certs/ca client c_2
expect_fail 1 "already holds.*use --force" issue --role client --id c_2
T issue --role client --id c_2 --force | grep -q '^replaced ' || fail "issue --force"
check_leaf certs/client-c_2 certs/ca client c_2
pass "issue"

# --- bad input: one clear line, exit 1, nothing written ---
before=$(find . -path ./out.txt -prune -o -path ./err.txt -prune -o -print | sort | md5sum)
expect_fail 1 "--id: 'bad id' is not a valid id" issue --role client --id 'bad id'
expect_fail 1 "--id: 'a/b' is not a valid id" issue --role client --id a/b
expect_fail 1 "is not a valid id" issue --role client --id "$(printf 'x%.0s' {1..65})"
expect_fail 1 "--client-id: 'é' is not a valid id" init --client-id é
expect_fail 1 "--role: 'admin' is not a role" issue --role admin --id x
expect_fail 1 "--days: 'abc' is not a number of days" issue --role client --id x --days abc
expect_fail 1 "--days: '0' is not a number of days" issue --role client --id x --days 0
expect_fail 1 "--days: '-5' is not a number of days" issue --role client --id x --days=-5
expect_fail 1 "--days: '99999999999' is not a number of days" issue --role client --id x --days 99999999999
expect_fail 1 "--ca-days: '1x' is not a number of days" init --ca-days 1x
expect_fail 1 "--dns: 'bad_name' is not a DNS name" issue --role server --id x --dns bad_name
expect_fail 1 "--dns: 'a..b' is not a DNS name" issue --role server --id x --dns a..b
expect_fail 1 "--ip: '1.2.3' is not an IPv4 or IPv6 address" issue --role server --id x --ip 1.2.3
expect_fail 1 "--server-ip: 'x' is not an IPv4" init --server-ip x
expect_fail 1 "nowhere: no CA there" issue --role client --id x --ca nowhere
expect_fail 1 "is the CA directory" issue --role client --id x --out certs/ca --force
expect_fail 1 "No such file" show missing.pem
echo garbage >garbage.pem
expect_fail 1 "garbage.pem: not a PEM certificate" show garbage.pem
rm garbage.pem
after=$(find . -path ./out.txt -prune -o -path ./err.txt -prune -o -print | sort | md5sum)
[[ $before == "$after" ]] || fail "a refused command changed the tree"

# --- a CA key that does not belong to the CA cert, and a CA cert that is no CA ---
T --out other-deploy >/dev/null
mkdir mixed
cp certs/ca/cert.pem mixed/cert.pem
cp other-deploy/ca/key.pem mixed/key.pem
expect_fail 1 "mixed/key.pem does not belong to mixed/cert.pem" issue --role client --id x --ca mixed --out x
[[ ! -e x ]] || fail "mismatched CA wrote something"
expect_fail 1 "certs/client/cert.pem is not a CA certificate" issue --role client --id x --ca certs/client --out x
[[ ! -e x ]] || fail "non-CA wrote something"
# init keeps only leaves that belong to its CA and hold their own key; it never remakes a CA.
rm -r other-deploy/proxy
cp -r certs/proxy other-deploy/proxy
expect_fail 1 "other-deploy/proxy/cert.pem was not issued by this CA; use --force" init --out other-deploy
rm -r other-deploy/proxy
cp certs/client/key.pem other-deploy/server/key.pem
expect_fail 1 "other-deploy/server/key.pem does not match cert.pem; use --force" init --out other-deploy
rm other-deploy/server/key.pem
expect_fail 1 "other-deploy/server has cert.pem but no key.pem; use --force" init --out other-deploy
T init --out other-deploy --force >init5.txt
grep -q '^replaced other-deploy/server:' init5.txt || fail "--force on a broken pair: $(cat init5.txt)"
grep -q '^created  other-deploy/proxy:' init5.txt || fail "--force did not add proxy: $(cat init5.txt)"
check_leaf other-deploy/server other-deploy/ca server relay
check_leaf other-deploy/proxy other-deploy/ca proxy proxy-1
rm other-deploy/ca/key.pem
expect_fail 1 "other-deploy/ca has cert.pem but no key.pem" init --out other-deploy --force
[[ ! -e other-deploy/ca/key.pem ]] || fail "init remade a CA key"
pass "mismatched and non-CA certificates refused"

# --- revoke: revocations run one after the other; the CRL names its CA by key id and is dated
# back like certificates, for verifiers whose clock is behind ---
T --out rv >/dev/null
for i in 1 2 3 4 5 6 7 8; do T issue --role client --id "c$i" --ca rv/ca --out "rv/c$i" >/dev/null; done
for i in 1 2 3 4 5 6 7 8; do
    (rc=0; T revoke "rv/c$i/cert.pem" --ca rv/ca >/dev/null 2>&1 || rc=$?; echo "$rc" >"rv/rc$i") &
done
wait
[[ $(cat rv/rc* | sort -u) == 0 ]] || fail "a revoke run beside others failed: $(cat rv/rc*)"
n=$(timeout 10 openssl crl -in rv/ca/crl.pem -noout -text | grep -c 'Serial Number')
[[ $n == 8 ]] || fail "8 revokes run together left $n serials in the CRL"
[[ $(ls -A rv/ca | tr '\n' ' ') == "cert.pem crl.pem key.pem " ]] || fail "rv/ca has stray files: $(ls -A rv/ca)"
last=$(date -d "$(timeout 10 openssl crl -in rv/ca/crl.pem -noout -lastupdate | cut -d= -f2)" +%s)
(($(date +%s) - last >= 240)) || fail "the CRL's lastUpdate is not dated back"
ski=$(ext rv/ca/cert.pem subjectKeyIdentifier | tail -n1 | xargs)
timeout 10 openssl crl -in rv/ca/crl.pem -noout -text | grep -A1 'Authority Key Identifier' | grep -q "$ski" ||
    fail "the CRL does not carry its CA's key id"
[[ $(timeout 10 openssl x509 -in rv/ca/cert.pem -noout -subject) != "$(timeout 10 openssl x509 -in certs/ca/cert.pem -noout -subject)" ]] ||
    fail "two CAs have the same name"
expect_fail 1 "rv/ca/cert.pem is a CA certificate: a CA's own CRL cannot revoke it" revoke rv/ca/cert.pem --ca rv/ca
expect_fail 1 "--dns: '10.0.0.1' is an IP address: give it with --ip" issue --role server --id x --dns 10.0.0.1 --out x
expect_fail 1 "--server-dns: '::1' is an IP address: give it with --server-ip" init --out x --server-dns ::1
[[ ! -e x ]] || fail "a refused name wrote something"
# A file holding the CRLs of two CAs (a rotation): a revocation of one rewrites its CRL only.
cat rv/ca/crl.pem certs/ca/crl.pem >both.crl 2>/dev/null || {
    T issue --role client --id gone --ca certs/ca --out certs/gone >/dev/null
    T revoke certs/gone/cert.pem --ca certs/ca >/dev/null
    cat rv/ca/crl.pem certs/ca/crl.pem >both.crl
}
T issue --role client --id c9 --ca rv/ca --out rv/c9 >/dev/null
T revoke rv/c9/cert.pem --ca rv/ca --crl both.crl >/dev/null || fail "revoke into a file of two CRLs"
[[ $(grep -c 'BEGIN X509 CRL' both.crl) == 2 ]] || fail "the two-CRL file now holds $(grep -c 'BEGIN X509 CRL' both.crl)"
timeout 10 openssl crl -in certs/ca/crl.pem -outform DER | cmp -s - <(
    awk '/BEGIN X509 CRL/ {n++} n == 1' both.crl | timeout 10 openssl crl -outform DER) ||
    fail "the other CA's CRL was changed"
n=$(awk '/BEGIN X509 CRL/ {n++} n == 2' both.crl | timeout 10 openssl crl -noout -text | grep -c 'Serial Number')
[[ $n == 9 ]] || fail "the revoking CA's CRL holds $n serials, not 9"
# A damaged block: the file is refused and left as it is (what follows it would be lost).
{ cat rv/ca/crl.pem; printf -- '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'; cat certs/ca/crl.pem; } >damaged.crl
cp damaged.crl damaged.before
T issue --role client --id c10 --ca rv/ca --out rv/c10 >/dev/null
expect_fail 1 "damaged.crl: CRL #2 is not a readable PEM CRL" revoke rv/c10/cert.pem --ca rv/ca --crl damaged.crl
cmp -s damaged.crl damaged.before || fail "a refused revoke changed the damaged file"
# Two CRLs of one CA in a file (an older and a newer): the new one holds the entries of both.
T revoke rv/c10/cert.pem --ca rv/ca --crl one.crl >/dev/null
cat rv/ca/crl.pem one.crl >two.crl
T issue --role client --id c11 --ca rv/ca --out rv/c11 >/dev/null
T revoke rv/c11/cert.pem --ca rv/ca --crl two.crl >/dev/null || fail "revoke into a file of two CRLs of one CA"
[[ $(grep -c 'BEGIN X509 CRL' two.crl) == 1 ]] || fail "two CRLs of one CA were not made one"
n=$(timeout 10 openssl crl -in two.crl -noout -text | grep -c 'Serial Number')
[[ $n == 10 ]] || fail "the merged CRL holds $n serials, not 10 (8 + c10 + c11)"
# Two CAs revoking into one shared file at once: no revocation is lost.
for i in 1 2 3 4; do
    T issue --role client --id "s$i" --ca rv/ca --out "rv/s$i" >/dev/null
    T issue --role client --id "t$i" --ca certs/ca --out "certs/t$i" >/dev/null
done
for i in 1 2 3 4; do
    (T revoke "rv/s$i/cert.pem" --ca rv/ca --crl shared.crl >/dev/null 2>&1; echo $? >"rv/src$i") &
    (T revoke "certs/t$i/cert.pem" --ca certs/ca --crl shared.crl >/dev/null 2>&1; echo $? >"certs/trc$i") &
done
wait
[[ $(cat rv/src* certs/trc* | sort -u) == 0 ]] || fail "a revoke into the shared file failed"
n=0
for k in 1 2; do
    m=$(awk -v k="$k" '/BEGIN X509 CRL/ {n++} n == k' shared.crl | timeout 10 openssl crl -noout -text | grep -c 'Serial Number')
    n=$((n + m))
done
[[ $n == 8 ]] || fail "8 revocations by two CAs into one file at once left $n serials"
pass "revoke and names"

# --- a rerun of init renews a leaf that expired, and keeps the others ---
timeout 30 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=client-1 \
    -keyout rv/old-key.pem -out rv/old.csr 2>/dev/null
printf 'subjectAltName=URI:tunnel://client/client-1\n' >rv/old.ext
timeout 30 openssl x509 -req -in rv/old.csr -CA rv/ca/cert.pem -CAkey rv/ca/key.pem -days -1 \
    -extfile rv/old.ext -out rv/client/cert.pem 2>/dev/null
mv rv/old-key.pem rv/client/key.pem
rm rv/old.csr rv/old.ext
T init --out rv >init6.txt || fail "init over an expired leaf: $(cat init6.txt)"
grep -q '^replaced rv/client:' init6.txt || fail "init did not renew the expired leaf: $(cat init6.txt)"
grep -Eq '^kept +rv/server:' init6.txt || fail "init did not keep the valid leaves: $(cat init6.txt)"
check_leaf rv/client rv/ca client client-1
pass "init renews an expired leaf"

echo "all certs-tool checks passed"
