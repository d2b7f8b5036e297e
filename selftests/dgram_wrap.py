#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One-byte AF_IVSHMEM datagrams across the end of the datagram ring.

Usage: dgram_wrap.py recv PORT COUNT | dgram_wrap.py send PEER PORT COUNT
       dgram_wrap.py block PEER PORT SECONDS

A datagram takes a 16-byte header and its payload padded to 8 bytes, so
one-byte datagrams (24 bytes) put a header across the ring's end sooner
or later (selftests/hostile.sh sizes the ring for that).  The receiver
checks that all COUNT arrive, in order, with the right byte, and prints
"ok COUNT" or what went wrong.  "block" fills a channel nobody drains
and waits in one more send (selftests/hostile.sh lets the channel go
meanwhile; see block()).  Python has no AF_IVSHMEM addresses: they are
built by hand and passed to libc through ctypes.
"""
import ctypes
import errno
import socket
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
FAMILY = int(open("/sys/module/af_ivshmem/parameters/family").read())
ANY32, ANY16 = 0xFFFFFFFF, 0xFFFF
SO_RCVBUFFORCE = 33
MSG_DONTWAIT = 0x40


def addr(peer, port):
    return struct.pack("=HHIIHH", FAMILY, 0, port, peer, ANY16, 0)


def block(s, peer, port, seconds):
    """Fills the channel to PEER (nobody drains it) without waiting, then
    sends one more datagram that waits for room, SECONDS at most (its
    SO_SNDTIMEO).  Prints "full", then "sent after the wait" if the send
    returned within half that time (woken, not timed out), or what went
    wrong; "done" last, whatever happened."""
    try:
        return fill_and_wait(s, addr(peer, port), seconds)
    finally:
        print("done", flush=True)


def fill_and_wait(s, a, seconds):
    payload = bytes(1000)
    for i in range(100000):
        if libc.sendto(s.fileno(), payload, len(payload), MSG_DONTWAIT,
                       a, len(a)) != len(payload):
            err = ctypes.get_errno()
            if err != errno.EAGAIN:
                print(f"sendto {i}: errno {err}")
                return 1
            break
    else:
        print("never full")
        return 1
    print("full", flush=True)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                 struct.pack("ll", seconds, 0))
    start = time.monotonic()
    if libc.sendto(s.fileno(), payload, len(payload), 0, a,
                   len(a)) != len(payload):
        print(f"errno {ctypes.get_errno()}")
        return 1
    waited = time.monotonic() - start
    if waited >= seconds / 2:
        print(f"sent only after {waited:.1f} s of a {seconds} s "
              "SO_SNDTIMEO: nobody woke the sender")
        return 1
    print("sent after the wait")
    return 0


def main():
    s = socket.socket(FAMILY, socket.SOCK_DGRAM)
    if sys.argv[1] == "recv":
        port, count = int(sys.argv[2]), int(sys.argv[3])
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        a = addr(ANY32, port)
        if libc.bind(s.fileno(), a, len(a)):
            print("bind:", ctypes.get_errno())
            return 1
        print("ready", flush=True)
        s.settimeout(60)
        for i in range(count):
            try:
                d = s.recv(16)
            except socket.timeout:
                print(f"timeout after {i} datagrams")
                return 1
            if d != bytes([i & 0xFF]):
                print(f"datagram {i}: {d!r}")
                return 1
        print(f"ok {count}")
        return 0
    if sys.argv[1] == "block":
        return block(s, *map(int, sys.argv[2:5]))
    peer, port, count = map(int, sys.argv[2:5])
    a = addr(peer, port)
    for i in range(count):
        if libc.sendto(s.fileno(), bytes([i & 0xFF]), 1, 0, a, len(a)) != 1:
            print(f"sendto {i}: errno {ctypes.get_errno()}")
            return 1
    print(f"sent {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
