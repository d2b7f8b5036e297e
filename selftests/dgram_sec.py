#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Datagram sockets under an IVSHMEM_SECURITY policy, for selftests/security.sh.

    dgram_sec.py POLICY send PEER PORT      one datagram: "sent" or "sendto: ERRNAME"
    dgram_sec.py POLICY connect PEER PORT   "connected" or "connect: ERRNAME"
    dgram_sec.py POLICY recv PORT SECONDS   "got N" (bytes), or "none" after
                                            SECONDS or on SIGTERM
    dgram_sec.py POLICY loop SELF PORT      to our own guest: "got N" or the error

POLICY (off, prefer, require) is set with IVSHMEM_SECURITY on the socket.
Python has no AF_IVSHMEM addresses: they are built by hand and passed to
libc through ctypes.
"""
import ctypes
import errno
import os
import select
import signal
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
FAMILY = int(open("/sys/module/af_ivshmem/parameters/family").read())
ANY32, ANY16 = 0xFFFFFFFF, 0xFFFF
IVSHMEM_SECURITY = 8
POLICIES = {"off": 0, "prefer": 1, "require": 2}


def addr(peer, port):
    return struct.pack("=HHIIHH", FAMILY, 0, port, peer, ANY16, 0)


def err(what):
    print(f"{what}: {errno.errorcode.get(ctypes.get_errno(), '?')}")
    return 1


def bind(s, port):
    a = addr(ANY32, port)
    return libc.bind(s.fileno(), a, len(a))


def give_up(signum, frame):
    print("none", flush=True)
    os._exit(0)


def recv(s, seconds):
    signal.signal(signal.SIGTERM, give_up)
    if select.select([s], [], [], seconds)[0]:
        print(f"got {len(s.recv(65536))}")
    else:
        print("none")
    return 0


def main():
    policy, cmd = POLICIES[sys.argv[1]], sys.argv[2]
    s = socket.socket(FAMILY, socket.SOCK_DGRAM)
    s.setsockopt(FAMILY, IVSHMEM_SECURITY, policy)
    if cmd == "recv":
        if bind(s, int(sys.argv[3])):
            return err("bind")
        print("ready", flush=True)
        return recv(s, float(sys.argv[4]))
    peer, port = int(sys.argv[3]), int(sys.argv[4])
    a = addr(peer, port)
    if cmd == "connect":
        if libc.connect(s.fileno(), a, len(a)):
            return err("connect")
        print("connected")
        return 0
    if cmd == "loop" and bind(s, port):
        return err("bind")
    if libc.sendto(s.fileno(), b"datagram", 8, 0, a, len(a)) != 8:
        return err("sendto")
    if cmd == "loop":
        return recv(s, 3)
    print("sent")
    return 0


sys.exit(main())
