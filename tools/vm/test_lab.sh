#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of tools/vm/lab: boots two guests in doorbell mode, checks the
# exec channel, the IVSHMEM device, QMP and the log check, then repeats the
# device check in plain mode, then boots three guests on a topology of three
# regions and hot-unplugs and plugs devices. TAP output; exit status
# non-zero on any failure.
#
# State dir: $IVSHMEM_LAB_TEST_DIR (default /tmp/ivshmem-lab-test); a lab
# already running there is replaced.

# Guest command lines are single-quoted on purpose: they expand in the guest.
# shellcheck disable=SC2016

set -euo pipefail

HERE=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
LAB=$HERE/lab
DIR=${IVSHMEM_LAB_TEST_DIR:-/tmp/ivshmem-lab-test}
TMP=$(mktemp -d)
n=0
failed=0

lab() {
	"$LAB" --dir "$DIR" "$@"
}

cleanup() {
	lab stop >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	local line
	for line in "$@"; do
		printf '#   %s\n' "$line"
	done
}

# check NAME COMMAND...: a test passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$name"
	else
		local out
		out=$(tail -n 20 "$TMP/check.out")
		not_ok "$name" "command: $*" "$out"
	fi
}

# expect_eq NAME WANT GOT
expect_eq() {
	if [[ $2 == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1" "want: $(printf '%q' "$2")" "got:  $(printf '%q' "$3")"
	fi
}

# has_ivshmem GUEST: the guest's PCI bus shows 1af4:1110.
has_ivshmem() {
	local ids
	ids=$(lab exec "$1" -- 'for d in /sys/bus/pci/devices/*; do
		echo "$(cat "$d/vendor"):$(cat "$d/device")"; done')
	grep -qx '0x1af4:0x1110' <<<"$ids"
}

# ivsh_sizes GUEST: BAR2 (resource2) sizes of the guest's ivshmem devices,
# in PCI bus-address order (the order the driver probes them).
ivsh_sizes() {
	lab exec "$1" -- 'for d in /sys/bus/pci/devices/*; do
		grep -q "^PCI_ID=1AF4:1110" "$d/uevent" && stat -c %s "$d/resource2"
	done | paste -sd " " -'
}

# ivsh_addrs GUEST: PCI addresses of the guest's ivshmem devices.
ivsh_addrs() {
	lab exec "$1" -- 'for d in /sys/bus/pci/devices/*; do
		grep -q "^PCI_ID=1AF4:1110" "$d/uevent" && echo "${d##*/}"
	done | paste -sd " " -'
}

# ivpos GUEST N: IVPosition register (the peer id) of the guest's N-th
# ivshmem device in bus order (0 = first), read through BAR0.
ivpos() {
	lab exec "$1" -- "n=$2;" 'i=0
	for d in /sys/bus/pci/devices/*; do
		grep -q "^PCI_ID=1AF4:1110" "$d/uevent" || continue
		if [ "$i" -eq "$n" ]; then
			echo 1 >"$d/enable" 2>/dev/null
			python3 -c "import mmap, os, struct, sys
f = os.open(sys.argv[1], os.O_RDWR | os.O_SYNC)
print(struct.unpack_from(\"<I\", mmap.mmap(f, os.fstat(f).st_size), 8)[0])" "$d/resource0"
		fi
		i=$((i + 1))
	done'
}

# file_size FILE
file_size() {
	stat -L -c %s "$1" 2>&1
}

guest_pids() {
	lab status | awk '$1 ~ /^(vm[0-9]+|server)$/ && $2 == "running" { print $4 }'
}

no_process_left() {
	local pid
	for pid in "$@"; do
		if [[ -e /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
			echo "process $pid still runs"
			return 1
		fi
	done
}

# --- doorbell mode -----------------------------------------------------------

t0=$SECONDS
if lab start --force -n 2 --mode doorbell >"$TMP/start.out" 2>&1; then
	ok "start 2 guests in doorbell mode ($((SECONDS - t0)) s)"
else
	not_ok "start 2 guests in doorbell mode" "$(tail -n 30 "$TMP/start.out")"
	echo "1..$n"
	exit 1
fi
sed 's/^/# /' "$TMP/start.out"

pids=$(guest_pids)

out=$(lab exec vm1 -- hostname 2>&1) || true
expect_eq "exec vm1 hostname prints vm1" vm1 "$out"

out=$(lab exec vm2 -- hostname 2>&1) || true
expect_eq "exec vm2 hostname prints vm2" vm2 "$out"

rc=0
lab exec vm2 -- 'exit 7' || rc=$?
expect_eq "exit status 7 is passed through" 7 "$rc"

rc=0
lab exec vm1 -- 'echo to-stdout; echo to-stderr >&2' >"$TMP/o" 2>"$TMP/e" || rc=$?
expect_eq "stdout is passed through" to-stdout "$(cat "$TMP/o")"
expect_eq "stderr is passed through separately" to-stderr "$(cat "$TMP/e")"

out=$(lab exec vm1 -- echo a "b  c" \''$d'\' 2>&1) || true
expect_eq "arguments are joined into one shell command line" 'a b c $d' "$out"

check "vm1 sees ivshmem 1af4:1110" has_ivshmem vm1
check "vm2 sees ivshmem 1af4:1110" has_ivshmem vm2

want=$(head -n 1 "$REPO/tools/vm/README.md")
out=$(lab exec vm1 -- head -n 1 "$REPO/tools/vm/README.md" 2>&1) || true
expect_eq "guest reads a file of the repository" "$want" "$out"

out=$(cd "$REPO/tools" && lab exec vm2 -- pwd 2>&1) || true
expect_eq "command runs in the caller's directory" "$REPO/tools" "$out"

out=$(lab exec vm1 -- 'echo $PATH $HOME' 2>&1) || true
expect_eq "PATH and HOME are set" "/usr/sbin:/usr/bin:/sbin:/bin /root" "$out"

# Two commands at once on one guest and one on the other guest.
lab exec vm1 -- 'sleep 2; echo slow' >"$TMP/c1" 2>&1 &
p1=$!
lab exec vm1 -- 'echo fast' >"$TMP/c2" 2>&1 &
p2=$!
lab exec vm2 -- 'echo other' >"$TMP/c3" 2>&1 &
p3=$!
rc=0
wait "$p1" || rc=1
wait "$p2" || rc=1
wait "$p3" || rc=1
expect_eq "concurrent exec" "0 slow fast other" \
	"$rc $(cat "$TMP/c1") $(cat "$TMP/c2") $(cat "$TMP/c3")"

rc=0
lab exec vm2 --timeout 1 -- 'sleep 3' >/dev/null 2>&1 || rc=$?
expect_eq "exec --timeout exits 124" 124 "$rc"

out=$(lab exec vm1 -- 'setsid sleep 600 >/dev/null 2>&1 & echo bg' 2>&1) || true
expect_eq "command may leave a background process" bg "$out"

check "vm1 reaches vm2 over virtio-net" lab exec vm1 -- busybox ping -c 1 -W 5 10.99.0.2

# The default region r0 keeps STATE/shm; peer ids follow start order.
expect_eq "shm r0 is STATE/shm" "$(cd "$DIR" && pwd)/shm" "$(lab shm r0 2>&1)"
expect_eq "regions vm1 in the default lab" "0 r0 doorbell" "$(lab regions vm1 2>&1)"
expect_eq "vm1 is peer 0, vm2 is peer 1" "0 1" \
	"$(ivpos vm1 0 2>&1) $(ivpos vm2 0 2>&1)"
out=$(lab qmp vm1 '{"execute": "query-status"}' 2>&1) || true
check "qmp query-status says running" grep -q '"status": "running"' <<<"$out"
rc=0
lab qmp vm1 '{"execute": "no-such-command"}' >/dev/null 2>&1 || rc=$?
expect_eq "qmp exits 1 on an error reply" 1 "$rc"

# The checker expression: reports match, a lockdep kernel's boot banner
# does not (it once matched the bare word "lockdep").
bad_re=$(sed -n "s/^BAD_LOG_RE='\(.*\)'\$/\1/p" "$LAB")
check "check-logs: a lockdep report matches" \
	grep -qE "$bad_re" <<<"INFO: lockdep is turned off."
check "check-logs: the lockdep boot banner does not match" \
	bash -c '! grep -qE "$1" <<<"[    0.000000] rcu:	RCU lockdep checking is enabled."' _ "$bad_re"
# Where a boot's log starts to count for the soak and check-debug: the
# module's own first messages, not its tree's path on the command line.
loaded_re=$(sed -n "s/^MODULE_LOADED_RE='\(.*\)'\$/\1/p" "$LAB")
marks() {	# marks RE LINE: awk (as the scans use it) finds RE in LINE
	printf '%s\n' "$2" | awk -v re="$1" '$0 ~ re { f = 1 } END { exit !f }'
}
no_mark() { ! marks "$@"; }
check "module loaded: its taint message marks it" \
	marks "$loaded_re" "[  219.032229] af_ivshmem: loading out-of-tree module taints kernel."
check "module loaded: its probe message marks it" \
	marks "$loaded_re" "[  219.273376] af_ivshmem 0000:01:00.0: region 0: 16 MiB, peer id 0, doorbell mode"
check "module loaded: the module tree on the command line does not" \
	no_mark "$loaded_re" \
	"[    0.000000] Command line: console=ttyS0 ivlab_modules=/root/.cache/af_ivshmem/kernel-c587b41837b3/mod/lib/modules/6.1.192-afivshmem-debug"
check "check-logs passes" lab check-logs
check "stop passes" lab stop
# shellcheck disable=SC2086
check "no QEMU or server process left after stop" no_process_left $pids

# --- plain mode ---------------------------------------------------------------

t0=$SECONDS
if lab start -n 2 --mode plain >"$TMP/start.out" 2>&1; then
	ok "start 2 guests in plain mode ($((SECONDS - t0)) s)"
	sed 's/^/# /' "$TMP/start.out"
	pids=$(guest_pids)
	check "plain: vm1 sees ivshmem 1af4:1110" has_ivshmem vm1
	check "plain: vm2 sees ivshmem 1af4:1110" has_ivshmem vm2
	check "plain: stop and check-logs pass" lab stop
	# shellcheck disable=SC2086
	check "plain: no QEMU left after stop" no_process_left $pids
else
	not_ok "start 2 guests in plain mode" "$(tail -n 30 "$TMP/start.out")"
fi

# --- topology: several regions per guest, hot-unplug and plug --------------

# vm1: A (64M) then B (32M); vm2: A; vm3: B then C (16M, plain).
t0=$SECONDS
if lab start -n 3 --region A:doorbell:64M:vm1,vm2 --region B:doorbell:32M:vm1,vm3 \
	--region C:plain:16M:vm3 >"$TMP/start.out" 2>&1; then
	ok "start 3 guests on regions A, B (doorbell) and C (plain) ($((SECONDS - t0)) s)"
	sed 's/^/# /' "$TMP/start.out"
	pids=$(guest_pids)

	expect_eq "regions vm1: A then B" $'0 A doorbell\n1 B doorbell' "$(lab regions vm1 2>&1)"
	expect_eq "regions vm2: A" "0 A doorbell" "$(lab regions vm2 2>&1)"
	expect_eq "regions vm3: B then C" $'0 B doorbell\n1 C plain' "$(lab regions vm3 2>&1)"

	shm_a=$(lab shm A 2>&1) || true
	shm_b=$(lab shm B 2>&1) || true
	shm_c=$(lab shm C 2>&1) || true
	expect_eq "shm A and shm B are different files" different \
		"$([[ $shm_a != "$shm_b" && $(readlink -f "$shm_a") != $(readlink -f "$shm_b") ]] && echo different)"
	expect_eq "shm A, B, C sizes" "67108864 33554432 16777216" \
		"$(file_size "$shm_a") $(file_size "$shm_b") $(file_size "$shm_c")"

	# BAR2 sizes in bus order show the device order.
	expect_eq "vm1 has two ivshmem devices, A then B in bus order" "67108864 33554432" \
		"$(ivsh_sizes vm1 2>&1)"
	expect_eq "vm2 has one ivshmem device (A)" 67108864 "$(ivsh_sizes vm2 2>&1)"
	expect_eq "vm3 has B then C in bus order" "33554432 16777216" "$(ivsh_sizes vm3 2>&1)"

	# Peer ids: rank in the region's guest list (start order).
	expect_eq "peer ids: vm1 A=0 B=0, vm2 A=1, vm3 B=1" "0 0 1 1" \
		"$(ivpos vm1 0 2>&1) $(ivpos vm1 1 2>&1) $(ivpos vm2 0 2>&1) $(ivpos vm3 0 2>&1)"

	addr_a=$(ivsh_addrs vm1 2>&1) || true
	addr_a=${addr_a%% *}
	t0=$SECONDS
	check "unplug vm1 B" lab unplug vm1 B
	expect_eq "vm1 has one ivshmem device left, A's ($((SECONDS - t0)) s)" \
		"67108864 $addr_a" "$(ivsh_sizes vm1 2>&1) $(ivsh_addrs vm1 2>&1)"
	expect_eq "vm1's A device keeps its peer id" 0 "$(ivpos vm1 0 2>&1)"
	check "vm1's QEMU survives the unplug" lab exec vm1 -- true
	check "B's server still has vm1's old connection (no peer left)" \
		eval '! grep -q "left" "$(dirname -- "$shm_b")/server.log"'
	expect_eq "vm3 still has B and C" "33554432 16777216" "$(ivsh_sizes vm3 2>&1)"

	t0=$SECONDS
	check "plug vm1 B" lab plug vm1 B
	expect_eq "vm1 has A then B again ($((SECONDS - t0)) s)" "67108864 33554432" \
		"$(ivsh_sizes vm1 2>&1)"
	expect_eq "re-plugged B gets a new peer id, the next one (2)" 2 "$(ivpos vm1 1 2>&1)"
	expect_eq "regions vm1 after plug: A then B" $'0 A doorbell\n1 B doorbell' \
		"$(lab regions vm1 2>&1)"
	check "unplug vm3 B" lab unplug vm3 B
	expect_eq "vm3 has only C" 16777216 "$(ivsh_sizes vm3 2>&1)"
	check "plug vm3 B" lab plug vm3 B
	expect_eq "vm3 has B then C again, B as peer 3" "33554432 16777216 3" \
		"$(ivsh_sizes vm3 2>&1) $(ivpos vm3 0 2>&1)"

	# --release lets B's server see vm1 leave; the server hands out ids
	# round robin, so the next plug gets 4, not the departed 2 that vm3
	# saw (QEMU would corrupt its heap on a reused id).
	check "unplug --release vm1 B" lab unplug --release vm1 B
	check "B's server saw peer 2 leave" grep -q "peer 2 left" "$(dirname -- "$shm_b")/server.log"
	check "plug vm1 B after --release" lab plug vm1 B
	expect_eq "  ... gets the next id (4), not the departed 2" 4 "$(ivpos vm1 1 2>&1)"
	check "  ... and vm3's QEMU survives" lab exec vm3 -- true

	check "unplug vm3 C (plain)" lab unplug vm3 C
	expect_eq "vm3 has only B" 33554432 "$(ivsh_sizes vm3 2>&1)"
	check "plug vm3 C (plain)" lab plug vm3 C
	expect_eq "vm3 has B then C again" "33554432 16777216" "$(ivsh_sizes vm3 2>&1)"

	rc=0
	lab unplug vm2 B >/dev/null 2>&1 || rc=$?
	expect_eq "unplug of a region the guest is not on fails" 1 "$rc"
	check "all three QEMUs still run" lab exec vm1 -- true
	check "  (vm2)" lab exec vm2 -- true
	check "  (vm3)" lab exec vm3 -- true

	check "topology: stop and check-logs pass" lab stop
	# shellcheck disable=SC2086
	check "topology: no QEMU or server left after stop" no_process_left $pids
else
	not_ok "start 3 guests on regions A, B and C" "$(tail -n 30 "$TMP/start.out")"
fi

echo "1..$n"
if ((failed)); then
	echo "# $failed of $n tests failed"
	exit 1
fi
