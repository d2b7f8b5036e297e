#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The TCP persona of ivshmem-run, seen by a program using plain TCP calls
(Python's socket module goes through the C library, so the preload library
sees its calls).

  ivshmem_run_check.py server PORT   accept one connection (after select()
                                     on the listener), print what the
                                     accepted socket says, echo one line
  ivshmem_run_check.py client HOST PORT
                                     connect, print what the socket says
                                     about itself, exchange one line
  ivshmem_run_check.py resolve ADDR  (no preload) IOCTL_IVSHMEM_RESOLVE_IPV4
  ivshmem_run_check.py peeraddr PEER (no preload) IOCTL_IVSHMEM_PEER_IPV4

Prints "key value" lines.
"""
import fcntl
import select
import socket
import struct
import sys

IOCTL_RESOLVE = 0xC00C76E1	# _IOWR('v', 0xe1, struct ivshmem_ipv4_map)
IOCTL_PEER = 0xC00C76E2		# _IOWR('v', 0xe2, struct ivshmem_ipv4_map)
MAP = "=4sIHH"


def family():
    with open("/sys/module/af_ivshmem/parameters/family") as f:
        return int(f.read())


def ioctl(cmd, addr, peer, region):
    s = socket.socket(family(), socket.SOCK_STREAM)
    try:
        out = fcntl.ioctl(s.fileno(), cmd, struct.pack(MAP, addr, peer, region, 0))
    except OSError as e:
        return "error " + (e.strerror or str(e))
    finally:
        s.close()
    a, p, r, _ = struct.unpack(MAP, out)
    return f"{socket.inet_ntoa(a)} {p} {r}"


def describe(s, tag):
    print(tag, "peername", *s.getpeername()[:2])
    print(tag, "sockname_addr", s.getsockname()[0])
    print(tag, "domain", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
    print(tag, "protocol", s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(tag, "nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    print(tag, "keepalive", s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
    print(tag, "keepidle", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))
    print(tag, "maxseg_positive", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) > 0)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    print(tag, "tcp_info_state", info[0], "long_enough", len(info) >= 104)
    cong = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    print(tag, "congestion", cong.rstrip(b"\0").decode())


def main():
    mode = sys.argv[1]
    if mode == "resolve":
        print(ioctl(IOCTL_RESOLVE, socket.inet_aton(sys.argv[2]), 0, 0))
    elif mode == "peeraddr":
        print(ioctl(IOCTL_PEER, b"\0" * 4, int(sys.argv[2]), 0xFFFF))
    elif mode == "server":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", int(sys.argv[2])))
        ls.listen(4)
        print("ready", flush=True)
        select.select([ls], [], [], 60)
        c, addr = ls.accept()
        print("server accept_addr", *addr)
        describe(c, "server")
        c.sendall(c.makefile("rb").readline())
        c.close()
    else:
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=30)
        describe(c, "client")
        c.sendall(b"ping\n")
        print("client echo", c.makefile("rb").readline().decode().strip())
        c.close()
    sys.stdout.flush()


main()
