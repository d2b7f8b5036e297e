#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The shared-memory ABI (v2) of an AF_IVSHMEM region, for host-side tests.

The layouts of the control section and of a channel-table entry, field
by field, as net/ivshmem/ivshmem_abi.h and
Documentation/networking/af_ivshmem.rst give them (little-endian, no
padding), and the few values the test scripts write.  A script maps the
lab's memory file and reads or writes fields by name:

    hdr = header(shm)
    for ch in channels(shm): ...
    write(shm, ch["index"], "receiver_state", RECV_RELEASED)

Run as "region_abi.py ivshmem_abi.h", it checks its layouts against the
C header's structures, field by field, and its constants against the
header's values (make check's host stage).
"""
import re
import struct
import sys

HEADER_FIELDS = (
    ("magic", "I"), ("abi_version", "I"), ("region_size", "Q"),
    ("block_size", "I"), ("max_peers", "I"), ("max_channels", "I"),
    ("peer_table_offset", "I"), ("channel_table_offset", "I"),
    ("data_offset", "I"), ("data_blocks", "I"), ("format_state", "I"),
    ("control_lock", "Q"), ("free_start_offset", "I"),
    ("num_active_channel", "I"), ("alloc_generation", "Q"),
)
CHANNEL_FIELDS = (
    # sender half
    ("alloc_state", "I"), ("generation", "I"), ("head", "Q"),
    ("sender_vm", "H"), ("receiver_vm", "H"), ("sender_pid", "I"),
    ("buff_offset", "I"), ("buff_size", "I"), ("src_port", "I"),
    ("dst_port", "I"), ("sock_type", "H"), ("send_waiting", "H"),
    ("peer_channel", "I"), ("peer_generation", "I"),
    ("sender_state", "I"), ("data_size", "I"), ("head_touch", "I"),
    # receiver half
    ("tail", "Q"), ("receiver_state", "I"), ("reply_channel", "I"),
    ("reply_generation", "I"), ("recv_waiting", "I"),
)
CHANNEL_SIZE = 128
MAX_CHANNELS = 4096
MAGIC = 0x4D485349

CHAN_FREE, CHAN_ALLOCATED = 0, 1
SEND_NONE, SEND_CONNECTING, SEND_OPEN, SEND_SHUTDOWN, SEND_RESET = range(5)
RECV_NONE, RECV_ACCEPTED, RECV_REFUSED, RECV_RELEASED = range(4)
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
SOCK_TYPE_MASK, SOCK_F_SECURE = 0xFF, 0x100


def _layout(fields):
    """(struct format of the whole, {name: (offset, format)}) of a packed
    little-endian layout."""
    whole = "<" + "".join(fmt for _, fmt in fields)
    offsets, at = {}, 0
    for name, fmt in fields:
        offsets[name] = (at, "<" + fmt)
        at += struct.calcsize("<" + fmt)
    return whole, offsets


HEADER_FORMAT, HEADER = _layout(HEADER_FIELDS)
CHANNEL_FORMAT, CHANNEL = _layout(CHANNEL_FIELDS)
# The entry's last 40 bytes are reserved.
assert struct.calcsize(HEADER_FORMAT) == 72
assert struct.calcsize(CHANNEL_FORMAT) == CHANNEL_SIZE - 40


def header(shm):
    """The control section's fields."""
    values = struct.unpack_from(HEADER_FORMAT, shm, 0)
    return dict(zip((name for name, _ in HEADER_FIELDS), values))


def _entry(shm, table, index):
    at = table + index * CHANNEL_SIZE
    values = struct.unpack_from(CHANNEL_FORMAT, shm, at)
    ch = dict(zip((name for name, _ in CHANNEL_FIELDS), values))
    ch.update(index=index, offset=at,
              type=ch["sock_type"] & SOCK_TYPE_MASK)
    return ch


def channel(shm, index):
    """Entry INDEX's fields, plus "index", "offset" (of the entry in the
    region) and "type" (sock_type without its flags)."""
    return _entry(shm, header(shm)["channel_table_offset"], index)


def channels(shm):
    """Every entry of the table, as field dicts (see channel()): as many
    as the control section says, at most MAX_CHANNELS, and only whole
    entries inside the mapping (guests may have scribbled on the
    section)."""
    hdr = header(shm)
    table = hdr["channel_table_offset"]
    count = min(hdr["max_channels"], MAX_CHANNELS,
                max(0, len(shm) - table) // CHANNEL_SIZE)
    for i in range(count):
        yield _entry(shm, table, i)


def write(shm, index, name, value):
    """Writes field NAME of entry INDEX."""
    off, fmt = CHANNEL[name]
    table = header(shm)["channel_table_offset"]
    struct.pack_into(fmt, shm, table + index * CHANNEL_SIZE + off, value)


C_TYPES = {"__le16": "H", "__le32": "I", "__le64": "Q"}


def c_fields(text, name):
    """The (field, format) list of C structure NAME in TEXT, and the
    size of its trailing reserved bytes."""
    body = re.search(r"^struct %s \{\n(.*?)^\};" % name, text, re.M | re.S)
    if not body:
        raise SystemExit(f"no struct {name}")
    fields, reserved = [], 0
    for line in body.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("/*"):
            continue
        m = re.fullmatch(r"(\w+) (\w+)(?:\[(\d+)\])?;", line)
        if m and m.group(1) == "__u8" and m.group(2) == "reserved":
            reserved = int(m.group(3))
        elif m and m.group(1) in C_TYPES and not m.group(3):
            fields.append((m.group(2), C_TYPES[m.group(1)]))
        else:
            raise SystemExit(f"struct {name}: cannot read {line!r}")
    return fields, reserved


def check(path):
    """Compares the layouts above with the C header at PATH."""
    text = open(path, encoding="utf-8").read()
    bad = []
    for name, ours, size in (("ivshm_region_header", HEADER_FIELDS, 72),
                             ("ivshm_channel", CHANNEL_FIELDS, CHANNEL_SIZE)):
        theirs, reserved = c_fields(text, name)
        for i in range(max(len(ours), len(theirs))):
            c = theirs[i] if i < len(theirs) else None
            py = ours[i] if i < len(ours) else None
            if c != py:
                bad.append(f"struct {name}: field {i} is {c} in C, "
                           f"{py} here")
                break
        used = struct.calcsize("<" + "".join(f for _, f in theirs))
        if used + reserved != size:
            bad.append(f"struct {name}: {used} + {reserved} bytes, not {size}")
    values = {m.group(1): int(m.group(2), 0) for m in re.finditer(
        r"IVSHM_((?:CHAN|SEND|RECV|SOCK)_\w+)(?:\s*=\s*|\t+)(\w+)", text)}
    ours = {name: value for name, value in globals().items()
            if re.fullmatch(r"(CHAN|SEND|RECV)_[A-Z_]+|SOCK_(TYPE_MASK|F_\w+)",
                            name)}
    for name, value in sorted(ours.items()):
        if values.get(name) != value:
            bad.append(f"{name}: {values.get(name)} in C, {value} here")
    for line in bad:
        print(line)
    if not bad:
        print(f"ok: {len(HEADER_FIELDS)} header and {len(CHANNEL_FIELDS)} "
              f"channel fields, {len(ours)} constants match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]))
