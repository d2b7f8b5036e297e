#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check-debug`: the whole `make check` suite, plus the long soak, on
# a guest kernel built with the kernel's runtime checkers (KASAN, lockdep,
# DEBUG_ATOMIC_SLEEP, kmemleak, debugobjects, UBSAN): see
# tools/build/debug-kernel.sh, which builds it once per machine into the
# cache.  The module is built against that tree (KDIR), and the lab boots
# it (IVSHMEM_LAB_KERNEL, IVSHMEM_LAB_MODULES).
#
# Any checker report in any guest's kernel log, and any kmemleak report
# (the soak scans at the end), fails the run.  The last line is the tally
# "N passed, N failed".
#
# Environment: IVSHMEM_SOAK_SECONDS (600), IVSHMEM_SOAK_GUESTS (4),
# IVSHMEM_FUZZ_SECONDS (60), IVSHMEM_SOAK_SEED, IVSHMEM_PINGPONG_ROUNDS
# (100000), IVSHMEM_CHURN_CYCLES (2500); IVSHMEM_LAB_BOOT_TIMEOUT
# (600: a KASAN kernel boots slowly under TCG); IVSHMEM_LAB_BOOT_SERIAL (1);
# IVSHMEM_CHECK_DEBUG_ONLY=soak
# runs the build, the soak and the log scan only; IVSHMEM_CHECK_ONLY="STAGE
# ..." runs those stages of the suite (see selftests/run.sh), so that the
# suite, hours long on this kernel under TCG, can run a piece at a time.
#
# IVSHMEM_CHECK_DEBUG_LANES (2): the whole suite runs as two lanes of
# stages side by side, each in labs of its own, after the build stage
# (which rebuilds the module the lanes load).  Most of a stage's time on
# this kernel is one guest working while the others wait, so two lanes
# keep both host cores busy: the run fits in about half the time of one
# stage after the other (IVSHMEM_CHECK_DEBUG_LANES=1).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1

t0=$(date +%s)
tree=$("$TOP/tools/build/debug-kernel.sh") || exit 1
dir=$(dirname "$tree")
echo "# debug kernel: $tree (built in $(cat "$dir/build-seconds" 2>/dev/null || echo '?') s," \
	"this run waited $(($(date +%s) - t0)) s for it)"
kver=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$tree/include/generated/utsrelease.h")
export KDIR=$tree
export IVSHMEM_LAB_KERNEL=$tree/arch/x86/boot/bzImage
export IVSHMEM_LAB_MODULES=$dir/mod/lib/modules/$kver
export IVSHMEM_LAB_BOOT_TIMEOUT=${IVSHMEM_LAB_BOOT_TIMEOUT:-600}
# Guests boot side by side, as in make check.  (They once booted one
# after the other: a KASAN kernel that booted beside others could stall
# for good in its RCU-tasks boot self test, which the kernel's lab patch
# now skips.)  IVSHMEM_LAB_BOOT_SERIAL=1 still boots them one at a time.
export IVSHMEM_LAB_BOOT_SERIAL=${IVSHMEM_LAB_BOOT_SERIAL:-0}
# 4-level paging: with LA57 (QEMU's "max" CPU), an interrupt that lands
# while identify_cpu() has the boot CPU's feature bits cleared makes KASAN
# misjudge a direct-map address as wild ("wild-memory-access in
# do_raw_spin_lock" from handle_edge_irq at 0.9 s), which also turns
# lockdep off for the rest of that boot.
export IVSHMEM_LAB_APPEND="${IVSHMEM_LAB_APPEND:-} no5lvl"
export IVSHMEM_SOAK_SECONDS=${IVSHMEM_SOAK_SECONDS:-600}
export IVSHMEM_SOAK_GUESTS=${IVSHMEM_SOAK_GUESTS:-4}
export IVSHMEM_FUZZ_SECONDS=${IVSHMEM_FUZZ_SECONDS:-60}
# A tenth of the ping-pongs' million round trips: each takes several
# times longer on this kernel, and the count, not the time, is the test.
export IVSHMEM_PINGPONG_ROUNDS=${IVSHMEM_PINGPONG_ROUNDS:-100000}
# A quarter of the churn's 10,000 connect/close cycles, for the same
# reason (the 10,000 took 20 minutes there): a leaked channel shows after
# one cycle, and kmemleak and KASAN look at every one.
export IVSHMEM_CHURN_CYCLES=${IVSHMEM_CHURN_CYCLES:-2500}
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-check-debug}
export IVSHMEM_CHECK_LOGS=${IVSHMEM_CHECK_LOGS:-$IVSHMEM_LAB_DIR-logs}

make -s module KDIR="$KDIR" >/dev/null || { echo "module build against $KDIR failed"; exit 1; }
make -s tools selftests >/dev/null || exit 1

# The scan below reads every console log under the lab directories: none
# left from an earlier run.
rm -f "$IVSHMEM_LAB_DIR"*/vm*/console.log*
out=$(mktemp)
trap 'rm -f "$out"' EXIT

