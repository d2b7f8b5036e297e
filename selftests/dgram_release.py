#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Plays a receiver that lets go of a datagram channel while its sender waits.

Usage: dgram_release.py SHM_FILE SENDER RECEIVER [SECONDS]

Run on the host against a lab region's memory file.  Waits (SECONDS, 60
by default) until the datagram channel from peer SENDER to peer RECEIVER
has its sender waiting for room (send_waiting set), half a second more so
that the sender is asleep, then writes IVSHM_RECV_RELEASED into the
entry's receiver_state: what a receiver writes when it gives up on a
channel (one it found corrupt, say).  Prints "released INDEX", or "no
waiting sender" and exits 1.  The offsets are the shared-memory ABI's
channel table (Documentation/networking/af_ivshmem.rst).
"""
import mmap
import struct
import sys
import time

CHAN_TABLE, CHAN_SIZE, MAX_CHANNELS = 8192, 128, 4096
ALLOCATED, SOCK_DGRAM, RECV_RELEASED = 1, 2, 3


def waiting_channel(shm, sender, receiver):
    """The index of the waiting datagram channel SENDER -> RECEIVER."""
    for i in range(MAX_CHANNELS):
        e = CHAN_TABLE + i * CHAN_SIZE
        state = struct.unpack_from("<I", shm, e)[0]
        snd, rcv = struct.unpack_from("<HH", shm, e + 16)
        sock_type, waiting = struct.unpack_from("<HH", shm, e + 40)
        if (state == ALLOCATED and (snd, rcv) == (sender, receiver) and
                sock_type & 0xFF == SOCK_DGRAM and waiting):
            return i
    return None


def main():
    path, sender, receiver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 60
    with open(path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), 0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            i = waiting_channel(shm, sender, receiver)
            if i is not None:
                time.sleep(0.5)
                struct.pack_into("<I", shm, CHAN_TABLE + i * CHAN_SIZE + 72,
                                 RECV_RELEASED)
                print(f"released {i}")
                return 0
            time.sleep(0.05)
    print("no waiting sender")
    return 1


if __name__ == "__main__":
    sys.exit(main())
