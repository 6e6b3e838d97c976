#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Traffic servers and clients for the end-to-end tests (python3 standard library only).

Servers run until killed; every client has a deadline and exits non-zero on any mismatch.
Deterministic streams: a block of PERIOD pseudo-random bytes drawn from SEED, repeated. PERIOD
is a prime, so no buffer size divides it and a lost, duplicated or reordered chunk changes the
hash.

  serve-echo PORT                    echo each connection's bytes back; shut write after EOF
  serve-sha PORT [--reply-bytes N]   read to EOF, then send "<sha256> <count>\\n" followed by N
                                     deterministic bytes (seed 7), then close
  serve-source PORT NBYTES SEED      send NBYTES deterministic bytes to each connection, close
  serve-early-close PORT NBYTES --result-file F
                                     send NBYTES (seed 9) then shut write at once; keep reading
                                     to EOF and write "<sha256> <count>" of what came to F
  serve-echo-ports FIRST N           serve-echo on N ports from FIRST, each answering
                                     "<port>:" before the echo
  echo-ports HOST PORT...            one connection to each port at once: the answer must be
                                     "<server port>:" then the echo of what was sent (--tally:
                                     any server; print how many answers each gave)
  serve-ws PORT                      a WebSocket echo server (RFC 6455, text and binary frames)
  serve-slow PORT --delay S          read an HTTP request head, wait S seconds, answer
                                     "slow answer" and close; logs "slow request from ..."
  ws-echo HOST PORT --host NAME      WebSocket handshake (Host: NAME), one masked message,
                                     its echo checked (--cafile F: over TLS, SNI NAME)
  tls-abandon HOST PORT --host NAME --cafile F
                                     --count HTTPS requests that each give up at once: request,
                                     close_notify, then a TCP reset before any answer
  stream-sha NBYTES SEED             print the sha256 of a deterministic stream (no network)
  send-sha HOST PORT NBYTES SEED     send a stream, shut write, check the server's sha reply
  recv-sha HOST PORT                 read to EOF, print "<sha256> <count>"
  half-close HOST PORT               request, shut write, read the whole answer (serve-sha)
  early-close HOST PORT NBYTES       read the server's stream to EOF, then still send NBYTES
                                     (seed 11) and shut write; prints "<sha256> <count>" sent
  concurrent HOST PORT               many echo connections at once (serve-echo), all checked
  probe HOST PORT                    connect, send a request, classify what happens
  held-echo HOST PORT --go FILE      one echo connection held open: a round trip, "open"; once
                                     FILE exists, round trips every 50 ms for --for S (0: one),
                                     then "ok <slowest round trip in ms>"
  conns HOST PORT                    many short connections, one after another or one every
                                     --interval s (each in its own thread), echo (serve-echo)
                                     or read to EOF (serve-source); one line per connection:
                                     "<i> <start epoch ms> <local port> <ok|error:...> <ms>"
  serve-soak PORT --results F        per connection a header "up|down NBYTES SEED RATE ID\n";
                                     up: read to EOF, check against the stream (SEED), reply
                                     "<sha256> <count>\n"; down: send the stream at RATE
                                     bytes/s (0: at once), close; one line per transfer to F
  soak-xfer HOST PORT up|down NBYTES SEED
                                     one transfer with serve-soak, checked with sha256; prints
                                     "<outcome> <bytes> <start epoch ms> <secs> <detail>";
                                     exit 0 ok, 1 error
                                     (reset, timeout...), 2 corrupt (complete but wrong bytes),
                                     3 truncated (a clean EOF before the end, bytes intact)
  serve-sink PORT                    read each connection to EOF and forget the bytes
  rate-flows HOST --flow KIND:PORT...
                                     run the flows at once (down: read from serve-source, up:
                                     write to serve-sink); print "<kind> <port> <bytes/s>" per
                                     flow, measured from --start for --seconds
