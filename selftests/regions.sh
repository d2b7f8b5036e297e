#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Several IVSHMEM regions per guest (trust groups) and hot-unplug, on a
# three-guest topology:
#
#   region A (64M, doorbell): vm1 (peer 0), vm2 (peer 1)
#   region B (32M, doorbell): vm1 (peer 0), vm3 (peer 1)
#
# In vm1, A is region index 0 and B index 1; in vm2 and vm3 their only
# region is index 0.  Prints TAP ("ok N - name"); exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-regions}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

topology=$(mktemp)
trap 'rm -f "$topology"' EXIT
cat >"$topology" <<EOF
# region NAME MODE SIZE GUEST...
region A doorbell 64M vm1 vm2
region B doorbell 32M vm1 vm3
EOF
lab_up "three guests on two regions start" -n 3 --topology "$topology"

loaded=yes
for vm in vm1 vm2 vm3; do
	out=$(run $vm "insmod '$MODULE' && insmod '$DIAG_MODULE' && setsid '$PEERD' >/tmp/peerd.log 2>&1 &
		for i in \$(seq 100); do grep -q ready /tmp/peerd.log && exit 0
			sleep 0.1; done; cat /tmp/peerd.log; exit 1") || loaded="$vm: $out"
done
if [ "$loaded" = yes ]; then ok "module and test peer run in all three"
else not_ok "module and test peer run in all three" "$loaded"; finish; fi

expect "vm1 sees two regions" 2 \
	"$(run vm1 "ls /sys/bus/pci/drivers/af_ivshmem | grep -c '^0000:'")"

# The same peer id on two regions is two different guests.
expect "vm1 region 0 peer 1 is vm2" vm2 "$(run vm1 "'$NC' -q -r 0 1 5004 </dev/null")"
expect "vm1 region 1 peer 1 is vm3" vm3 "$(run vm1 "'$NC' -q -r 1 1 5004 </dev/null")"
expect "vm1 to vm2 over region 0: 64 MiB each way, verified" "ok bytes=67108864" \
	"$(run vm1 "'$STREAM' -r 0 1 64")"
expect "vm1 to vm3 over region 1: 64 MiB each way, verified" "ok bytes=67108864" \
	"$(run vm1 "'$STREAM' -r 1 1 64")"

# vm2 and vm3 share no region: no address of vm2 leads to vm3.
expect_match "vm2: region 1 does not exist" "connect: ENETUNREACH" \
	"$(run vm2 "'$NC' -q -r 1 1 5004 </dev/null")"
expect "vm2: peers 2..63 of its region are unreachable" 62 \
	"$(run vm2 "for p in \$(seq 2 63); do '$NC' -q \$p 5004 </dev/null 2>&1; done |
		grep -c 'connect: EHOSTUNREACH'")"
expect "vm2: its reachable peers are vm1 and itself" "vm1 vm2" \
	"$(run vm2 "for p in 0 1; do '$NC' -q \$p 5004 </dev/null; done" | tr '\n' ' ' |
		sed 's/ $//')"

# A listener bound to region 0 hears only region 0; a wildcard one, all.
run vm1 "setsid sh -c \"'$NC' -q -l -r 0 7000 </dev/null >/tmp/l7000.out 2>&1\" &
	sleep 0.3" >/dev/null
expect_match "vm3 cannot reach vm1's region-0 listener" "connect: ECONNREFUSED" \
	"$(run vm3 "echo from-vm3 | '$NC' -q 0 7000")"
run vm2 "echo from-vm2 | '$NC' -q 0 7000" >/dev/null
expect "vm2 reaches vm1's region-0 listener" from-vm2 "$(run vm1 "sleep 0.3; cat /tmp/l7000.out")"
run vm1 "setsid sh -c \"'$NC' -l 7001 </dev/null >/tmp/l7001.out 2>&1\" &
	sleep 0.3" >/dev/null
run vm3 "echo from-vm3 | '$NC' -q 0 7001" >/dev/null
expect_match "vm1's wildcard listener accepts vm3, getpeername says region 1" \
	"accepted peer 1 port " "$(run vm1 "sleep 0.3; cat /tmp/l7001.out")"
expect_match "  ... and the data arrived" "region 1
from-vm3" "$(run vm1 "cat /tmp/l7001.out")"