LANES=${IVSHMEM_CHECK_DEBUG_LANES:-2}
case $LANES in
1 | 2) ;;
*)	echo "IVSHMEM_CHECK_DEBUG_LANES: 1 or 2, not \"$LANES\"" >&2; exit 2 ;;
esac
# Lane 1's stages; lane 2 runs every other stage but build.  doorbell and
# plain share the lab directory $IVSHMEM_LAB_DIR, so they share a lane;
# every other stage has a lab directory of its own.
LANE1_STAGES="host doorbell plain liveness soak demo"

passed=0
failed=0
tally() {	# tally FILE: adds a run.sh output's last line to the counts
	local p f
	p=$(tail -n 1 "$1" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
	f=$(tail -n 1 "$1" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	if [ -z "$p" ] || [ -z "$f" ]; then
		echo "not ok - $1 ended without a tally"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

# run_lanes: the build stage, then the two lanes side by side; each
# lane's output is shown once it has ended (tail -f its file to follow).
run_lanes() {
	local lane2="" s pid1 pid2
	for s in $("$TOP/selftests/run.sh" --stages); do
		[[ $s == build || " $LANE1_STAGES " == *" $s "* ]] || lane2+=" $s"
	done
	IVSHMEM_CHECK_ONLY=build IVSHMEM_CHECK_LOGS=$IVSHMEM_CHECK_LOGS/build \
		"$TOP/selftests/run.sh" | tee "$out.build" | grep -v '# SKIP not in IVSHMEM_CHECK_ONLY'
	tally "$out.build"
	mkdir -p "$IVSHMEM_CHECK_LOGS"
	echo "# lane 1: $LANE1_STAGES, output in $IVSHMEM_CHECK_LOGS/lane1.out"
	echo "# lane 2:$lane2, output in $IVSHMEM_CHECK_LOGS/lane2.out"
	IVSHMEM_CHECK_ONLY=$LANE1_STAGES IVSHMEM_CHECK_LOGS=$IVSHMEM_CHECK_LOGS/lane1 \
		"$TOP/selftests/run.sh" >"$IVSHMEM_CHECK_LOGS/lane1.out" 2>&1 &
	pid1=$!
	IVSHMEM_CHECK_ONLY=${lane2# } IVSHMEM_CHECK_LOGS=$IVSHMEM_CHECK_LOGS/lane2 \
		"$TOP/selftests/run.sh" >"$IVSHMEM_CHECK_LOGS/lane2.out" 2>&1 &
	pid2=$!
	wait "$pid1" "$pid2"
	for s in 1 2; do
		echo "# lane $s"
		grep -v '# SKIP not in IVSHMEM_CHECK_ONLY' "$IVSHMEM_CHECK_LOGS/lane$s.out"
		tally "$IVSHMEM_CHECK_LOGS/lane$s.out"
	done
	rm -f "$out.build"
}
if [ "${IVSHMEM_CHECK_DEBUG_ONLY:-}" = soak ]; then
	mkdir -p "$IVSHMEM_CHECK_LOGS"
	IVSHMEM_LAB_DIR=$IVSHMEM_LAB_DIR-soak "$TOP/selftests/soak.sh" |
		tee "$IVSHMEM_CHECK_LOGS/soak.tap" | tee "$out"
	passed=$(grep -c '^ok ' "$out")
	failed=$(grep -c '^not ok ' "$out")
elif [ -n "${IVSHMEM_CHECK_ONLY:-}" ] || [ "$LANES" -le 1 ]; then
	"$TOP/selftests/run.sh" | tee "$out"
	tally "$out"
else
	run_lanes
fi

# Every guest kernel log of every lab this run started, earlier boots too.
re=$(sed -n "s/^BAD_LOG_RE='\(.*\)'$/\1/p" "$TOP/tools/vm/lab")
loaded_re=$(sed -n "s/^MODULE_LOADED_RE='\(.*\)'$/\1/p" "$TOP/tools/vm/lab")
# Lines logged before the module first loaded in that boot are shown
# but not counted: under TCG on a busy host, a boot can log an RCU stall
# when the clocksource switch makes time jump, long before the module.
reports=0
for f in "$IVSHMEM_LAB_DIR"*/vm*/console.log*; do
	[ -f "$f" ] || continue
	b=$(tr -d '\r' <"$f" | awk -v re="$loaded_re" '$0 ~ re { exit } { print }' |
		grep -cE -- "$re")
	[ "$b" -eq 0 ] || echo "# $f: $b checker line(s) before the module loaded (not counted)"
	n=$(tr -d '\r' <"$f" | awk -v re="$loaded_re" '$0 ~ re { on = 1 } on' |
		grep -cE -- "$re")
	if [ "$n" -gt 0 ]; then
		echo "# $f: $n checker report line(s):"
		tr -d '\r' <"$f" | awk -v re="$loaded_re" '$0 ~ re { on = 1 } on' |
			grep -E -- "$re" | head -n 10 | sed 's/^/#   /'
		reports=$((reports + n))
	fi
done
if [ "$reports" -eq 0 ]; then
	echo "ok - no checker report in any guest kernel log"
	passed=$((${passed:-0} + 1))
else
	echo "not ok - $reports checker report line(s) in guest kernel logs"
	failed=$((${failed:-0} + 1))
fi
echo "# checker reports: $reports"
echo "${passed:-0} passed, ${failed:-1} failed"
[ "${failed:-1}" -eq 0 ]
