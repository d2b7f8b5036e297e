#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side attacks on the rings of a region, for selftests/security.sh.

    security_ring.py SHM info    SENDER RECEIVER PORT [seqpacket]
    security_ring.py SHM tamper  SENDER RECEIVER PORT [seqpacket]
    security_ring.py SHM replay  SENDER RECEIVER PORT [seqpacket]
    security_ring.py SHM count   PATTERN

The channel is the allocated stream (or SOCK_SEQPACKET) channel from peer
SENDER to peer RECEIVER whose destination port is PORT.  tamper flips one ciphertext byte
in the first unread record; replay writes an earlier record of the same
length (already read, still in the ring's memory) over the first unread
one.  Both wait (up to WAIT seconds, 60) until the channel exists and its
receiver holds back: it has read past the handshake, its tail has not
moved for half a second, and a record starts at it; then they print what
they did, or fail (exit 1) with the last reason they waited for.  count
prints how often PATTERN occurs in the memory object.
"""
import mmap
import struct
import sys
import time

import region_abi as abi

WAIT = 60
REC_HDR = 8
TAG = 16
HANDSHAKE = 48


def rec_bytes(n):
    return REC_HDR + TAG + (n + 7) // 8 * 8


class NotYet(Exception):
    """The attack cannot be made yet; the argument says why."""


def find(m, sender, receiver, port, stype_want):
    for c in abi.channels(m):
        if (c["alloc_state"] == abi.CHAN_ALLOCATED and
                (c["sender_vm"], c["receiver_vm"]) == (sender, receiver) and
                c["dst_port"] == port and c["type"] == stype_want):
            return dict(index=c["index"], gen=c["generation"],
                        head=c["head"], tail=c["tail"],
                        off=c["buff_offset"], size=c["buff_size"],
                        secure=bool(c["sock_type"] & abi.SOCK_F_SECURE))
    raise NotYet('no channel %d -> %d port %d' % (sender, receiver, port))


def ring_read(m, ch, pos, n):
    out = bytearray()
    while n:
        o = pos % ch['size']
        k = min(n, ch['size'] - o)
        out += m[ch['off'] + o:ch['off'] + o + k]
        pos += k
        n -= k
    return bytes(out)


def ring_write(m, ch, pos, data):
    while data:
        o = pos % ch['size']
        k = min(len(data), ch['size'] - o)
        m[ch['off'] + o:ch['off'] + o + k] = data[:k]
        pos += k
        data = data[k:]


def records(m, ch):
    """(position, length) of each record whose header is still intact:
    from the end of the handshake while nothing wrapped over it."""
    pos = HANDSHAKE if ch['head'] <= ch['size'] else ch['tail']
    while pos < ch['head']:
        n, flags = struct.unpack('<II', ring_read(m, ch, pos, REC_HDR))
        if flags & ~3 or n > 16384:    # SOCK_SEQPACKET: EOR, ABORT
            break
        yield pos, n
        pos += rec_bytes(n)


def main():
    shm, cmd = sys.argv[1], sys.argv[2]
    with open(shm, 'r+b') as f:
        m = mmap.mmap(f.fileno(), 0)
        if cmd == 'count':
            pat = sys.argv[3].encode()
            print(m[:].count(pat))
            return
        sender, receiver, port = map(int, sys.argv[3:6])
        seq = len(sys.argv) > 6 and sys.argv[6] == 'seqpacket'
        stype = abi.SOCK_SEQPACKET if seq else abi.SOCK_STREAM
        if cmd == 'info':
            try:
                print(find(m, sender, receiver, port, stype))
            except NotYet as e:
                sys.exit(str(e))
            return
        end = time.monotonic() + WAIT
        last_tail = None
        while True:
            try:
                ch = find(m, sender, receiver, port, stype)
                held = last_tail == ch['tail']
                last_tail = ch['tail']
                print(attack(m, ch, cmd, held))
                return
            except NotYet as e:
                if time.monotonic() >= end:
                    sys.exit(str(e))
            time.sleep(0.5)


def attack(m, ch, cmd, held):
    """Makes the attack on the channel @ch, if its receiver holds back
    (@held: its tail did not move since the last look); returns what it
    did, or raises NotYet."""
    if ch['tail'] <= HANDSHAKE or not held:
        raise NotYet('receiver not holding back: %s' % ch)
    if ch['tail'] == ch['head']:
        raise NotYet('nothing unread: %s' % ch)
    recs = list(records(m, ch))
    unread = [(p, n) for p, n in recs if p >= ch['tail']]
    if not unread or unread[0][0] != ch['tail']:
        raise NotYet('no record at tail: %s' % ch)
    if cmd == 'tamper':
        pos, n = unread[0]
        at = pos + REC_HDR + n // 2
        b = ring_read(m, ch, at, 1)
        ring_write(m, ch, at, bytes([b[0] ^ 0x5a]))
        return 'flipped a byte of the %d-byte record at %d' % (n, pos)
    # replay: only the first unread record may be replaced (the receiver
    # must not get past it first)
    pos, n = unread[0]
    old = [p for p, k in recs if p < ch['tail'] and k == n]
    if not old:
        raise NotYet('no earlier record of the same length: %s %s' %
                     (ch, recs[:8]))
    data = ring_read(m, ch, old[-1], rec_bytes(n))
    ring_write(m, ch, pos, data)
    return ('wrote the %d-byte record at %d over the one at %d (tail %d)' %
            (n, old[-1], pos, ch['tail']))


main()
