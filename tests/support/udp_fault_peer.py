#!/usr/bin/env python3
"""A UDP echo peer that makes the faults a network makes, by each datagram's sequence number
(the first 8 bytes, little-endian, as multi-connect sends them), per sender:

  seq % 10 == 3  dropped          seq % 10 == 5  echoed twice
  seq % 10 == 7  held back until the next datagram of that sender was echoed (reordered), or
                 for 50 ms when none comes (then sent alone: not reordered)
  seq == 50      echoed cut to half its length      seq == 60  echoed with its last byte flipped

Only sequence numbers below LIMIT (argv[1]) are touched, so the end of a run is clean. After
every datagram it prints what it did so far: "did dropped=D duplicated=U reordered=R truncated=T
corrupted=C"."""
import select
import socket
import sys
import time

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 62
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(f"listening on port {s.getsockname()[1]}", flush=True)
did = dict(dropped=0, duplicated=0, reordered=0, truncated=0, corrupted=0)
held = {}  # sender -> (the datagram held back, when)


def report():
    print("did " + " ".join(f"{k}={v}" for k, v in did.items()), flush=True)


while True:
    if held:
        oldest = min(t for _, t in held.values())
        ready, _, _ = select.select([s], [], [], max(0.0, oldest + 0.05 - time.monotonic()))
        if not ready:
            for peer, (data, t) in list(held.items()):
                if time.monotonic() >= t + 0.05:
                    s.sendto(data, peer)
                    del held[peer]
            report()
            continue
    data, peer = s.recvfrom(65536)
    seq = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    out = [data]
    if 0 <= seq < limit:
        if seq % 10 == 3:
            out = []
            did["dropped"] += 1
        elif seq % 10 == 5:
            out = [data, data]
            did["duplicated"] += 1
        elif seq % 10 == 7:
            if peer in held:  # two in a row held: the first goes now, alone
                s.sendto(held.pop(peer)[0], peer)
            held[peer] = (data, time.monotonic())
            out = []
        elif seq == 50:
            out = [data[: len(data) // 2]]
            did["truncated"] += 1
        elif seq == 60:
            out = [data[:-1] + bytes([data[-1] ^ 0xFF])]
            did["corrupted"] += 1
    for d in out:
        s.sendto(d, peer)
    if out and peer in held:
        s.sendto(held.pop(peer)[0], peer)
        did["reordered"] += 1
    report()
