#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Plays a receiver that lets go of a datagram channel while its sender waits.

Usage: dgram_release.py SHM_FILE SENDER RECEIVER [SECONDS]

Run on the host against a lab region's memory file.  Waits (SECONDS, 60
by default) until the datagram channel from peer SENDER to peer RECEIVER
has its sender waiting for room (send_waiting set), two seconds more so
that the sender is asleep, then, the entry unchanged, writes
IVSHM_RECV_RELEASED into its receiver_state: what a receiver writes when
it gives up on a channel (one it found corrupt, say).  Prints "released
INDEX", or what went wrong and exits 1.  The channel table's offset and
size come from the control section (as security_ring.py reads them); the
entry offsets are the shared-memory ABI's (af_ivshmem.rst).
"""
import mmap
import struct
import sys
import time

CHAN_SIZE = 128
ALLOCATED, SOCK_DGRAM, RECV_RELEASED = 1, 2, 3


def table(shm):
    """(offset, entries) of the channel table, from the control section
    (as security_ring.py reads them)."""
    count, = struct.unpack_from("<I", shm, 24)
    offset, = struct.unpack_from("<I", shm, 32)
    return offset, count


def entry(shm, i):
    """(alloc_state, generation, sender, receiver, sock_type, waiting)."""
    e = table(shm)[0] + i * CHAN_SIZE
    return (struct.unpack_from("<II", shm, e) +
            struct.unpack_from("<HH", shm, e + 16) +
            struct.unpack_from("<HH", shm, e + 40))


def waiting_channel(shm, sender, receiver):
    """(index, generation) of the waiting datagram channel SENDER ->
    RECEIVER, or None."""
    for i in range(table(shm)[1]):
        state, gen, snd, rcv, sock_type, waiting = entry(shm, i)
        if (state == ALLOCATED and (snd, rcv) == (sender, receiver) and
                sock_type & 0xFF == SOCK_DGRAM and waiting):
            return i, gen
    return None


def main():
    path, sender, receiver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 60
    with open(path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), 0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            found = waiting_channel(shm, sender, receiver)
            if found is None:
                time.sleep(0.05)
                continue
            i, gen = found
            time.sleep(2)
            state, now_gen = entry(shm, i)[:2]
            if (state, now_gen) != (ALLOCATED, gen):
                print(f"channel {i} changed while waiting")
                return 1
            struct.pack_into("<I", shm, table(shm)[0] + i * CHAN_SIZE + 72,
                             RECV_RELEASED)
            print(f"released {i}")
            return 0
    print("no waiting sender")
    return 1


if __name__ == "__main__":
    sys.exit(main())
