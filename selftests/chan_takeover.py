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
is nobody's) and exits 0; 1 if the channels never showed up.  The
fields are the shared-memory ABI's (region_abi.py).
"""
import mmap
import sys
import time

import region_abi as abi


def find(shm, sender, receiver, port_key, port):
    """Index of the allocated, open stream channel SENDER -> RECEIVER
    whose PORT_KEY ("src_port" or "dst_port") is PORT, or None."""
    for c in abi.channels(shm):
        if (c["alloc_state"] == abi.CHAN_ALLOCATED and
                c["type"] == abi.SOCK_STREAM and
                (c["sender_vm"], c["receiver_vm"]) == (sender, receiver) and
                c[port_key] == port and c["sender_state"] == abi.SEND_OPEN):
            return c["index"]
    return None


def main():
    path = sys.argv[1]
    sender, receiver, port = map(int, sys.argv[2:5])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 60
    with open(path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), 0)
        end = time.monotonic() + seconds
        while True:
            req = find(shm, sender, receiver, "dst_port", port)
            reply = find(shm, receiver, sender, "src_port", port)
            if req is not None and reply is not None:
                break
            if time.monotonic() > end:
                print("no such connection")
                return 1
            time.sleep(0.05)
        gen = abi.channel(shm, req)["generation"]
        reply_gen = abi.channel(shm, reply)["generation"]
        abi.write(shm, req, "receiver_state", abi.RECV_NONE)
        abi.write(shm, req, "peer_channel", reply)
        abi.write(shm, req, "peer_generation", reply_gen)
        abi.write(shm, req, "generation", (gen + 1) & 0xFFFFFFFF)

        end = time.monotonic() + seconds
        held = True
        while held and time.monotonic() < end:
            r = abi.channel(shm, reply)
            held = (r["alloc_state"] == abi.CHAN_ALLOCATED and
                    r["generation"] == reply_gen)
            time.sleep(0.05)
        # A moment more for a stray write by the receiver to land.
        time.sleep(1)
        rstate = abi.channel(shm, req)["receiver_state"]
        print(f"reply {'still held' if held else 'freed'}, "
              f"receiver_state {rstate}")
        abi.write(shm, req, "sender_state", abi.SEND_NONE)
        abi.write(shm, req, "alloc_state", abi.CHAN_FREE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
