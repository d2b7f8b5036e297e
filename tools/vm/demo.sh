#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: boots two guests on one IVSHMEM region (doorbell mode), loads
# af_ivshmem in both, and shows a message and a bulk transfer going from
# guest 1 to guest 2 over AF_IVSHMEM.  The lab stays up afterwards so you
# can try things (tools/vm/lab exec vm1 -- ...); `tools/vm/lab stop` ends it.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$TOP/tools/vm/lab
DEMO=$TOP/tools/ivshmem-demo/ivshmem-demo
MODULE=$TOP/net/ivshmem/af_ivshmem.ko
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/ivshmem-lab}
MIB=${DEMO_MIB:-256}

say() { printf '\n== %s\n' "$*"; }

say "Booting two QEMU guests that share one IVSHMEM region (ivshmem-doorbell)"
"$LAB" start --force -n 2 --mode doorbell

say "Loading af_ivshmem in both guests"
for vm in vm1 vm2; do
	"$LAB" exec "$vm" -- "insmod '$MODULE' && dmesg | grep 'af_ivshmem.*region' | tail -n 1"
done

say "Guest 2 listens on AF_IVSHMEM port 4000"
"$LAB" exec vm2 -- "setsid '$DEMO' server 4000 >/tmp/demo.log 2>&1 &
	sleep 0.5; cat /tmp/demo.log"

say "Guest 1 connects to peer 1 (guest 2), sends a message and $MIB MiB"
"$LAB" exec vm1 -- "'$DEMO' client 1 4000 $MIB 'Hello from guest 1'"

say "What guest 2 saw"
"$LAB" exec vm2 -- "sleep 0.5; cat /tmp/demo.log"

say "Done. The guests are still running:"
echo "   tools/vm/lab exec vm1 -- <command>     run something in guest 1"
echo "   tools/vm/lab stop                       shut the lab down"
