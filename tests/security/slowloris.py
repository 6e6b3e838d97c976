#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""slowloris.py: a slow-handshake attacker for the relay's tests.

Opens N TCP connections to HOST:PORT and holds them half-open: even-numbered ones send nothing,
odd-numbered ones send the first half of a real TLS 1.3 ClientHello and then nothing more.  It
prints "holding N" once every connection is up, then waits (at most --hold seconds) for the
peer to close each one, and prints "closed K of N after T s" with the time the last close
took.  Exit status 0 when every connection was closed by the peer within --hold, else 1.
"""
import argparse
import resource
import select
import socket
import ssl
import sys
import time


def half_client_hello():
    """The first half of the ClientHello a TLS 1.3 client would send (from a memory BIO)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    if len(hello) < 10 or hello[0] != 0x16:
        sys.exit("slowloris: could not make a ClientHello")
    return hello[: len(hello) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("-n", type=int, default=500, help="connections to hold")
    ap.add_argument("--hold", type=float, default=30.0, help="wait this long for the closes")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.n + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    half = half_client_hello()
    socks = []
    start = time.monotonic()
    for i in range(args.n):
        s = socket.create_connection((args.host, args.port), timeout=5)
        if i % 2 == 1:
            s.sendall(half)
        s.setblocking(False)
        socks.append(s)
    print(f"holding {len(socks)} ({len(half)} bytes of a ClientHello on half of them)",
          flush=True)
    open_socks = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in open_socks:
        poller.register(fd, select.POLLIN)
    last = 0.0
    deadline = start + args.hold
    while open_socks and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = open_socks[fd]
            try:
                data = s.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if data:  # a handshake reply or an alert: keep waiting for the close
                continue
            poller.unregister(fd)
            del open_socks[fd]
            s.close()
            last = time.monotonic() - start
    closed = len(socks) - len(open_socks)
    print(f"closed {closed} of {len(socks)} after {last:.1f} s", flush=True)
    for s in open_socks.values():
        s.close()
    return 0 if not open_socks else 1


if __name__ == "__main__":
    sys.exit(main())
