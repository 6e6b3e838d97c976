#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""badinput.py: a burst of bad input against the relay, from connections of every kind.

    badinput.py HOST PORT CERTDIR [--rounds N]

Per round: garbage bytes instead of TLS, half a ClientHello then close, and over mutual TLS
with the client certificate (CERTDIR/client, CA CERTDIR/ca) speaking HTTP/2 by hand: a PING
flood, a SETTINGS flood, rapid reset (HEADERS then RST_STREAM, many times), an unknown method,
a GET, a gRPC message announcing 2 GiB, an Open cut short by END_STREAM, DATA before any Open,
an undecodable Open, a request whose headers exceed the relay's limit (16 KiB by default), a
60 kB header block in CONTINUATION frames, and 300 streams that never send their Open.  Every connection is closed at the
end (or by the relay before).  Prints one line per kind with what the relay did; exits 0
unless the relay could not be reached at all.
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING = 0, 1, 3, 4, 6
END_STREAM, END_HEADERS = 1, 4


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hlen(n):
    """An HPACK string length (7-bit prefix integer, no Huffman)."""
    if n < 127:
        return bytes([n])
    out, n = bytes([127]), n - 127
    while n >= 128:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def hpack(headers):
    """Literal header fields without indexing, new names: no HPACK state needed."""
    return b"".join(b"\x00" + hlen(len(k)) + k + hlen(len(v)) + v for k, v in headers)


def request(path, method=b"POST", extra=()):
    return hpack([(b":method", method), (b":scheme", b"https"), (b":path", path),
                  (b":authority", b"relay"), (b"content-type", b"application/grpc"),
                  (b"te", b"trailers")] + list(extra))


CONNECT = b"/tunnel.v1.Relay/Connect"
CONTINUATION = 9


def headers_split(sid, block, end_stream=False):
    """HEADERS and CONTINUATION frames of at most 16000 bytes (the default frame size)."""
    parts = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    out = b""
    for i, part in enumerate(parts):
        flags = END_HEADERS if i == len(parts) - 1 else 0
        if i == 0:
            out += frame(HEADERS, flags | (END_STREAM if end_stream else 0), sid, part)
        else:
            out += frame(CONTINUATION, flags, sid, part)
    return out


def grpc_msg(payload, length=None):
    return b"\x00" + struct.pack(">I", len(payload) if length is None else length) + payload


class Peer:
    def __init__(self, host, port, ctx):
        raw = socket.create_connection((host, port), timeout=5)
        self.s = ctx.wrap_socket(raw, server_hostname=None)
        self.s.settimeout(5)
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        self.sid = 1

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def next_sid(self):
        sid = self.sid
        self.sid += 2
        return sid

    def closed_by_peer(self, wait):
        """Reads until the relay closes (True) or |wait| seconds pass (False)."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self.s.settimeout(max(0.05, deadline - time.monotonic()))
                if not self.s.recv(65536):
                    return True
        except socket.timeout:
            return False
        except (OSError, ssl.SSLError):
            return True
        return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def raw_conn(host, port, data):
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(data)
        s.settimeout(5)
        while s.recv(4096):
            pass
        return "closed"
    except socket.timeout:
        return "still open after 5 s"
    except OSError:
        return "reset"
    finally:
        s.close()


def half_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = o.read()
    return hello[: len(hello) // 2]


def h2_cases():
    """(name, bytes to send after the preface, whether the relay must close the connection)."""
    cases = []
    cases.append(("ping flood", b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(20000)), None))
    cases.append(("settings flood", frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100)) * 20000, None))
    rr = b""
    for k in range(3000):
        sid = 1 + 2 * k
        rr += frame(HEADERS, END_HEADERS, sid, request(CONNECT)) + frame(RST, 0, sid, struct.pack(">I", 8))
    cases.append(("rapid reset", rr, None))
    cases.append(("unknown method", frame(HEADERS, END_HEADERS | END_STREAM, 1, request(b"/tunnel.v1.Relay/Bogus")), False))
    cases.append(("GET", frame(HEADERS, END_HEADERS | END_STREAM, 1, request(CONNECT, method=b"GET")), False))
    cases.append(("2 GiB message", frame(HEADERS, END_HEADERS, 1, request(CONNECT)) +
                  frame(DATA, 0, 1, grpc_msg(b"\x0a\x00" * 100, length=0x7FFFFFFF)), False))
    cases.append(("truncated Open", frame(HEADERS, END_HEADERS, 1, request(CONNECT)) +
                  frame(DATA, END_STREAM, 1, grpc_msg(b"\x0a\x10abc", length=18)[:9]), False))
    cases.append(("Data before Open", frame(HEADERS, END_HEADERS, 1, request(CONNECT)) +
                  frame(DATA, 0, 1, grpc_msg(b"\x1a\x03abc")), False))
    cases.append(("undecodable Open", frame(HEADERS, END_HEADERS, 1, request(CONNECT)) +
                  frame(DATA, 0, 1, grpc_msg(b"\x0a\xff\xff\xff\xff\x0f")), False))
    big = request(CONNECT, extra=[(b"x-junk", b"a" * 60000)])
    cases.append(("60 kB header block", headers_split(1, big), None))
    cases.append(("20 kB header list", headers_split(1, request(CONNECT, extra=[
        (b"x-junk", b"b" * 15000), (b"x-more", b"c" * 5000)]), end_stream=True), False))
    many = b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * k, request(CONNECT)) for k in range(300))
    cases.append(("300 streams without Open", many, None))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("certdir")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(a.certdir, "ca", "cert.pem"))
    ctx.load_cert_chain(os.path.join(a.certdir, "client", "cert.pem"),
                        os.path.join(a.certdir, "client", "key.pem"))
    ctx.set_alpn_protocols(["h2"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    half = half_hello()
    seen = {}
    for r in range(a.rounds):
        for n in range(5):
            seen.setdefault("garbage", set()).add(raw_conn(a.host, a.port, os.urandom(64 + 100 * n)))
            seen.setdefault("half ClientHello, closed", set()).add("sent")
            s = socket.create_connection((a.host, a.port), timeout=5)
            s.sendall(half)
            s.close()
        for name, data, must_close in h2_cases():
            p = Peer(a.host, a.port, ctx)
            ok = p.send(data)
            wait = 1.0 if must_close is None else 0.5
            if name == "300 streams without Open":
                wait = 3.0  # well past the relay's open timeout (1 s), however slow the build
            closed = p.closed_by_peer(wait)
            if must_close is False and closed:
                print(f"FAIL: {name}: the relay closed the whole connection", file=sys.stderr)
                return 1
            seen.setdefault(name, set()).add("relay closed" if closed or not ok else "stream refused, connection kept")
            p.close()
    for name, what in seen.items():
        print(f"{name}: {', '.join(sorted(what))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