"""

import argparse
import hashlib
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time

PERIOD = 1048573  # largest prime below 1 MiB
CHUNK = 256 * 1024
_blocks = {}
_blocks_lock = threading.Lock()


def block(seed):
    with _blocks_lock:
        if seed not in _blocks:
            _blocks[seed] = random.Random(seed).randbytes(PERIOD)
        return _blocks[seed]


def stream_chunks(nbytes, seed):
    """Yield the deterministic stream in memoryview slices of at most CHUNK bytes."""
    view = memoryview(block(seed))
    off = 0
    left = nbytes
    while left > 0:
        n = min(left, CHUNK, PERIOD - off)
        yield view[off:off + n]
        off = (off + n) % PERIOD
        left -= n


def stream_sha(nbytes, seed):
    h = hashlib.sha256()
    for c in stream_chunks(nbytes, seed):
        h.update(c)
    return h.hexdigest()


def log(msg):
    sys.stderr.write(msg + "\n")  # one write per line: server threads do not interleave
    sys.stderr.flush()


def recv_to_eof(sock, h=None, limit=None):
    """Read until EOF; returns (count, data or None).  Keeps the data only when h is None."""
    got = 0
    parts = [] if h is None else None
    while True:
        data = sock.recv(CHUNK)
        if not data:
            return got, (b"".join(parts) if parts is not None else None)
        got += len(data)
        if h is not None:
            h.update(data)
        else:
            parts.append(data)
        if limit is not None and got > limit:
            raise ValueError("peer sent more than %d bytes" % limit)


# ---------------------------------------------------------------------------------- servers


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512


def serve(port, handler_fn):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(120)
            try:
                handler_fn(self.request, self.client_address)
            except (OSError, ValueError) as e:
                log("connection from %s:%d: %s" % (self.client_address + (e,)))

    with Server(("0.0.0.0", port), Handler) as srv:
        log("listening on port %d" % port)
        srv.serve_forever()


def handle_echo(sock, peer):
    n = 0
    while True:
        data = sock.recv(CHUNK)
        if not data:
            break
        sock.sendall(data)
        n += len(data)
    sock.shutdown(socket.SHUT_WR)
    log("echo %s:%d %d bytes" % (peer + (n,)))


def handle_sink(sock, peer):
    buf = bytearray(CHUNK)
    n = 0
    while True:
        k = sock.recv_into(buf)
        if k == 0:
            break
        n += k
    log("sink %s:%d %d bytes" % (peer + (n,)))


def make_handle_sha(reply_bytes):
    def handle(sock, peer):
        h = hashlib.sha256()
        n, _ = recv_to_eof(sock, h)
        sock.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())
        for c in stream_chunks(reply_bytes, 7):
            sock.sendall(c)
        sock.shutdown(socket.SHUT_WR)
        log("sha %s:%d got %d bytes sha256 %s, replied %d bytes" %
            (peer + (n, h.hexdigest(), reply_bytes)))
    return handle


def make_handle_source(nbytes, seed):
    def handle(sock, peer):
        t0 = time.monotonic()
        h = hashlib.sha256()
        for c in stream_chunks(nbytes, seed):
            sock.sendall(c)
            h.update(c)
        sock.shutdown(socket.SHUT_WR)
        log("source %s:%d sent %d bytes sha256 %s in %.2f s" %
            (peer + (nbytes, h.hexdigest(), time.monotonic() - t0)))
    return handle


def make_handle_early_close(nbytes, result_file):
    def handle(sock, peer):
        for c in stream_chunks(nbytes, 9):
            sock.sendall(c)
        sock.shutdown(socket.SHUT_WR)
        h = hashlib.sha256()
        n, _ = recv_to_eof(sock, h)
        with open(result_file + ".tmp", "w") as f:
            f.write("%s %d\n" % (h.hexdigest(), n))
        os.replace(result_file + ".tmp", result_file)
        log("early-close %s:%d sent %d, then got %d bytes" % (peer + (nbytes, n)))
    return handle


def recv_line(sock, limit=256):
    """Read a header line; returns (line, the bytes after it that came with it)."""
    buf = b""
    while b"\n" not in buf:
        data = sock.recv(limit)
        if not data:
            raise ValueError("EOF before the header line")
        buf += data
        if len(buf) > limit and b"\n" not in buf[:limit]:
            raise ValueError("header line too long")
    line, _, rest = buf.partition(b"\n")
    return line.decode(errors="replace"), rest


def paced_send(sock, nbytes, seed, rate, h=None, progress=None):
    """Send the deterministic stream at about rate bytes/s (0: as fast as possible); the
    count so far is kept in progress[0]."""
    t0 = time.monotonic()
    sent = 0
    for c in stream_chunks(nbytes, seed):
        for off in range(0, len(c), 65536):
            part = c[off:off + 65536]
            sock.sendall(part)
            if h is not None:
                h.update(part)
            sent += len(part)
            if progress is not None:
                progress[0] = sent
            if rate > 0:
                delay = t0 + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    return sent


def make_handle_soak(results):
    fd = os.open(results, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(line):
        os.write(fd, (line + "\n").encode())  # one write per line, O_APPEND: no interleaving

    def handle(sock, peer):
        line, rest = recv_line(sock)
        kind, nbytes, seed, rate, xid = line.split()
        nbytes, seed, rate = int(nbytes), int(seed), int(rate)
        n = 0
        try:
            if kind == "up":
                h = hashlib.sha256(rest)
                n, _ = recv_to_eof(sock, h)
                n += len(rest)
                got = h.hexdigest()
                if n == nbytes and got == stream_sha(nbytes, seed):
                    outcome = "ok"
                elif n < nbytes and got == stream_sha(n, seed):
                    outcome = "truncated"  # a clean EOF before the end
                else:
                    outcome = "corrupt"
                sock.sendall(("%s %d\n" % (got, n)).encode())
                record("up %s %d %d %s" % (xid, nbytes, n, outcome))
            elif kind == "down":
                n = paced_send(sock, nbytes, seed, rate)
                sock.shutdown(socket.SHUT_WR)
                record("down %s %d %d sent" % (xid, nbytes, n))
            else:
                raise ValueError("unknown transfer kind %r" % kind)
        except (OSError, ValueError) as e:
            record("%s %s %d %d error:%s" % (kind, xid, nbytes, n, type(e).__name__))
            raise

    return handle


# ---------------------------------------------------------------------------------- clients


def connect(host, port, timeout):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def rate(nbytes, secs):
    return "%.1f MiB/s" % (nbytes / (1 << 20) / secs) if secs > 0 else "inf"


def cmd_send_sha(a):
    want = stream_sha(a.nbytes, a.seed)
    t0 = time.monotonic()
    with connect(a.host, a.port, a.timeout) as s:
        for c in stream_chunks(a.nbytes, a.seed):
            s.sendall(c)
        s.shutdown(socket.SHUT_WR)
        _, reply = recv_to_eof(s, limit=64 << 20)
    secs = time.monotonic() - t0
    got = reply.partition(b"\n")[0].decode(errors="replace").split()
    if got != [want, str(a.nbytes)]:
        log("send-sha: server reports %r, expected %s %d" % (reply[:200], want, a.nbytes))
        return 1
    print("%s %d %.3f %s" % (want, a.nbytes, secs, rate(a.nbytes, secs)))
    return 0


def cmd_recv_sha(a):
    t0 = time.monotonic()
    h = hashlib.sha256()
    with connect(a.host, a.port, a.timeout) as s:
        n, _ = recv_to_eof(s, h)
    secs = time.monotonic() - t0
    print("%s %d %.3f %s" % (h.hexdigest(), n, secs, rate(n, secs)))
    return 0


def cmd_half_close(a):
    request = random.Random(5).randbytes(a.request_bytes)
    with connect(a.host, a.port, a.timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        n, reply = recv_to_eof(s, limit=a.reply_bytes + 4096)
    line, sep, body = reply.partition(b"\n")
    want_line = "%s %d" % (hashlib.sha256(request).hexdigest(), len(request))
    if not sep or line.decode(errors="replace") != want_line:
        log("half-close: server saw %r, expected %r" % (line[:200], want_line))
        return 1
    if len(body) != a.reply_bytes or hashlib.sha256(body).hexdigest() != stream_sha(a.reply_bytes, 7):
        log("half-close: answer after EOF is %d bytes, expected %d (or content differs)" %
            (len(body), a.reply_bytes))
        return 1
    print("ok sent %d, got %d after shutting write" % (len(request), n))
    return 0


def cmd_early_close(a):
    h = hashlib.sha256()
    with connect(a.host, a.port, a.timeout) as s:
        n, _ = recv_to_eof(s, h)
        if h.hexdigest() != stream_sha(a.greeting_bytes, 9) or n != a.greeting_bytes:
            log("early-close: got %d bytes before EOF, expected %d (or content differs)" %
                (n, a.greeting_bytes))
            return 1
        # The server's side is closed now; give a tunnel that wrongly tears the whole flow down
        # on one EOF the time to do it, then use the direction that must still be open.
        time.sleep(0.3)
        sent = hashlib.sha256()
        for c in stream_chunks(a.nbytes, 11):
            s.sendall(c)
            sent.update(c)
        s.shutdown(socket.SHUT_WR)
    print("%s %d" % (sent.hexdigest(), a.nbytes))
    return 0


def cmd_concurrent(a):
    results = [None] * a.count
    barrier = threading.Barrier(a.count, timeout=a.timeout)

    def one(i):
        rnd = random.Random(1000 + i)
        size = rnd.randint(a.min_size, a.max_size)
        payload = (b"conn-%03d:" % i) + rnd.randbytes(size)
        try:
            with socket.create_connection((a.host, a.port), timeout=a.timeout) as s:
                s.settimeout(a.timeout)
                barrier.wait()  # every connection is open before any sends
                s.sendall(payload)
                got = bytearray()
                while len(got) < len(payload):
                    data = s.recv(CHUNK)
                    if not data:
                        break
                    got += data
                s.shutdown(socket.SHUT_WR)
                rest = s.recv(1)
                if bytes(got) != payload or rest:
                    results[i] = "echo mismatch: sent %d, got %d" % (len(payload), len(got) + len(rest))
                else:
                    results[i] = "ok"
        except (OSError, threading.BrokenBarrierError) as e:
            results[i] = "error: %r" % (e,)
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(a.count)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, a.timeout * 2 - (time.monotonic() - t0)))
    bad = [(i, r) for i, r in enumerate(results) if r != "ok"]
    for i, r in bad:
        log("connection %d: %s" % (i, r or "did not finish"))
    print("%d/%d connections echoed correctly in %.2f s" %
          (a.count - len(bad), a.count, time.monotonic() - t0))
    return 1 if bad else 0


def serve_echo_ports(first, n):
    def make(port):
        def handler(sock, peer):
            sock.sendall(b"%d:" % port)
            handle_echo(sock, peer)
        return handler

    for port in range(first, first + n):
        threading.Thread(target=serve, args=(port, make(port)), daemon=True).start()
    while True:
        time.sleep(3600)


def cmd_echo_ports(a):
    """Each of a.ports, at once; each answer names which server port it came from (a.want
    gives them in the same order, else the ports themselves)."""
    want = [int(w) for w in a.want.split(",")] if a.want else a.ports
    results = [None] * len(a.ports)
    served = [None] * len(a.ports)

    def one(i, port):
        payload = b"user-%d-%d" % (i, port)
        try:
            with socket.create_connection((a.host, port), timeout=a.timeout) as s:
                s.settimeout(a.timeout)
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                got, data = recv_to_eof(s, limit=1 << 16)
                if a.tally:
                    server, _, echo = data.partition(b":")
                    results[i] = "ok" if echo == payload else "echo mismatch: %r" % (data,)
                    served[i] = server.decode(errors="replace")
                    return
                expect = b"%d:" % want[i] + payload
                results[i] = "ok" if data == expect else "got %r, expected %r" % (data, expect)
        except OSError as e:
            results[i] = "error: %r" % (e,)

    threads = [threading.Thread(target=one, args=(i, p), daemon=True) for i, p in enumerate(a.ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.timeout * 2)
    bad = [(a.ports[i], r) for i, r in enumerate(results) if r != "ok"]
    for port, r in bad:
        log("port %d: %s" % (port, r or "did not finish"))
    print("%d/%d ports answered" % (len(a.ports) - len(bad), len(a.ports)))
    if a.tally:  # which servers answered, and how often: "7100=12 7150=8"
        counts = {}
        for sv in served:
            if sv is not None:
                counts[sv] = counts.get(sv, 0) + 1
        print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
    return 1 if bad else 0


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_read_frame(sock):
    """One frame: (opcode, payload), unmasking what a client sent."""
    def exact(n):
        got = b""
        while len(got) < n:
            data = sock.recv(n - len(got))
            if not data:
                raise ValueError("connection closed inside a WebSocket frame")
            got += data
        return got

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(exact(2), "big")
    elif n == 127:
        n = int.from_bytes(exact(8), "big")
    mask = exact(4) if b1 & 0x80 else None
    data = exact(n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


def ws_frame(opcode, data, mask=None):
    head = bytes([0x80 | opcode])
    m = 0x80 if mask else 0
    if len(data) < 126:
        head += bytes([m | len(data)])
    elif len(data) < 65536:
        head += bytes([m | 126]) + len(data).to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + len(data).to_bytes(8, "big")
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        head += mask
    return head + data


def read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise ValueError("connection closed before the end of the HTTP head")
        head += data
    return head.decode("latin-1")


def make_handle_slow(delay):
    def handle(sock, peer):
        read_head(sock)
        log("slow request from %s:%d" % peer)
        time.sleep(delay)
        body = b"slow answer\n"
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" %
                     (len(body), body))
    return handle


def handle_ws(sock, peer):
    head = read_head(sock)
    key = [l.split(":", 1)[1].strip() for l in head.split("\r\n")
           if l.lower().startswith("sec-websocket-key:")]
    if not key or "upgrade: websocket" not in head.lower():
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return
    accept = __import__("base64").b64encode(hashlib.sha1(key[0].encode() + WS_GUID).digest())
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    while True:
        op, data = ws_read_frame(sock)
        if op == 8:
            sock.sendall(ws_frame(8, b""))
            return
        if op in (1, 2):
            sock.sendall(ws_frame(op, data))


def cmd_ws_echo(a):
    base64 = __import__("base64")
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection((a.host, a.port), timeout=a.timeout) as raw:
        s = raw
        if a.cafile:  # TLS to the relay's HTTPS port, verified for the host name
            import ssl
            s = ssl.create_default_context(cafile=a.cafile).wrap_socket(raw, server_hostname=a.http_host)
        s.settimeout(a.timeout)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: " + a.http_host.encode() +
                  b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                  key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = read_head(s)
        want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        if not head.startswith("HTTP/1.1 101") or want not in head:
            log("ws-echo: no upgrade: %r" % head[:200])
            return 1
        msg = random.Random(os.getpid()).randbytes(a.size)
        s.sendall(ws_frame(2, msg, mask=os.urandom(4)))
        op, data = ws_read_frame(s)
        if op != 2 or data != msg:
            log("ws-echo: the echo differs (%d bytes back, opcode %d)" % (len(data), op))
            return 1
        s.sendall(ws_frame(8, b"", mask=os.urandom(4)))
    print("websocket echo ok: %d bytes" % len(msg))
    return 0


def cmd_tls_abandon(a):
    """The user leaves before the answer: after a request, close_notify and then a reset, so the
    answer meets a TLS session the peer closed on a socket that is gone.  One line each."""
    import ssl
    ctx = ssl.create_default_context(cafile=a.cafile)
    for i in range(a.count):
        try:
            with ctx.wrap_socket(socket.create_connection((a.host, a.port), timeout=a.timeout),
                                 server_hostname=a.http_host) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: " + a.http_host.encode() + b"\r\n\r\n")
                time.sleep(a.pause)  # the relay routes the request and opens the flow
                s.setblocking(False)
                try:
                    s.unwrap()  # close_notify out; the relay's own one is not awaited
                except ssl.SSLWantReadError:
                    pass
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            print("%d abandoned" % i)  # closed with linger 0: a reset
        except OSError as e:
            print("%d error: %s" % (i, e))
    return 0


def cmd_probe(a):
    """Outcomes: refused (connect failed), reset (RST / EPIPE), eof (clean close, no data),
    data (got bytes), timeout.  Exit 0 when the outcome is in --expect."""
    t0 = time.monotonic()
    outcome = "timeout"
    try:
        with connect(a.host, a.port, a.timeout) as s:
            try:
                s.sendall(a.send.encode())
                data = s.recv(4096)
                outcome = "data" if data else "eof"
            except (ConnectionResetError, BrokenPipeError):
                outcome = "reset"
    except ConnectionRefusedError:
        outcome = "refused"
    except (ConnectionResetError, BrokenPipeError):
        outcome = "reset"  # the RST came before connect() finished looking at the socket
    except (socket.timeout, TimeoutError):
        outcome = "timeout"
    except OSError as e:
        outcome = "error:%s" % (e.strerror or e)
    secs = time.monotonic() - t0
    print("%s %.3f" % (outcome, secs))
    return 0 if outcome in a.expect.split(",") else 1


def cmd_ping_pong(a):
    """--count round trips of --size bytes on one connection to an echo server; prints the
    count and the median round trip in microseconds."""
    msg = bytes(range(256)) * (a.size // 256 + 1)
    msg = msg[: a.size]
    times = []
    with connect(a.host, a.port, a.timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(a.count):
            t0 = time.monotonic()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    raise ValueError("the echo server closed after %d round trips" % len(times))
                got += chunk
            if got != msg:
                raise ValueError("the echo differs")
            times.append(time.monotonic() - t0)
    times.sort()
    print("%d %.0f" % (len(times), times[len(times) // 2] * 1e6))
    return 0


def echo_once(sock, msg):
    sock.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = sock.recv(len(msg) - len(got))
        if not chunk:
            raise ValueError("the flow was closed after %d of %d bytes" % (len(got), len(msg)))
        got += chunk
    if got != msg:
        raise ValueError("the echo differs")


def cmd_held_echo(a):
    """One connection to an echo server, held open across what the test does meanwhile."""
    with connect(a.host, a.port, a.timeout) as s:
        echo_once(s, b"before")
        print("open", flush=True)
        deadline = time.monotonic() + a.timeout
        while not os.path.exists(a.go):
            if time.monotonic() > deadline:
                raise ValueError("never told to go on (%s)" % a.go)
            time.sleep(0.02)
        slowest, end = 0.0, time.monotonic() + a.duration
        while True:
            t0 = time.monotonic()
            echo_once(s, b"after")
            slowest = max(slowest, time.monotonic() - t0)
            if time.monotonic() >= end:
                break
            time.sleep(0.05)
    print("ok %d" % (slowest * 1000), flush=True)
    return 0


def cmd_conns(a):
    """Connection i starts at i * interval (at once after the previous one when interval is 0);
    with --bind-port every connection uses that local port (SO_REUSEADDR), so the same 4-tuple
    comes again: the server must close first (serve-source), or the port waits in TIME_WAIT."""
    results = [None] * a.count

    def one(i):
        t0 = time.time()
        port = 0
        outcome = "ok"
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(a.timeout)
                if a.bind_port:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("0.0.0.0", a.bind_port))
                s.connect((a.host, a.port))
                port = s.getsockname()[1]
                if a.expect_bytes is None:
                    payload = b"conn-%06d\n" % i
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    n, got = recv_to_eof(s, limit=len(payload))
                    if got != payload:
                        outcome = "error:echo-mismatch(%d)" % n
                else:
                    n, _ = recv_to_eof(s, hashlib.sha256(), limit=a.expect_bytes)
                    if n != a.expect_bytes:
                        outcome = "error:got-%d-bytes" % n
            finally:
                s.close()
        except (socket.timeout, TimeoutError):
            outcome = "error:timeout"
        except (OSError, ValueError) as e:
            outcome = "error:%s" % (getattr(e, "strerror", None) or type(e).__name__).replace(" ", "-")
        results[i] = "%d %d %d %s %d" % (i, t0 * 1000, port, outcome, (time.time() - t0) * 1000)

    start = time.monotonic()
    threads = []
    for i in range(a.count):
        if a.interval > 0:
            delay = start + i * a.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = threading.Thread(target=one, args=(i,), daemon=True)
            t.start()
            threads.append(t)
        else:
            one(i)
    deadline = time.monotonic() + 3 * a.timeout + 1  # connect, send, read: one timeout each
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    lines = [r if r is not None else "%d 0 0 error:did-not-finish 0" % i for i, r in enumerate(results)]
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)
    else:
        sys.stdout.write(text)
    bad = sum(1 for r in lines if " ok " not in r)
    log("conns: %d/%d ok in %.2f s" % (a.count - bad, a.count, time.monotonic() - start))
    return 1 if bad else 0


def cmd_soak_xfer(a):
    start = time.time()
    t0 = time.monotonic()
    done = [0]  # bytes so far, for the report when the transfer fails
    try:
        with connect(a.host, a.port, a.timeout) as s:
            s.sendall(("%s %d %d %d %s\n" % (a.kind, a.nbytes, a.seed, a.rate, a.id)).encode())
            if a.kind == "up":
                h = hashlib.sha256()
                n = paced_send(s, a.nbytes, a.seed, a.rate, h, done)
                s.shutdown(socket.SHUT_WR)
                _, reply = recv_to_eof(s, limit=4096)
                got = reply.partition(b"\n")[0].decode(errors="replace").split()
                if not got:
                    outcome, rc, detail = "error", 1, "eof-without-reply"
                elif got == [h.hexdigest(), str(a.nbytes)]:
                    outcome, rc, detail = "ok", 0, h.hexdigest()
                else:
                    outcome, rc, detail = "corrupt", 2, "server-got:" + ":".join(got)
            else:
                h = hashlib.sha256()
                while True:
                    data = s.recv(CHUNK)
                    if not data:
                        break
                    h.update(data)
                    done[0] += len(data)
                    if done[0] > a.nbytes:
                        raise ValueError("peer sent more than %d bytes" % a.nbytes)
                n = done[0]
                got = h.hexdigest()
                if n == a.nbytes and got == stream_sha(a.nbytes, a.seed):
                    outcome, rc, detail = "ok", 0, got
                elif n < a.nbytes and got == stream_sha(n, a.seed):
                    outcome, rc, detail = "truncated", 3, "clean-eof-after-%d" % n
                else:
                    outcome, rc, detail = "corrupt", 2, "got:%s:%d" % (got, n)
    except ValueError as e:  # more bytes than asked for
        outcome, rc, detail = "corrupt", 2, str(e).replace(" ", "-")
    except (socket.timeout, TimeoutError):
        outcome, rc, detail = "error", 1, "timeout"
    except OSError as e:
        outcome, rc, detail = "error", 1, type(e).__name__
    print("%s %d %d %.3f %s" % (outcome, done[0] if rc else a.nbytes, start * 1000,
                                time.monotonic() - t0, detail))
    return rc


def cmd_rate_flows(a):
    """Runs the flows given (KIND:PORT, down: read from a source, up: write to a sink) all at
    once and prints, for each, "KIND PORT BYTES_PER_S" measured between --start and --start +
    --seconds (after the windows and bursts of the first moments)."""
    flows = []
    for f in a.flow:
        kind, _, port = f.partition(":")
        if kind not in ("up", "down") or not port.isdigit():
            raise ValueError("--flow %r is not up:PORT or down:PORT" % f)
        flows.append((kind, int(port)))
    counts = [0] * len(flows)
    errors = []
    stop = threading.Event()
    socks = [connect(a.host, port, a.timeout) for _, port in flows]

    def one(i):
        s = socks[i]
        try:
            if flows[i][0] == "down":
                buf = bytearray(CHUNK)
                while not stop.is_set():
                    n = s.recv_into(buf)
                    if n == 0:
                        raise ValueError("the source ended early")
                    counts[i] += n
            else:
                data = memoryview(block(3))[:65536]
                while not stop.is_set():
                    s.sendall(data)
                    counts[i] += len(data)
        except (OSError, ValueError) as e:
            if not stop.is_set():
                errors.append("flow %d: %r" % (i, e))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(flows))]
    for t in threads:
        t.start()
    time.sleep(a.start)
    t1, c1 = time.monotonic(), list(counts)
    time.sleep(a.seconds)
    t2, c2 = time.monotonic(), list(counts)
    stop.set()
    for s in socks:
        s.close()  # wakes the threads; what they were doing no longer counts
    for t in threads:
        t.join(a.timeout)
    if errors:
        log("rate-flows: " + "; ".join(errors))
        return 1
    for i, (kind, port) in enumerate(flows):
        print("%s %d %.0f" % (kind, port, (c2[i] - c1[i]) / (t2 - t1)))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve-echo")
    s.add_argument("port", type=int)
    s = sub.add_parser("serve-sha")
    s.add_argument("port", type=int)
    s.add_argument("--reply-bytes", type=int, default=0)
    s = sub.add_parser("serve-sink")
    s.add_argument("port", type=int)
    s = sub.add_parser("serve-source")
    s.add_argument("port", type=int)
    s.add_argument("nbytes", type=int)
    s.add_argument("seed", type=int)
    s = sub.add_parser("serve-early-close")
    s.add_argument("port", type=int)
    s.add_argument("nbytes", type=int)
    s.add_argument("--result-file", required=True)
    s = sub.add_parser("serve-ws")
    s.add_argument("port", type=int)
    s = sub.add_parser("serve-slow")
    s.add_argument("port", type=int)
    s.add_argument("--delay", type=float, default=0.4)
    s = sub.add_parser("serve-echo-ports")
    s.add_argument("first", type=int)
    s.add_argument("n", type=int)
    s = sub.add_parser("stream-sha")
    s.add_argument("nbytes", type=int)
    s.add_argument("seed", type=int)

    def client(name):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--timeout", type=float, default=30.0, help="per socket operation")
        return c

    c = client("send-sha")
    c.add_argument("nbytes", type=int)
    c.add_argument("seed", type=int)
    client("recv-sha")
    c = client("half-close")
    c.add_argument("--request-bytes", type=int, default=200000)
    c.add_argument("--reply-bytes", type=int, default=1 << 20)
    c = client("early-close")
    c.add_argument("nbytes", type=int)
    c.add_argument("--greeting-bytes", type=int, default=1 << 20)
    c = client("concurrent")
    c.add_argument("--count", type=int, default=50)
    c.add_argument("--min-size", type=int, default=2048)
    c.add_argument("--max-size", type=int, default=8192)
    c = sub.add_parser("echo-ports")
    c.add_argument("host")
    c.add_argument("ports", type=int, nargs="+")
    c.add_argument("--want", default="", help="server ports expected, comma-separated")
    c.add_argument("--tally", action="store_true", help="count which server answered instead")
    c.add_argument("--timeout", type=float, default=30.0)
    c = client("ws-echo")
    c.add_argument("--host", dest="http_host", required=True)
    c.add_argument("--size", type=int, default=1300, help="bytes of the message")
    c.add_argument("--cafile", default=None, help="speak TLS, trusting this CA")
    c = client("tls-abandon")
    c.add_argument("--host", dest="http_host", required=True)
    c.add_argument("--cafile", required=True)
    c.add_argument("--count", type=int, default=3)
    c.add_argument("--pause", type=float, default=0.1, help="seconds from request to leaving")
    c = client("probe")
    c.add_argument("--send", default="GET / HTTP/1.0\r\n\r\n")
    c.add_argument("--expect", default="data")
    c = client("held-echo")
    c.add_argument("--go", required=True, help="go on once this file exists")
    c.add_argument("--for", dest="duration", type=float, default=0.0, help="seconds of round trips")
    c = client("ping-pong")
    c.add_argument("--count", type=int, default=1000)
    c.add_argument("--size", type=int, default=64)
    c = client("conns")
    c.add_argument("--count", type=int, default=100)
    c.add_argument("--interval", type=float, default=0.0, help="seconds between starts")
    c.add_argument("--bind-port", type=int, default=0)
    c.add_argument("--expect-bytes", type=int, default=None, help="read to EOF (serve-source)")
    c.add_argument("--out", default=None, help="write the lines here (atomically) at the end")

    c = sub.add_parser("rate-flows")
    c.add_argument("host")
    c.add_argument("--timeout", type=float, default=30.0, help="per socket operation")
    c.add_argument("--flow", action="append", required=True, help="up:PORT or down:PORT")
    c.add_argument("--start", type=float, default=1.0, help="seconds before measuring")
    c.add_argument("--seconds", type=float, default=5.0, help="seconds measured")

    s = sub.add_parser("serve-soak")
    s.add_argument("port", type=int)
    s.add_argument("--results", required=True)
    c = client("soak-xfer")
    c.add_argument("kind", choices=["up", "down"])
    c.add_argument("nbytes", type=int)
    c.add_argument("seed", type=int)
    c.add_argument("--rate", type=int, default=0, help="bytes/s, 0: as fast as possible")
    c.add_argument("--id", default="-")

    a = p.parse_args()
    if a.cmd == "serve-echo":
        serve(a.port, handle_echo)
    elif a.cmd == "serve-sha":
        serve(a.port, make_handle_sha(a.reply_bytes))
    elif a.cmd == "serve-sink":
        serve(a.port, handle_sink)
    elif a.cmd == "serve-source":
        serve(a.port, make_handle_source(a.nbytes, a.seed))
    elif a.cmd == "serve-early-close":
        serve(a.port, make_handle_early_close(a.nbytes, a.result_file))
    elif a.cmd == "serve-ws":
        serve(a.port, handle_ws)
    elif a.cmd == "serve-slow":
        serve(a.port, make_handle_slow(a.delay))
    elif a.cmd == "serve-echo-ports":
        serve_echo_ports(a.first, a.n)
    elif a.cmd == "serve-soak":
        serve(a.port, make_handle_soak(a.results))
    elif a.cmd == "stream-sha":
        print(stream_sha(a.nbytes, a.seed))
        return 0
    else:
        try:
            return {
                "send-sha": cmd_send_sha,
                "recv-sha": cmd_recv_sha,
                "half-close": cmd_half_close,
                "early-close": cmd_early_close,
                "concurrent": cmd_concurrent,
                "probe": cmd_probe,
                "held-echo": cmd_held_echo,
                "ping-pong": cmd_ping_pong,
                "echo-ports": cmd_echo_ports,
                "ws-echo": cmd_ws_echo,
                "tls-abandon": cmd_tls_abandon,
                "conns": cmd_conns,
                "soak-xfer": cmd_soak_xfer,
                "rate-flows": cmd_rate_flows,
            }[a.cmd](a)
        except (OSError, ValueError) as e:
            log("%s: %r" % (a.cmd, e))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
