#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of tools/vm/lab: boots two guests in doorbell mode, checks the
# exec channel, the IVSHMEM device and the log check, then repeats the device
# check in plain mode. TAP output; exit status non-zero on any failure.
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

echo "1..$n"
if ((failed)); then
	echo "# $failed of $n tests failed"
	exit 1
fi
