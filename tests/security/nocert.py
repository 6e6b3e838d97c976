#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""nocert.py: one TLS connection to the relay without a client certificate, many requests on it.

    nocert.py HOST PORT [--requests N] [--path PATH] [--wait SECONDS] [--connections K] [--pong]

Completes TLS 1.3 (ALPN h2, the relay's certificate not checked), then sends the HTTP/2 preface,
SETTINGS and N gRPC requests for PATH (HEADERS with END_STREAM, stream 1, 3, ...) at once, and
reads until the relay closes the connection or SECONDS pass.  Prints one line:

    answered=A goaway=yes|no closed=yes|no how=WHAT

A: the responses (HEADERS on a stream) received; closed: whether the relay ended the connection
(WHAT: eof, a TLS error's text, reset) or still held it open after SECONDS.  With K, K such
connections one after the other, a line each.  With --pong, the relay's PINGs are answered, as
a live peer's HTTP/2 library would: only the relay's own rules can then end the connection.
Exits 0 unless the relay could not be reached or
a handshake failed.
"""
import argparse
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, SETTINGS, PING, GOAWAY = 1, 4, 6, 7
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack(headers):
    """Literal header fields without indexing, new names (all shorter than 127 bytes)."""
    return b"".join(b"\x00" + bytes([len(k)]) + k + bytes([len(v)]) + v for k, v in headers)


def one(a, ctx):
    try:
        s = ctx.wrap_socket(socket.create_connection((a.host, a.port), timeout=5))
    except OSError as e:
        print(f"cannot connect: {e}", file=sys.stderr)
        return 1
    block = hpack([(b":method", b"POST"), (b":scheme", b"https"), (b":path", a.path.encode()),
                   (b":authority", b"relay"), (b"content-type", b"application/grpc"),
                   (b"te", b"trailers")])
    out = PREFACE + frame(SETTINGS, 0, 0)
    for i in range(a.requests):
        out += frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, block)
    answered, goaway, closed, how, buf = 0, False, False, "", b""
    try:
        s.sendall(out)
        deadline = time.monotonic() + a.wait
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            if not data:
                closed, how = True, "eof"
                break
            buf += data
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                answered += ftype == HEADERS and sid != 0
                goaway |= ftype == GOAWAY
                if a.pong and ftype == PING and not flags & ACK:
                    s.sendall(frame(PING, ACK, 0, buf[9:9 + n]))
                buf = buf[9 + n:]
    except ssl.SSLError as e:
        closed, how = True, f"TLS: {e.reason or e}"
    except OSError as e:
        closed, how = True, f"{type(e).__name__}: {e}"
    finally:
        s.close()
    print(f"answered={answered} goaway={'yes' if goaway else 'no'} closed={'yes' if closed else 'no'}"
          f" how={how or 'still open'}", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--path", default="/tunnel.v1.Relay/Connect")
    ap.add_argument("--wait", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--pong", action="store_true", help="answer the relay's PINGs")
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(a.connections):
        if one(a, ctx) != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
