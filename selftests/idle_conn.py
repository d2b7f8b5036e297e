#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""An AF_IVSHMEM stream connection that nobody uses.

Usage: idle_conn.py listen PORT SECONDS
       idle_conn.py connect PEER PORT SECONDS

"listen" listens on PORT and never accepts: a connection to it stays a
child in the accept queue that nobody reads.  It prints "listening",
then holds the socket for SECONDS and prints "done".

"connect" connects to PORT on PEER, prints "connected", sends nothing
and waits up to SECONDS for the connection to be readable or to fail,
then reads once and prints what it got: "recv: ECONNRESET" (or another
error name), "recv: eof", "recv: N bytes" or "recv: nothing in SECONDS s".

Python has no AF_IVSHMEM addresses: they are built by hand and passed
to libc through ctypes (as in dgram_wrap.py).
"""
import ctypes
import errno
import select
import socket
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
FAMILY = int(open("/sys/module/af_ivshmem/parameters/family").read())
ANY32, ANY16 = 0xFFFFFFFF, 0xFFFF


def addr(peer, port):
    return struct.pack("=HHIIHH", FAMILY, 0, port, peer, ANY16, 0)


def call(name, ret):
    if ret < 0:
        err = ctypes.get_errno()
        print(f"{name}: {errno.errorcode.get(err, err)}")
        sys.exit(1)


def listen(port, seconds):
    s = socket.socket(FAMILY, socket.SOCK_STREAM)
    a = addr(ANY32, port)
    call("bind", libc.bind(s.fileno(), a, len(a)))
    call("listen", libc.listen(s.fileno(), 4))
    print("listening", flush=True)
    time.sleep(seconds)
    print("done")


def connect(peer, port, seconds):
    s = socket.socket(FAMILY, socket.SOCK_STREAM)
    a = addr(peer, port)
    call("connect", libc.connect(s.fileno(), a, len(a)))
    print("connected", flush=True)
    p = select.poll()
    p.register(s.fileno(), select.POLLIN)
    if not p.poll(seconds * 1000):
        print(f"recv: nothing in {seconds} s")
        return
    try:
        data = s.recv(4096, socket.MSG_DONTWAIT)
    except OSError as e:
        print(f"recv: {errno.errorcode.get(e.errno, e.errno)}")
        return
    print(f"recv: {len(data)} bytes" if data else "recv: eof")


def main():
    if sys.argv[1] == "listen":
        listen(int(sys.argv[2]), float(sys.argv[3]))
    else:
        connect(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))


if __name__ == "__main__":
    main()
