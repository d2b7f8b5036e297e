#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Latency benchmark (not a test): 1-byte ping-pong between two guests,
# AF_IVSHMEM in doorbell mode, polling mode and with SO_BUSY_POLL, beside
# TCP over virtio-net between the same two guests, in one run.  Prints a
# table of round-trip times (p50, p99, max).  ROUNDS sets the count.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$TOP/tools/vm/lab
# shellcheck source=tools/bench/guests.sh
. "$TOP/tools/bench/guests.sh"
MODULE=$TOP/net/ivshmem/af_ivshmem.ko
PP=$TOP/selftests/ivshmem_pingpong
ROUNDS=${ROUNDS:-20000}
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-bench}

rows=()
measure() {	# measure LABEL ARGS...: one row from a ping-pong run
	local label=$1 out
	shift
	out=$("$LAB" exec vm1 --timeout 1800 -- "'$PP' $*")
	[[ $out == "ok "* ]] || { echo "$label: $out" >&2; exit 1; }
	rows+=("$(printf '| %-40s | %s |' "$label" "${out#ok }")")
}
boot() {	# boot MODE BUSY_US: two guests, module, test peers
	"$LAB" start --force -n 2 --mode "$1" >/dev/null
	for vm in vm1 vm2; do
		"$LAB" exec "$vm" -- "insmod '$MODULE' && PEERD_BUSY_POLL_US=$2 \
			setsid '$TOP/selftests/ivshmem_peerd' >/tmp/peerd.log 2>&1 &
			sleep 1; grep -q ready /tmp/peerd.log" >/dev/null
	done
}

boot doorbell 0
measure "AF_IVSHMEM, doorbell (MSI-X)" 1 "$ROUNDS"
measure "TCP over virtio-net, same guests" -t 10.99.0.2 1 "$ROUNDS"
"$LAB" stop >/dev/null
boot doorbell 5000
measure "AF_IVSHMEM, doorbell + SO_BUSY_POLL 5 ms" -b 5000 1 "$ROUNDS"
"$LAB" stop >/dev/null
boot plain 0
measure "AF_IVSHMEM, plain (adaptive polling)" 1 $((ROUNDS / 20))
"$LAB" stop >/dev/null
boot plain 5000
measure "AF_IVSHMEM, plain + SO_BUSY_POLL 5 ms" -b 5000 1 "$ROUNDS"
"$LAB" stop >/dev/null

echo
echo "1-byte ping-pong between two guests (TCG, 1 vCPU each), round-trip times:"
echo
echo "| transport                                | result |"
echo "| ---------------------------------------- | ------ |"
printf '%s\n' "${rows[@]}"
