#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test of the project, host and guests, in one run.
# Each stage prints TAP-style lines; the last line is the tally
# "N passed, N failed, N skipped", and the exit status is non-zero if
# anything failed.
#
# Stages: build and static checks (W=1, checkpatch --strict, sparse, the
# documents render); the host server's tests; ivss's parser and printer
# on canned replies; the host-side region scripts on a made-up region
# (selftests/region_abi_test.py); make check-debug's own logic on stubs
# (selftests/check_debug_test.sh); the VM lab's self-test; the
# socket suite and the conformance suite (inside one guest and across two)
# in doorbell mode (plus interrupts, the demo and module unload); the
# socket suite again in polling (ivshmem-plain) mode; peer liveness
# (selftests/liveness.sh); three guests on two regions with hot-unplug
# (selftests/regions.sh); channel allocation, live resizing, exhaustion
# and a dead lock holder (selftests/rebalance.sh); iperf3, sockperf and
# socat under ivshmem-run (selftests/ivshmem_run.sh); ivshmem-perf's
# counts and JSON (selftests/perf.sh; its report generator offline,
# selftests/bench_report.sh); diagnostics: ivss,
# sock_diag, the fabric view
# and tracepoints (selftests/diag.sh); a hostile peer scribbling over
# the region (selftests/hostile.sh); encryption, key exchange and
# attacks on the rings from the host (selftests/security.sh); rmmod with
# live sockets, the syscall fuzzer and a short soak with faults
# (selftests/soak.sh, 2 min, 2 guests by default); make install and DKMS
# (selftests/dkms.sh); the
# make run demo.
#
# IVSHMEM_CHECK_ONLY="STAGE ..." runs only the stages named (build host
# doorbell plain liveness regions rebalance ivshmem-run perf hostile diag
# security soak dkms demo) and counts the others as skipped;
# `run.sh --stages` prints that list and exits.
# IVSHMEM_PINGPONG_ROUNDS (1000000) sets the long ping-pongs' round trips
# (make check-debug runs fewer: its kernel is several times slower).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1

# The stages, for IVSHMEM_CHECK_ONLY (make check-debug runs the suite on
# a slow kernel a few stages at a time).
STAGES="build host doorbell plain liveness regions rebalance ivshmem-run perf
	hostile diag security soak dkms demo"
if [ "${1:-}" = --stages ]; then
	# shellcheck disable=SC2086 # one line, the words as they are
	echo $STAGES
	exit 0
fi
for s in ${IVSHMEM_CHECK_ONLY:-}; do
	if [[ " ${STAGES//[[:space:]]/ } " != *" $s "* ]]; then
		echo "IVSHMEM_CHECK_ONLY: no stage \"$s\"; stages: "$STAGES >&2
		exit 2
	fi
done
ROUNDS=${IVSHMEM_PINGPONG_ROUNDS:-1000000}
KDIR=$("$TOP/tools/build/kdir.sh")
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-check}
LOGDIR=${IVSHMEM_CHECK_LOGS:-$IVSHMEM_LAB_DIR-logs}
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"
passed=0
failed=0
skipped=0

# How long each stage that ran took, printed before the tally (to plan
# runs that must fit in a time, such as make check-debug's).
stage_times=
stage_name=
stage_start=0
stage_end() {	# stage_end: the stage that ran last is over
	[ -n "$stage_name" ] || return 0
	stage_times+=" $stage_name $(($(date +%s) - stage_start)) s,"
	stage_name=
}

stage() {	# stage NAME: run stage NAME? (else it is counted as skipped)
	stage_end
	if [ -z "${IVSHMEM_CHECK_ONLY:-}" ] ||
	   [[ " $IVSHMEM_CHECK_ONLY " == *" $1 "* ]]; then
		stage_name=$1
		stage_start=$(date +%s)
		return 0
	fi
	result skip "$1" "not in IVSHMEM_CHECK_ONLY"
	return 1
}

result() {	# result ok|fail|skip NAME [DETAIL]
	case $1 in
	ok)	passed=$((passed + 1)); echo "ok - $2" ;;
	skip)	skipped=$((skipped + 1)); echo "ok - $2 # SKIP ${3:-}" ;;
	*)	failed=$((failed + 1)); echo "not ok - $2${3:+: $3}" ;;
	esac
}

