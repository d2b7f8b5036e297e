#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Plays a peer that lets go of its channel under an idle connection.

Usage: chan_takeover.py SHM_FILE SENDER RECEIVER PORT [SECONDS]

Run on the host against a lab region's memory file.  Waits (SECONDS, 60
by default) for the open stream channel from peer SENDER to port PORT
of peer RECEIVER, and for the reply channel back (RECEIVER to SENDER,
from PORT).  Then it makes the first look freed by its sender and taken
by another connection: generation one up, receiver_state NONE and
peer_generation non-zero (a fresh reply channel nobody has touched yet,
which the receiver's request scan passes over).  The sender half is
left as it is: the connection's sender still thinks the entry its own.

The receiver's socket must then let go of the connection by itself (no
process reads it): the reply channel gets freed, and the entry that is
now "another connection's" keeps receiver_state NONE (the receiver must
not release a channel that is no longer its own).  Waits SECONDS for the
reply channel to go, prints "reply freed, receiver_state N" (or
"reply still held, receiver_state N"), then frees the entry it took (it
is nobody's) and exits 0; 1 if the channels never showed up.  Offsets
are the shared-memory ABI's (af_ivshmem.rst), as in dgram_release.py.
"""
import mmap
import struct
import sys
import time

CHAN_SIZE = 128
FREE, ALLOCATED = 0, 1
SOCK_STREAM = 1
SEND_NONE, SEND_OPEN = 0, 2
RECV_NONE = 0


def table(shm):
    """(offset, entries) of the channel table, from the control section."""
    count, = struct.unpack_from("<I", shm, 24)
    offset, = struct.unpack_from("<I", shm, 32)
    return offset, count


def entry(shm, i):
    """A dict of the fields this test looks at, entry I."""
    e = table(shm)[0] + i * CHAN_SIZE
    state, gen = struct.unpack_from("<II", shm, e)
    snd, rcv = struct.unpack_from("<HH", shm, e + 16)
    src, dst = struct.unpack_from("<II", shm, e + 32)
    sock_type, = struct.unpack_from("<H", shm, e + 40)
    sstate, = struct.unpack_from("<I", shm, e + 52)
    rstate, = struct.unpack_from("<I", shm, e + 72)
    return dict(off=e, state=state, gen=gen, snd=snd, rcv=rcv, src=src,
                dst=dst, type=sock_type & 0xFF, sstate=sstate, rstate=rstate)


def find(shm, sender, receiver, port_key, port):
    """Index of the allocated, open stream channel SENDER -> RECEIVER
    whose PORT_KEY ("src" or "dst") is PORT, or None."""
    for i in range(table(shm)[1]):
        c = entry(shm, i)
        if (c["state"] == ALLOCATED and c["type"] == SOCK_STREAM and
                (c["snd"], c["rcv"]) == (sender, receiver) and
                c[port_key] == port and c["sstate"] == SEND_OPEN):
            return i
    return None


def main():
    path = sys.argv[1]
    sender, receiver, port = map(int, sys.argv[2:5])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 60
    with open(path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), 0)
        end = time.monotonic() + seconds
        while True:
            req = find(shm, sender, receiver, "dst", port)
            reply = find(shm, receiver, sender, "src", port)
            if req is not None and reply is not None:
                break
            if time.monotonic() > end:
                print("no such connection")
                return 1
            time.sleep(0.05)
        c = entry(shm, req)
        reply_gen = entry(shm, reply)["gen"]
        struct.pack_into("<I", shm, c["off"] + 72, RECV_NONE)
        struct.pack_into("<II", shm, c["off"] + 44, reply, reply_gen)
        struct.pack_into("<I", shm, c["off"] + 4, (c["gen"] + 1) & 0xFFFFFFFF)

        end = time.monotonic() + seconds
        held = True
        while held and time.monotonic() < end:
            r = entry(shm, reply)
            held = r["state"] == ALLOCATED and r["gen"] == reply_gen
            time.sleep(0.05)
        # A moment more for a stray write by the receiver to land.
        time.sleep(1)
        rstate = entry(shm, req)["rstate"]
        print(f"reply {'still held' if held else 'freed'}, "
              f"receiver_state {rstate}")
        struct.pack_into("<I", shm, c["off"] + 52, SEND_NONE)
        struct.pack_into("<I", shm, c["off"], FREE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
