#!/usr/bin/env python3
"""First send after a sleep is slower: per-position one-way latency on loopback, with and
without a throw-away datagram sent first (docs/METRICS.md, "Why the first dummy of a pass
reads slower"). Loopback only; about 10 s. Run: python3 scripts/first-send-latency.py"""
import socket, time, struct, statistics, sys
SO_TIMESTAMPNS = 35
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
addr = rx.getsockname()
tx = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
prime = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 0))
def run(priming, n=60):
    lat = [[] for _ in range(4)]
    for _ in range(n):
        time.sleep(0.05)
        if priming:
            prime.sendto(b"x", sink.getsockname())
        sent = []
        for i, s in enumerate(tx):
            t = time.time_ns(); s.sendto(bytes([i]), addr); sent.append(t)
        for _ in range(4):
            data, anc, _, _ = rx.recvmsg(16, 64)
            sec, nsec = struct.unpack("qq", anc[0][2][:16])
            lat[data[0]].append((sec * 10**9 + nsec - sent[data[0]]) / 1000)
        while True:
            try: sink.recv(16, socket.MSG_DONTWAIT)
            except BlockingIOError: break
    return [round(statistics.median(l), 1) for l in lat]
print("no priming  p50 µs per position:", run(False))
print("priming send p50 µs per position:", run(True))
print("no priming  p50 µs per position:", run(False))
