#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Prints the allocation state of an AF_IVSHMEM region from the host side.

Usage: region_usage.py SHM_FILE
Output: one line "magic=0x... abi=N active=N free_start=N data_offset=N".
Reads the control section (shared-memory ABI v2, see
Documentation/networking/af_ivshmem.rst); exits 1 if the region is not
formatted.
"""
import struct
import sys

MAGIC = 0x4D485349


def main():
    with open(sys.argv[1], "rb") as f:
        hdr = f.read(72)
    magic, abi = struct.unpack_from("<II", hdr, 0)
    data_offset = struct.unpack_from("<I", hdr, 36)[0]
    free_start, active = struct.unpack_from("<II", hdr, 56)
    print(f"magic={magic:#x} abi={abi} active={active} "
          f"free_start={free_start} data_offset={data_offset}")
    return 0 if magic == MAGIC else 1


if __name__ == "__main__":
    sys.exit(main())
