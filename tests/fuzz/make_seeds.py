#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus_{grpc,conf,open}/): valid
gRPC-framed tunnel.v1 messages (protobuf encoded by hand, field numbers from
proto/tunnel.proto) and configuration files.  Rerun after changing the protocol:
    python3 tests/fuzz/make_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    tag = varint(num << 3 | wire)
    if wire == 0:
        return tag + varint(payload)
    if wire == 1:
        return tag + struct.pack("<Q", payload)
    return tag + varint(len(payload)) + payload  # wire 2


def endpoint(ip, port):
    return field(1, 2, bytes(ip)) + field(2, 0, port)


def open_msg(dst_ip, dst_port, proto=0, src_ip=(10, 0, 0, 1), src_port=40000):
    return (field(1, 1, 0x1234567890ABCDEF) + (field(2, 0, proto) if proto else b"") +
            field(3, 2, endpoint(src_ip, src_port)) + field(4, 2, endpoint(dst_ip, dst_port)))


def frame_open(*a, **k):
    return field(1, 2, open_msg(*a, **k))


def grpc(msg, flag=0):
    return bytes([flag]) + struct.pack(">I", len(msg)) + msg


def data_fast(payload):
    n = len(payload)  # the 3-byte padded varint the programs write
    return bytes([0]) + struct.pack(">I", 4 + n) + b"\x1a" + bytes([n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14]) + payload


def hello(pid, nets):
    m = field(1, 2, pid.encode())
    for real, virt in nets:
        n = field(1, 2, real.encode()) + (field(2, 2, virt.encode()) if virt else b"")
        m += field(2, 2, n)
    return m + field(3, 2, b"0.1.0")


def write(corpus, name, data):
    d = os.path.join(HERE, corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


v6 = [0xFD] + [0] * 14 + [1]
opened = field(2, 2, field(1, 0, 0) + field(2, 2, b"proxy-1") + field(3, 2, b"ok"))
# fuzz_grpc: the first byte is the chunk size the stream is fed in.
write("corpus_grpc", "open_data", b"\x07" + grpc(frame_open((10, 1, 2, 3), 80)) + data_fast(b"GET / HTTP/1.1\r\n\r\n"))
write("corpus_grpc", "opened", b"\x00" + grpc(opened) + data_fast(b"x" * 300))
write("corpus_grpc", "data_plain", b"\x40" + grpc(field(3, 2, b"hello")) + grpc(b""))
write("corpus_grpc", "hello", b"\x10" + grpc(hello("proxy-1", [("192.168.1.0/24", "100.64.1.0/24"), ("fd00::/64", "")])))
write("corpus_grpc", "compressed", b"\x03" + grpc(frame_open((10, 1, 2, 3), 22), flag=1))
# fuzz_open: the Connect stream's first bytes.
write("corpus_open", "allowed", grpc(frame_open((10, 1, 2, 3), 80)) + data_fast(b"abc"))
write("corpus_open", "port_range", grpc(frame_open((10, 9, 9, 9), 8050)))
write("corpus_open", "forbidden_port", grpc(frame_open((10, 1, 2, 3), 443)))
write("corpus_open", "v6_any_client", grpc(frame_open(v6, 443, src_ip=v6)))
write("corpus_open", "udp", grpc(frame_open((10, 1, 2, 3), 53, proto=1)))
write("corpus_open", "no_dst", grpc(field(1, 2, field(1, 1, 7))))
write("corpus_open", "data_first", data_fast(b"early"))
# fuzz_conf: configuration files.
write("corpus_conf", "full.yaml", b"""server_addr: [relay.example.test:8081, "[::1]:8443"]
listen: ":9000"
n: 42
a: {b: {dur: 1500ms}, size: 64KiB}
flag: true
colour: green
one: 10.0.0.0/8
cidrs: [192.168.0.0/16, "fd00::/8"]
recs:
  - {id: lan-1, networks: [10.1.0.0/16], ports: "22 80 8000-8100"}
  - id: lan-2
    networks: 10.2.0.0/16
tls: {cert_file: c.pem, key_file: k.pem, ca_file: ca.pem, crl_file: crl.pem, server_name: relay}
log: {level: debug, format: json, output: stderr}
limits: {stream_window: 1MiB, connection_window: 16MiB}
heartbeat: {interval: 2s, timeout: 3s}
reconnect: {initial: 1s, max: 30s, max_retries: 0, disabled: false}
""")
write("corpus_conf", "errors.yaml", b"n: 99999\nflag: maybe\nunknown: 1\nn: 2\ncidrs: [10.0.0.0/33]\n")
write("corpus_conf", "anchors.yaml", b"a: &x {dur: 1s}\nrecs: [*x]\ncidrs: !!str 1.2.3.4/32\n")
write("corpus_conf", "flow.yaml", b"{listen: 1.2.3.4:1, recs: [{id: a, networks: []}], colour: [red]}\n")
