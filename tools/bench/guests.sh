# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the benchmarks: how their guests boot.
#
# Under TCG, QEMU emulates `rep movsb` one byte per iteration.  The guest
# kernel copies user data with `rep movsb` when the CPU has ERMS (QEMU's
# "max" CPU does), while glibc's memcpy, the copy bound, uses vector
# moves.  A socket benchmark would then measure that emulation rather than
# the transports, so the guests boot with clearcpuid=erms: every transport
# and the memcpy bound alike.  BENCH_GUEST_APPEND replaces those words ("" for
# the CPU exactly as QEMU models it).
BENCH_GUEST_APPEND=${BENCH_GUEST_APPEND-clearcpuid=erms}
export IVSHMEM_LAB_APPEND="${IVSHMEM_LAB_APPEND:-} $BENCH_GUEST_APPEND"