# check NAME CMD...: one result from a command's exit status.
check() {
	local name=$1 log
	shift
	log=$LOGDIR/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log
	if "$@" >"$log" 2>&1; then
		result ok "$name"
	else
		result fail "$name" "see $log"
		tail -n 20 "$log" | sed 's/^/#   /'
	fi
}

# tap PREFIX FILE: counts a TAP stream's results (the stream is shown too).
tap() {
	local prefix=$1 file=$2 line name
	while IFS= read -r line; do
		case $line in
		"not ok "*)
			name=${line#not ok }
			name=${name#[0-9]* }
			result fail "$prefix: ${name#- }" ;;
		"ok "*"# SKIP"*)
			name=${line#ok }
			result skip "$prefix: ${name%%#*}" "${line##*# SKIP}" ;;
		"ok "*)
			name=${line#ok }
			name=${name#[0-9]* }
			result ok "$prefix: ${name#- }" ;;
		"#"*)	echo "#   $line" ;;
		esac
	done <"$file"
}

# tap_run PREFIX CMD...: runs a TAP producer; a crash without output fails.
tap_run() {
	local prefix=$1 out rc
	shift
	out=$LOGDIR/$(echo "$prefix" | tr -c 'A-Za-z0-9_.-' '_').tap
	"$@" >"$out" 2>&1
	rc=$?
	tap "$prefix" "$out"
	if [ $rc -ne 0 ] && ! grep -q '^not ok' "$out"; then
		result fail "$prefix: exit status $rc" "see $out"
	fi
}

no_warnings() {	# no_warnings CMD...: runs CMD, fails on compiler warnings
	local out
	out=$("$@" 2>&1)
	local rc=$?
	echo "$out"
	[ $rc -eq 0 ] && ! grep -E 'warning:|error:' <<<"$out" >/dev/null
}

echo "# build and static checks"
if stage build; then
	check "module builds with W=1 and no warnings" \
		no_warnings bash -c "make -s -C '$KDIR' M='$TOP/net/ivshmem' clean &&
			make -C '$KDIR' M='$TOP/net/ivshmem' W=1 modules"
	check "checkpatch --strict is clean" make -s checkpatch
	check "sparse (C=2) is clean" no_warnings make -s sparse
	check "design document and manual pages render without warnings" make -s docs
	check "user-space tools and tests build" make -s tools selftests
fi

echo "# host: ivshmem-server"
if stage host; then
	tap_run "ivshmem-server" make -s -C tools/ivshmem-server check

	echo "# host: ivss parsing and output (no kernel)"
	tap_run "ivss" "$TOP/selftests/ivss_test"

	echo "# host: the benchmark report generator (fixed input, no guests)"
	tap_run "bench report" "$TOP/selftests/bench_report.sh"

	echo "# host: the region scripts' ABI and their work on a made-up region"
	tap_run "region scripts" "$TOP/selftests/region_abi_test.py" "$TOP"

	check "IVSHMEM_CHECK_ONLY: an unknown stage is refused, exit 2, nothing run" \
		bash -c "out=\$(IVSHMEM_CHECK_ONLY='host bogus' IVSHMEM_CHECK_LOGS=/nonexistent \
			'$TOP/selftests/run.sh' 2>&1); rc=\$?
			[ \$rc -eq 2 ] && [ \"\$out\" = \"\$(head -n 1 <<<\"\$out\")\" ] &&
			[[ \$out == 'IVSHMEM_CHECK_ONLY: no stage \"bogus\"; stages: build '* ]] &&
			[ ! -e /nonexistent ]"

	echo "# host: make check-debug's stages, kept results and tally (stubs)"
	tap_run "check-debug" "$TOP/selftests/check_debug_test.sh"

	echo "# host: VM lab self-test"
	debian_kernel=()
	if [ "${IVSHMEM_LAB_SELFTEST_DEBIAN:-0}" != 0 ]; then
		# make check-debug: it tests the lab, not the module, so it
		# boots Debian's kernel (minutes, not half an hour).
		echo "# (on Debian's kernel: IVSHMEM_LAB_SELFTEST_DEBIAN)"
		debian_kernel=(-u IVSHMEM_LAB_KERNEL -u IVSHMEM_LAB_MODULES
			-u IVSHMEM_LAB_APPEND -u IVSHMEM_LAB_BOOT_TIMEOUT
			-u IVSHMEM_LAB_BOOT_SERIAL)
	fi
	tap_run "vm lab" env "${debian_kernel[@]}" \
		IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-selftest" tools/vm/test_lab.sh
fi

lab_exec() {
	"$LAB" exec "$@"
}

# load_peer VM: loads the module and starts the test peer in VM
# (with SO_BUSY_POLL on its echo service if $PEERD_BUSY_POLL_US is set).
load_peer() {
	lab_exec "$1" -- "insmod '$MODULE' && \
		PEERD_BUSY_POLL_US=${PEERD_BUSY_POLL_US:-0} \
		setsid '$TOP/selftests/ivshmem_peerd' >/tmp/peerd.log 2>&1 &
		for i in \$(seq 100); do grep -q ready /tmp/peerd.log && exit 0; \
			sleep 0.1; done; cat /tmp/peerd.log; exit 1"
}

load_both() {	# vm1 first: in plain mode it claims peer id 0
	load_peer vm1 && load_peer vm2
}

irq_count() {	# irq_count VM: af_ivshmem interrupts taken so far
	lab_exec "$1" -- "awk '/af_ivshmem/ {s += \$2} END {print s + 0}' /proc/interrupts"
}

# direct_wakes NAME VM BEFORE_WAKES BEFORE_DOORBELLS: the doorbell interrupt
# woke blocked readers itself: more than none, at most one per doorbell
# (one blocked socket per guest in a ping-pong)
direct_wakes() {
	local wakes rings
	wakes=$(($(dev_stat "$2" doorbell_wakes) - $3))
	rings=$(($(dev_stat "$2" doorbells_received) - $4))
	if [ "$wakes" -gt 0 ] && [ "$wakes" -le "$rings" ]; then
		result ok "$1 ($wakes of $rings doorbells)"
	else
		result fail "$1" "doorbell_wakes +$wakes, doorbells_received +$rings"
	fi
}

demo_transfer() {
	lab_exec vm2 -- "setsid '$TOP/tools/ivshmem-demo/ivshmem-demo' server 4000 \
		>/tmp/demo.log 2>&1 & sleep 0.5" || return 1
	lab_exec vm1 -- "'$TOP/tools/ivshmem-demo/ivshmem-demo' client 1 4000 64" |
		tee /dev/stderr | grep -q "peer confirmed 67108864 bytes"
}

unload_all() {	# stop the test peers, then the module must unload
	local vm
	for vm in vm1 vm2; do
		lab_exec "$vm" -- "pkill -f ivshmem_peerd; pkill -f ivshmem-demo; \
			sleep 0.5; rmmod af_ivshmem && ! grep -q '^af_ivshmem ' /proc/modules" ||
			return 1
	done
}

# every_channel_freed: after every connection closed, no channel is left
# allocated in the lab's region.
every_channel_freed() {
	region_empty "$IVSHMEM_LAB_DIR/shm"
}

# forgotten_reply: vm1 (test_forget_reply) frees its connection request
# as soon as vm2 accepts it, never taking or releasing vm2's reply
# channel; its connect fails with ECONNABORTED.  vm2's accepted socket
# sees its peer's channel gone and fails with ECONNRESET; once it closes,
# vm2 frees the reply channel all the same, since vm1's request is gone:
# no channel is left.  (Regression: the checker-kernel soak found such a
# reply channel held until rmmod.)  The acceptor is given 30 s at most.
forgotten_reply() {
	local nc=$TOP/tools/ivshmem-nc/ivshmem-nc
	local param=/sys/module/af_ivshmem/parameters/test_forget_reply out
	lab_exec vm2 -- "rm -f /tmp/forgotten.done
		setsid sh -c \"timeout 30 '$nc' -l -q 7300 </dev/null \
		>/tmp/forgotten.log 2>&1; touch /tmp/forgotten.done\" &" ||
		return 1
	# Refused (freed at once) until the listener is up: a slow guest
	# takes more than half a second to start it.
	out=$(lab_exec vm1 -- "echo 1 >$param
		for i in \$(seq 100); do
			out=\$('$nc' -q 1 7300 </dev/null 2>&1; echo rc=\$?)
			case \$out in *ECONNREFUSED*) sleep 0.1 ;; *) break ;; esac
		done; echo \"\$out\"; echo 0 >$param")
	echo "$out"
	[[ $out == "ivshmem-nc: connect: ECONNABORTED "*"rc=1" ]] || return 1
	out=$(lab_exec vm2 -- "for i in \$(seq 300); do
		[ -e /tmp/forgotten.done ] && break; sleep 0.1; done
		cat /tmp/forgotten.log")
	echo "acceptor: $out"
	[[ $out == *ECONNRESET* ]] || return 1
	every_channel_freed
}

# pingpong NAME VM ARGS...: 1-byte round trips with a 10 s stall watchdog
pingpong() {
	local name=$1 vm=$2 out
	shift 2
	out=$(lab_exec "$vm" --timeout 1800 -- "'$TOP/selftests/ivshmem_pingpong' -w 10 $*")
	if [[ $out == "ok "* ]]; then
		result ok "$name (${out#ok })"
	else
		result fail "$name" "$out"
	fi
}

suite() {	# suite MODE VM REMOTE_PEER LOCAL_PEER BULK_MIB
	tap_run "$1/$2" lab_exec "$2" --timeout 1800 -- \
		"IVSHMEM_REMOTE_PEER=$3 IVSHMEM_LOCAL_PEER=$4 IVSHMEM_BULK_MIB=$5 \
		'$TOP/selftests/ivshmem_test'"
}

CONFORMANCE=$TOP/selftests/ivshmem_conformance
# conformance_server VM PEER BASE: starts the suite's server end in VM
# (control port 7001; its pid in /tmp/conformance-server.pid there)
conformance_server() {
	lab_exec "$1" -- "setsid '$CONFORMANCE' --mode=server --control-port 7001 \
		--peer $2 --port-base $3 >/tmp/conformance-server.log 2>&1 &
		echo \$! >/tmp/conformance-server.pid"
}
conformance_stop() {	# conformance_stop VM: ends the server end, if left
	lab_exec "$1" -- "kill \"\$(cat /tmp/conformance-server.pid)\" 2>/dev/null; true"
}
# conformance: the conformance suite with both ends in vm1 (control over
# 127.0.0.1), then across the guests (server in vm2, client in vm1).  The
# cases' ports start at 20000 and 30000 (ivshmem_peerd has 5000-5999).
conformance() {
	conformance_server vm1 0 20000
	tap_run "conformance/local" lab_exec vm1 --timeout 3600 -- \
		"'$CONFORMANCE' --mode=client --control-host 127.0.0.1 \
		--control-port 7001 --peer 0 --port-base 20000"
	conformance_stop vm1
	conformance_server vm2 0 30000
	tap_run "conformance/vm1-vm2" lab_exec vm1 --timeout 3600 -- \
		"'$CONFORMANCE' --mode=client --control-host 10.99.0.2 \
		--control-port 7001 --peer 1 --port-base 30000"
	conformance_stop vm2
}

echo "# guests: doorbell mode (ivshmem-doorbell, MSI-X)"
if stage doorbell; then
	if check "doorbell: lab starts two guests" "$LAB" start --force -n 2 --mode doorbell; then
		check "doorbell: module loads, test peers run" load_both
		before=$(irq_count vm2)
		suite doorbell vm1 1 0 256
		after=$(irq_count vm2)
		if [ "${after:-0}" -gt "${before:-0}" ]; then
			result ok "doorbell: vm2 took doorbell interrupts ($before -> $after)"
		else
			result fail "doorbell: vm2 took no doorbell interrupts ($before -> $after)"
		fi
		suite doorbell vm2 0 1 64
		conformance
		w0=$(dev_stat vm2 doorbell_wakes)
		d0=$(dev_stat vm2 doorbells_received)
		pingpong "doorbell: $ROUNDS ping-pong round trips, no stall" vm1 1 "$ROUNDS"
		direct_wakes "doorbell: the interrupt itself woke the blocked reader" \
			vm2 "$w0" "$d0"
		check "doorbell: demo moves 64 MiB from vm1 to vm2" demo_transfer
		check "doorbell: a connect that drops its accepted request leaves no channel" \
			forgotten_reply
		check "doorbell: every channel freed after the tests" every_channel_freed
		check "doorbell: module unloads in both guests" unload_all
		check "doorbell: guest kernel logs are clean" "$LAB" stop
	else
		"$LAB" stop >/dev/null 2>&1
	fi
fi

echo "# guests: polling mode (ivshmem-plain, no interrupts)"
if stage plain; then
	if check "plain: lab starts two guests" "$LAB" start --force -n 2 --mode plain; then
		PEERD_BUSY_POLL_US=5000 check "plain: module loads, test peers run" load_both
		suite plain vm1 1 0 64
		pingpong "plain: adaptive polling, 2,000 round trips, no stall" vm1 1 2000
		pingpong "plain: SO_BUSY_POLL, $ROUNDS round trips, no stall" vm1 -b 5000 1 "$ROUNDS"
		check "plain: no interrupt, so no direct wakeups (doorbell_wakes 0)" \
			test "$(dev_stat vm2 doorbell_wakes)" = 0
		check "plain: every channel freed after the tests" every_channel_freed
		check "plain: module unloads in both guests" unload_all
		check "plain: guest kernel logs are clean" "$LAB" stop
	else
		"$LAB" stop >/dev/null 2>&1
	fi
fi

echo "# guests: peer liveness (pause, module reload, killed QEMU)"
if stage liveness; then
	tap_run "liveness" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-liveness" \
		"$TOP/selftests/liveness.sh"
fi

echo "# guests: two regions (trust groups) and hot-unplug"
if stage regions; then
	tap_run "regions" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-regions" \
		"$TOP/selftests/regions.sh"
fi

echo "# guests: channel allocation, live resizing, exhaustion, the control lock"
if stage rebalance; then
	tap_run "rebalance" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-rebalance" \
		"$TOP/selftests/rebalance.sh"
fi

echo "# guests: unmodified TCP programs under ivshmem-run (iperf3, sockperf, socat)"
if stage ivshmem-run; then
	tap_run "ivshmem-run" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-run" \
		"$TOP/selftests/ivshmem_run.sh"
fi

echo "# guests: ivshmem-perf over AF_IVSHMEM, TCP and AF_UNIX (exact counts, JSON)"
if stage perf; then
	tap_run "perf" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-perf" "$TOP/selftests/perf.sh"
fi

echo "# guests: a hostile peer scribbles over the region and rings doorbells"
if stage hostile; then
	tap_run "hostile" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-hostile" \
		"$TOP/selftests/hostile.sh"
fi

echo "# guests: diagnostics (ivss, sock_diag, fabric view, tracepoints)"
if stage diag; then
	tap_run "diag" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-diag" "$TOP/selftests/diag.sh"
fi

echo "# guests: encryption, key exchange, attacks on the rings from the host"
if stage security; then
	tap_run "security" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-security" \
		"$TOP/selftests/security.sh"
fi

echo "# guests: robustness (rmmod with live sockets, the syscall fuzzer, a soak with faults)"
if stage soak; then
	tap_run "soak" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-soak" \
		IVSHMEM_SOAK_SECONDS="${IVSHMEM_SOAK_SECONDS:-120}" \
		IVSHMEM_SOAK_GUESTS="${IVSHMEM_SOAK_GUESTS:-2}" \
		IVSHMEM_SOAK_MEM="${IVSHMEM_SOAK_MEM:-256}" \
		IVSHMEM_FUZZ_SECONDS="${IVSHMEM_FUZZ_SECONDS:-60}" "$TOP/selftests/soak.sh"
fi

echo "# installation: make install, DKMS install and removal in a guest"
if stage dkms; then
	if [ -n "${IVSHMEM_LAB_KERNEL:-}" ]; then
		# DKMS builds for the guest's kernel from its headers package: a
		# kernel of one's own (make check-debug) has none.
		result skip "dkms" "IVSHMEM_LAB_KERNEL: no headers package for DKMS"
	else
		tap_run "dkms" env IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-dkms" "$TOP/selftests/dkms.sh"
	fi
fi

demo_script() {
	local out
	out=$(IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-demo" DEMO_MIB=32 \
		"$TOP/tools/vm/demo.sh" 2>&1)
	echo "$out"
	IVSHMEM_LAB_DIR="$IVSHMEM_LAB_DIR-demo" "$LAB" stop || return 1
	[[ $out == *'received from peer 0: "Hello from guest 1"'* &&
	   $out == *"peer confirmed 33554432 bytes"* ]]
}
echo "# make run: the demo a new user sees"
if stage demo; then
	check "make run: message and 32 MiB arrive in guest 2, logs clean" demo_script
fi

stage_end
echo
echo "# stage times:${stage_times%,}"
echo "logs: $LOGDIR"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