# What goes over region A is in A's memory object, never in B's.
pattern=AF_IVSHMEM-REGION-A-$RANDOM$RANDOM
run vm1 "yes $pattern | head -c 1048576 >/tmp/pattern &&
	'$NC' -q -r 0 1 5003 </tmp/pattern >/dev/null" >/dev/null
shm_a=$("$LAB" shm A)
shm_b=$("$LAB" shm B)
if grep -aqF "$pattern" "$shm_a"; then ok "pattern sent over A is in A's memory"
else not_ok "pattern sent over A is in A's memory" "not found in $shm_a"; fi
if grep -aqF "$pattern" "$shm_b"; then not_ok "pattern is not in B's memory" "found in $shm_b"
else ok "pattern is not in B's memory"; fi

# Hot-unplug B in vm1 while both regions carry traffic.
run vm1 "rm -f /tmp/a.out /tmp/b.out
	setsid sh -c \"'$STREAM' -r 0 1 1024 >/tmp/a.out 2>&1\" &
	setsid sh -c \"'$STREAM' -r 1 1 65536 >/tmp/b.out 2>&1\" &" >/dev/null
# Unplug only once both transfers are connected (connects take seconds on
# the checker kernel; a transfer still connecting sees ENETUNREACH).
expect "both transfers are connected before the unplug" "A=1 B=1" \
	"$(run vm1 "estab() { '$IVSS' -H state established region \$1 | wc -l; }
		for i in \$(seq 600); do a=\$(estab 0); b=\$(estab 1)
			test \$a\$b = 11 && break; sleep 0.2; done; echo A=\$a B=\$b")"
if "$LAB" unplug vm1 B >/dev/null 2>&1; then ok "region B unplugged from vm1"
else not_ok "region B unplugged from vm1" "lab unplug failed"; fi
b=$(run vm1 "for i in \$(seq 300); do test -s /tmp/b.out && break; sleep 0.2; done
	cat /tmp/b.out")
expect_match "the transfer on B fails with ENETDOWN" "ENETDOWN" "$b"
expect "the transfer on A is still running then" running \
	"$(run vm1 "test -s /tmp/a.out && cat /tmp/a.out || echo running")"
expect "the transfer on A completes intact" "ok bytes=1073741824" \
	"$(run vm1 "for i in \$(seq 1500); do test -s /tmp/a.out && break; sleep 0.2; done
		cat /tmp/a.out")"
expect "vm1 has one region left" 1 \
	"$(run vm1 "ls /sys/bus/pci/drivers/af_ivshmem | grep -c '^0000:'")"
expect "vm1 region 0 still reaches vm2" vm2 "$(run vm1 "'$NC' -q -r 0 1 5004 </dev/null")"
expect_match "vm1 region 1 is gone" "connect: ENETUNREACH" \
	"$(run vm1 "'$NC' -q -r 1 1 5004 </dev/null")"

# Region B's channels all come back (vm1's and vm3's side of the reset).
if out=$(region_empty "$shm_b"); then ok "region B is empty after the unplug"
else not_ok "region B is empty after the unplug" "$out"; fi

# Plug it back: vm1 talks to vm3 again.
if "$LAB" plug vm1 B >/dev/null 2>&1; then ok "region B plugged back into vm1"
else not_ok "region B plugged back into vm1" "lab plug failed"; fi
expect "vm1 sees two regions again" 2 \
	"$(run vm1 "for i in \$(seq 100); do
		c=\$(ls /sys/bus/pci/drivers/af_ivshmem | grep -c '^0000:')
		[ \$c = 2 ] && break; sleep 0.2; done; echo \$c")"
expect "vm1 region 1 peer 1 is vm3 again" vm3 "$(run vm1 "'$NC' -q -r 1 1 5004 </dev/null")"

if out=$(region_empty "$shm_a"); then ok "region A is empty after the tests"
else not_ok "region A is empty after the tests" "$out"; fi

unloaded=yes
for vm in vm1 vm2 vm3; do
	run $vm "pkill -f ivshmem_peerd; pkill -f ivshmem-nc; sleep 0.5; rmmod af_ivshmem_diag af_ivshmem" \
		>/dev/null || unloaded="no ($vm)"
done
expect "module unloads in all three" yes "$unloaded"
if "$LAB" stop >/dev/null 2>&1; then ok "guest kernel logs are clean"
else not_ok "guest kernel logs are clean" "see $IVSHMEM_LAB_DIR/vm*/console.log"; fi
echo "1..$n"
[ "$failures" -eq 0 ]
