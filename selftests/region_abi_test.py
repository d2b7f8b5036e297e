#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The host-side region scripts on a made-up region file (no guests).

Usage: region_abi_test.py TOP

Checks region_abi.py against net/ivshmem/ivshmem_abi.h, then runs
dgram_release.py, chan_takeover.py and security_ring.py on a region file
whose channel table holds the entries each looks for, and checks what
they print and exactly what they write.  Prints TAP; exits 1 on a
failure.
"""
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time

TOP = sys.argv[1]
sys.path.insert(0, os.path.join(TOP, "selftests"))
import region_abi as abi  # noqa: E402

TABLE = 8192
SIZE = 4 << 20
failures = 0
tests = 0


def result(name, want, got):
    global failures, tests
    tests += 1
    if want == got:
        print(f"ok {tests} - {name}")
    else:
        failures += 1
        print(f"not ok {tests} - {name}\n#   want: {want!r}\n#   got:  {got!r}")


def script(name, *args):
    out = subprocess.run([os.path.join(TOP, "selftests", name), *args],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, (out.stdout + out.stderr).strip()


def region(path):
    """A fresh region file: the control section, an empty table."""
    with open(path, "wb") as f:
        f.truncate(SIZE)
    with open(path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), 0)
    for name, value in (("magic", abi.MAGIC), ("abi_version", 2),
                        ("region_size", SIZE), ("block_size", 4096),
                        ("max_peers", 64), ("max_channels", 4096),
                        ("peer_table_offset", 4096),
                        ("channel_table_offset", TABLE)):
        off, fmt = abi.HEADER[name]
        struct.pack_into(fmt, shm, off, value)
    return shm


def fill(shm, index, **fields):
    for name, value in fields.items():
        abi.write(shm, index, name, value)


def main():
    rc, out = script("region_abi.py",
                     os.path.join(TOP, "net/ivshmem/ivshmem_abi.h"))
    result("region_abi.py matches ivshmem_abi.h field by field, and "
           "its constants",
           (0, "ok: 15 header and 22 channel fields, 13 constants match"), (rc, out))

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "shm")
        shm = region(path)
        result("a made-up region reads back",
               (abi.MAGIC, 4096, TABLE + 5 * abi.CHANNEL_SIZE),
               (abi.header(shm)["magic"], len(list(abi.channels(shm))),
                abi.channel(shm, 5)["offset"]))

        # dgram_release: a waiting datagram channel 0 -> 1 at entry 5
        # (and before it, a datagram one not waiting and a stream one
        # waiting, which it must pass over).
        fill(shm, 0, alloc_state=abi.CHAN_ALLOCATED, generation=1,
             sender_vm=0, receiver_vm=1, sock_type=abi.SOCK_DGRAM)
        fill(shm, 2, alloc_state=abi.CHAN_ALLOCATED, generation=3,
             sender_vm=0, receiver_vm=1, sock_type=abi.SOCK_STREAM,
             send_waiting=1)
        fill(shm, 5, alloc_state=abi.CHAN_ALLOCATED, generation=7,
             sender_vm=0, receiver_vm=1, sock_type=abi.SOCK_DGRAM,
             send_waiting=1)
        before = bytes(shm)
        rc, out = script("dgram_release.py", path, "0", "1", "10")
        result("dgram_release.py releases the waiting datagram channel",
               (0, "released 5"), (rc, out))
        at = abi.channel(shm, 5)["offset"] + abi.CHANNEL["receiver_state"][0]
        result("... and writes only its receiver_state (3)",
               (True, abi.RECV_RELEASED),
               (before[:at] == shm[:at] and before[at + 4:] == shm[at + 4:],
                abi.channel(shm, 5)["receiver_state"]))
        rc, out = script("dgram_release.py", path, "1", "0", "0.3")
        result("dgram_release.py: no waiting channel 1 -> 0, exit 1",
               (1, "no waiting sender"), (rc, out))

        # chan_takeover: a stream 0 -> 1 to port 7400 (entry 3) and its
        # reply (entry 9), after a stream 0 -> 1 to port 7399 and its reply
        # (entries 1 and 4), which it must pass over.  Playing the
        # receiver, we free the reply once the script took entry 3 over.
        def stream_pair(req, reply, port, gen):
            fill(shm, req, alloc_state=abi.CHAN_ALLOCATED, generation=gen,
                 head=0x1122334455, sender_vm=0, receiver_vm=1,
                 sock_type=abi.SOCK_STREAM, src_port=1025, dst_port=port,
                 sender_state=abi.SEND_OPEN, receiver_state=abi.RECV_ACCEPTED)
            fill(shm, reply, alloc_state=abi.CHAN_ALLOCATED, generation=4,
                 sender_vm=1, receiver_vm=0, sock_type=abi.SOCK_STREAM,
                 src_port=port, dst_port=1025, sender_state=abi.SEND_OPEN)

        stream_pair(1, 4, 7399, 30)
        stream_pair(3, 9, 7400, 10)
        # What the region must look like once the script took entry 3 over.
        want = bytearray(shm)
        for name, value in (("receiver_state", abi.RECV_NONE),
                            ("peer_channel", 9), ("peer_generation", 4),
                            ("generation", 11)):
            off, fmt = abi.CHANNEL[name]
            struct.pack_into(fmt, want, TABLE + 3 * abi.CHANNEL_SIZE + off,
                             value)
        taken = []

        def receiver():
            end = time.monotonic() + 20
            while time.monotonic() < end:
                if abi.channel(shm, 3)["generation"] == 11:   # its last
                    taken.append(bytes(shm) == want)
                    abi.write(shm, 9, "alloc_state", abi.CHAN_FREE)
                    return
                time.sleep(0.02)

        t = threading.Thread(target=receiver)
        t.start()
        rc, out = script("chan_takeover.py", path, "0", "1", "7400", "10")
        t.join()
        result("chan_takeover.py takes the request over, the reply goes",
               (0, "reply freed, receiver_state 0"), (rc, out))
        result("... it wrote exactly receiver_state NONE, peer_channel 9, "
               "peer_generation 4 and generation 11 into entry 3",
               [True], taken)
        c = abi.channel(shm, 3)
        result("... and the entry it took is free at the end",
               (abi.CHAN_FREE, abi.SEND_NONE),
               (c["alloc_state"], c["sender_state"]))
        stream_pair(3, 9, 7400, 20)
        rc, out = script("chan_takeover.py", path, "0", "1", "7400", "0.5")
        result("chan_takeover.py: a reply nobody frees is reported held",
               (0, "reply still held, receiver_state 0"), (rc, out))
        stream_pair(3, 9, 7400, 20)
        rc, out = script("chan_takeover.py", path, "0", "1", "7401", "0.3")
        result("chan_takeover.py: no connection to port 7401, exit 1",
               (1, "no such connection"), (rc, out))

        # security_ring: a secure SOCK_SEQPACKET channel 1 -> 2 to 5000,
        # after one to port 5001 it must pass over.
        fill(shm, 11, alloc_state=abi.CHAN_ALLOCATED, generation=2,
             head=900, sender_vm=1, receiver_vm=2, buff_offset=2 << 20,
             buff_size=8192, dst_port=5001, tail=800,
             sock_type=abi.SOCK_SEQPACKET)
        fill(shm, 12, alloc_state=abi.CHAN_ALLOCATED, generation=6,
             head=300, sender_vm=1, receiver_vm=2, buff_offset=1 << 20,
             buff_size=65536, dst_port=5000, tail=200,
             sock_type=abi.SOCK_SEQPACKET | abi.SOCK_F_SECURE)
        rc, out = script("security_ring.py", path, "info", "1", "2", "5000",
                         "seqpacket")
        want = {"index": 12, "gen": 6, "head": 300, "tail": 200,
                "off": 1 << 20, "size": 65536, "secure": True}
        result("security_ring.py info finds the SOCK_SEQPACKET channel",
               (0, str(want)), (rc, out))
        rc, out = script("security_ring.py", path, "info", "1", "2", "5000")
        result("security_ring.py info: no stream channel there, exit 1",
               (1, "no channel 1 -> 2 port 5000"), (rc, out))
        shm[(1 << 20) + 10:(1 << 20) + 16] = b"secret"
        rc, out = script("security_ring.py", path, "count", "secret")
        result("security_ring.py count", (0, "1"), (rc, out))
        shm.close()

    print(f"1..{tests}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
