#!/usr/bin/env python3
"""A hostile peer for scripts/soak: garbage frames and bad requests until a deadline.

    soak-hostile.py HOST PORT DEVICE_TOKEN SECONDS

Connects from 127.0.0.2 (still loopback) so that the server's per-address limits, which it
soon trips with bad tokens, fall on it and not on the soak's phones at 127.0.0.1. Every socket
has a 3 s timeout; prints a count of what it did at the end. Standard library only.
"""

import base64
import os
import random
import socket
import struct
import sys
import time

HOST, PORT, TOKEN, SECONDS = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
SOURCE = ("127.0.0.2", 0)


def connect():
    return socket.create_connection((HOST, PORT), timeout=3, source_address=SOURCE)


def upgrade(token):
    """A WebSocket upgrade with `token`; returns (socket, HTTP status)."""
    s = connect()
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /sync HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = s.recv(4096)
    status = int(head[9:12]) if head[:5] == b"HTTP/" else 0
    return s, status


def frame(payload, opcode=2, claimed=None):
    """A masked client frame; `claimed` lies about the length."""
    n = len(payload) if claimed is None else claimed
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def drain(s):
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()


def garbage_frame():
    s, status = upgrade(TOKEN)
    if status == 101:
        s.sendall(frame(os.urandom(random.randint(1, 2048))))
    drain(s)
    return f"garbage frame ({status})"


def fake_join():
    # CBOR map {"type": "join", "senderId": 7}: the right shape, the wrong types.
    s, status = upgrade(TOKEN)
    if status == 101:
        s.sendall(frame(bytes.fromhex("a2647479706564") + b"join" + bytes.fromhex("6873656e646572496407")))
    drain(s)
    return f"fake join ({status})"


def text_frame():
    s, status = upgrade(TOKEN)
    if status == 101:
        s.sendall(frame(b'{"type":"join"}', opcode=1))
    drain(s)
    return f"text frame ({status})"


def lying_length():
    s, status = upgrade(TOKEN)
    if status == 101:
        s.sendall(frame(b"\x00" * 16, claimed=1 << 40))
    drain(s)
    return f"1 TB frame header ({status})"


def bad_token():
    s, status = upgrade("fst_" + base64.urlsafe_b64encode(os.urandom(32)).decode())
    drain(s)
    return f"bad token ({status})"


def raw_garbage():
    s = connect()
    s.sendall(os.urandom(random.randint(1, 8192)))
    drain(s)
    return "raw garbage"


def bad_requests():
    paths = [
        "GET /api/activity HTTP/1.1\r\nAuthorization: Bearer nope\r\n",
        "GET /api/exports/visits.csv?from=notadate HTTP/1.1\r\n",
        "POST /api/referrals/xyz/events HTTP/1.1\r\nContent-Length: 5\r\n",
        "GET /../../etc/passwd HTTP/1.1\r\n",
        "GET /signin?next=%0a//evil.example HTTP/1.1\r\n",
        "BREW /coffee HTCPCP/1.0\r\n",
    ]
    s = connect()
    s.sendall((random.choice(paths) + f"Host: {HOST}\r\nConnection: close\r\n\r\nhello").encode())
    drain(s)
    return "bad request"


def partial_headers():
    # Starts a request and stops halfway; gives up after the socket timeout.
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    drain(s)
    return "partial headers"


ATTACKS = [garbage_frame, fake_join, text_frame, lying_length, bad_token, raw_garbage,
           bad_requests, partial_headers]


def main():
    deadline = time.monotonic() + SECONDS
    counts = {}
    while time.monotonic() < deadline:
        attack = random.choice(ATTACKS)
        try:
            what = attack()
        except OSError as e:
            what = f"{attack.__name__}: {type(e).__name__}"
        counts[what] = counts.get(what, 0) + 1
        time.sleep(0.1)
    for what, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{n:6d}  {what}")


main()
