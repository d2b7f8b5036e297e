#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Peer liveness on two guests in doorbell mode: a guest paused for less
# than the liveness timeout loses nothing, and a connect to it times out
# after the socket's connect timeout; a guest whose module is
# reloaded never sees its predecessor's connections; a guest whose QEMU is
# killed mid-transfer is declared dead within the timeout plus one second,
# its peers' readers and writers get ECONNRESET and its channels are
# reclaimed.  Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT_MS=2000		# the module's default liveness_timeout_ms
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-liveness}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

# The steps below wait for connections instead of sleeping: on the checker
# kernel a process takes seconds to start and connect.
# said VM FILE: "yes" once ivshmem-nc said "connected" in FILE (60 s)
said() {
	run "$1" "for i in \$(seq 600); do
		grep -q '^connected' $2 2>/dev/null && echo yes && exit
		sleep 0.1; done; echo no"
}
# chan_up VM PORT: "yes" once the fabric view shows both channels of a
# connection to PORT (60 s); ivss's socket view needs af_ivshmem_diag,
# which would keep the module from being reloaded here
chan_up() {
	run "$1" "for i in \$(seq 600); do
	'$IVSS' fabric -j channels | python3 -c 'import json, sys
c = json.load(sys.stdin)[\"regions\"][0][\"channels\"]
p = int(sys.argv[1])
sys.exit(not (any(x[\"dst_port\"] == p for x in c) and
	      any(x[\"src_port\"] == p for x in c)))' $2 && echo yes && exit
	sleep 0.1; done; echo no"
}

lab_up "two guests start" -n 2 --mode doorbell
loaded=yes
for vm in vm1 vm2; do
	run $vm "insmod '$MODULE'" >/dev/null && start_peer $vm >/dev/null || loaded=no
done
expect "module and test peers run" yes "$loaded"

# Paused for half the timeout: the transfer goes on.
run vm1 "setsid sh -c \"'$STREAM' 1 512 >/tmp/pause.out 2>&1\" & sleep 2" >/dev/null
"$LAB" qmp vm2 '{"execute": "stop"}' >/dev/null
sleep $((TIMEOUT_MS / 2000))
"$LAB" qmp vm2 '{"execute": "cont"}' >/dev/null
expect "vm2 paused for half the timeout: the transfer completes" \
	"ok bytes=536870912" "$(wait_file vm1 /tmp/pause.out)"

# A connect to a paused guest (shorter than the liveness timeout) gets no
# answer: ETIMEDOUT after the socket's connect timeout.  vm2 is paused
# before the connect starts (starting both at once raced: vm2 could
# answer before the pause took effect).  vm1's liveness timeout is raised
# meanwhile: where starting the client takes longer than 2 s (the checker
# kernel), vm2 would be declared dead first (EHOSTUNREACH).
run vm1 "echo 60000 >/sys/module/af_ivshmem/parameters/liveness_timeout_ms" >/dev/null
"$LAB" qmp vm2 '{"execute": "stop"}' >/dev/null
out=$(run vm1 "'$NC' -q -w 500 1 5000 </dev/null 2>&1")
"$LAB" qmp vm2 '{"execute": "cont"}' >/dev/null
run vm1 "echo $TIMEOUT_MS >/sys/module/af_ivshmem/parameters/liveness_timeout_ms" >/dev/null
expect_match "a connect with IVSHMEM_CONNECT_TIMEOUT_MS 500 to a paused guest fails with ETIMEDOUT" \
	"connect: ETIMEDOUT" "$out"

# vm1 reloads its module: vm2's socket to the old vm1 is reset, and never
# reaches the new one.  vm2 sends only once it has reset the connection
# (its reset counters rose), whatever the speed of the kernel.
resets() {	# resets VM: resets_peer_dead + resets_received
	run "$1" "cd /sys/bus/pci/drivers/af_ivshmem/0000:*/stats &&
		echo \$((\$(cat resets_peer_dead) + \$(cat resets_received)))"
}
run vm2 "rm -f /tmp/late.go; setsid sh -c \"(while [ ! -e /tmp/late.go ]; do sleep 0.1; done
	echo late) | '$NC' 0 5000 >/tmp/late.out 2>&1\" &" >/dev/null
expect "vm2 connected to the old vm1" yes "$(said vm2 /tmp/late.out)"
r0=$(resets vm2)
reload=$(run vm1 "pkill -f ivshmem_peerd; sleep 0.5; rmmod af_ivshmem &&
	insmod '$MODULE' && echo reloaded")
expect "vm1 unloads and reloads the module while vm2 holds a connection" reloaded "$reload"
start_peer vm1 >/dev/null
for _ in $(seq 600); do
	[ "$(resets vm2)" -gt "$r0" ] && break
	sleep 0.1
done
run vm2 "touch /tmp/late.go" >/dev/null
expect_match "vm2's connection to the old vm1 fails with ECONNRESET" \
	"send: ECONNRESET" "$(wait_out vm2 /tmp/late.out '(send|recv|connect): |^late')"
expect "vm2 reaches the new vm1" vm1 "$(run vm2 "'$NC' -q 0 5004 </dev/null")"

# vm2's QEMU is killed mid-transfer.
# The reader's input never ends (an ended input would half-close the
# connection and the echo service close it: an end of file, not a reset;
# "sleep 60" ran out on the checker kernel before the kill).
run vm1 "rm -f /tmp/kill.out /tmp/idle.out
	setsid sh -c \"'$STREAM' 1 65536 >/tmp/kill.out 2>&1\" &
	setsid sh -c \"sleep infinity | '$NC' 1 5000 >/tmp/idle.out 2>&1\" &" >/dev/null
expect "vm1's writer and reader are connected to vm2" "yes yes" \
	"$(chan_up vm1 5001) $(said vm1 /tmp/idle.out)"
sleep 1		# the writer in full flow
t0=$(date +%s%N)
kill -9 "$(cat "$IVSHMEM_LAB_DIR/vm2/qemu.pid")"
out=
for _ in $(seq 100); do
	out=$(run vm1 "cat /tmp/kill.out")
	[ -n "$out" ] && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
expect_match "the writer to the killed vm2 gets ECONNRESET" "send=ECONNRESET" "$out"
expect_match "a reader blocked on vm2 gets ECONNRESET" "recv: ECONNRESET" \
	"$(wait_out vm1 /tmp/idle.out '(send|recv|connect): ')"
dead=$(run vm1 "dmesg | grep 'declared dead'")
expect_match "vm1's log names the dead peer" "peer 1 (epoch 1) stopped beating" "$dead"
# When: never before the timeout; within the timeout plus a few checks on
# a kernel whose checks run on time, up to three times the timeout on the
# checker kernel (its heartbeat work may run late, and a peer is declared
# dead only after as many of our checks as fit in the timeout).  The
# writer's reset, as this host sees it (through the lab's agent), follows
# within a second of that, within three on the checker kernel (there each
# look into the guest is several times slower).
after=$(sed -n 's/.*declared dead after \([0-9]*\) ms.*/\1/p' <<<"$dead" | tail -1)
late=$((TIMEOUT_MS + 600)) seen=1000
if [[ $(run vm1 "uname -r") == *-debug ]]; then
	late=$((3 * TIMEOUT_MS)) seen=3000
fi
if [ -n "$after" ] && [ "$after" -ge "$TIMEOUT_MS" ] && [ "$after" -le "$late" ]; then
	ok "  ... after the liveness timeout and at most ${late} ms (${after} ms)"
else
	not_ok "  ... after the liveness timeout and at most ${late} ms" "[$dead]"
fi
if [ -n "$after" ] && [ "$ms" -le $((after + seen)) ]; then
	ok "  ... and the writer's reset seen at most $seen ms later (${ms} ms after the kill)"
else
	not_ok "  ... and the writer's reset seen at most $seen ms later" "${ms} ms after the kill"
fi
expect_match "connecting to the dead peer fails with EHOSTUNREACH" \
	"connect: EHOSTUNREACH" "$(run vm1 "'$NC' -q 1 5000 </dev/null")"
if out=$(region_empty "$IVSHMEM_LAB_DIR/shm"); then ok "vm1 reclaimed the dead peer's channels"
else not_ok "vm1 reclaimed the dead peer's channels" "$out"; fi

expect "vm1 unloads its module" yes \
	"$(run vm1 "pkill -f ivshmem_peerd; pkill -f ivshmem-nc; sleep 0.5
		rmmod af_ivshmem && echo yes")"
if "$LAB" stop >/dev/null 2>&1; then ok "guest kernel logs are clean"
else not_ok "guest kernel logs are clean" "see $IVSHMEM_LAB_DIR/vm*/console.log"; fi
echo "1..$n"
[ "$failures" -eq 0 ]
