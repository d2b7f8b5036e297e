#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One-byte AF_IVSHMEM datagrams across the end of the datagram ring.

Usage: dgram_wrap.py recv PORT COUNT | dgram_wrap.py send PEER PORT COUNT

A datagram takes a 16-byte header and its payload padded to 8 bytes, so
one-byte datagrams (24 bytes) put a header across the ring's end sooner
or later (selftests/hostile.sh sizes the ring for that).  The receiver
checks that all COUNT arrive, in order, with the right byte, and prints
"ok COUNT" or what went wrong.  Python has no AF_IVSHMEM addresses: they
are built by hand and passed to libc through ctypes.
"""
import ctypes
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
FAMILY = int(open("/sys/module/af_ivshmem/parameters/family").read())
ANY32, ANY16 = 0xFFFFFFFF, 0xFFFF
SO_RCVBUFFORCE = 33


def addr(peer, port):
    return struct.pack("=HHIIHH", FAMILY, 0, port, peer, ANY16, 0)


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
