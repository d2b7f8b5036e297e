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
INDEX", or what went wrong and exits 1.  The fields are the shared-memory
ABI's (region_abi.py).
"""
import mmap
import sys
import time

import region_abi as abi


def waiting_channel(shm, sender, receiver):
    """(index, generation) of the waiting datagram channel SENDER ->
    RECEIVER, or None."""
    for c in abi.channels(shm):
        if (c["alloc_state"] == abi.CHAN_ALLOCATED and
                (c["sender_vm"], c["receiver_vm"]) == (sender, receiver) and
                c["type"] == abi.SOCK_DGRAM and c["send_waiting"]):
            return c["index"], c["generation"]
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
            c = abi.channel(shm, i)
            if (c["alloc_state"], c["generation"]) != (abi.CHAN_ALLOCATED,
                                                       gen):
                print(f"channel {i} changed while waiting")
                return 1
            abi.write(shm, i, "receiver_state", abi.RECV_RELEASED)
            print(f"released {i}")
            return 0
    print("no waiting sender")
    return 1


if __name__ == "__main__":
    sys.exit(main())
