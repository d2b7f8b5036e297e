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
# (600: a KASAN kernel boots slowly under TCG); IVSHMEM_LAB_BOOT_SERIAL (0);
# IVSHMEM_LAB_SELFTEST_DEBIAN (1: the lab's self-test boots Debian's
# kernel); IVSHMEM_CHECK_DEBUG_ONLY=soak
# runs the build, the soak and the log scan only; IVSHMEM_CHECK_ONLY="STAGE
# ..." runs those stages of the suite (see selftests/run.sh), so that the
# suite, hours long on this kernel under TCG, can run a piece at a time.
#
# The run resumes: each stage's output and the scan of its guests'
# kernel logs are kept once the stage has passed, under the kernel's cache
# directory (results/KEY: see results_key for what KEY hashes), and a
# later run of the same sources and settings on the same kernel shows
# them again instead of running the stage: the suite takes longer than
# some machines stay up.  The build stage always runs (minutes).  Stages
# named in IVSHMEM_CHECK_ONLY always run; IVSHMEM_CHECK_DEBUG_FRESH=1
# forgets the kept results of these sources first.
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
# The lab's own self-test (the host stage) tests the lab, not the
# module: it boots Debian's kernel, in minutes instead of half an hour.
export IVSHMEM_LAB_SELFTEST_DEBIAN=${IVSHMEM_LAB_SELFTEST_DEBIAN:-1}
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-check-debug}
export IVSHMEM_CHECK_LOGS=${IVSHMEM_CHECK_LOGS:-$IVSHMEM_LAB_DIR-logs}

make -s module KDIR="$KDIR" >/dev/null || { echo "module build against $KDIR failed"; exit 1; }
make -s tools selftests >/dev/null || exit 1

# Each stage's scan reads the console logs its labs wrote: none left
# from an earlier run.
rm -f "$IVSHMEM_LAB_DIR"*/vm*/console.log*
out=$(mktemp)
stamp=$(mktemp)
trap 'rm -f "$out" "$stamp"' EXIT

re=$(sed -n "s/^BAD_LOG_RE='\(.*\)'$/\1/p" "$TOP/tools/vm/lab")
loaded_re=$(sed -n "s/^MODULE_LOADED_RE='\(.*\)'$/\1/p" "$TOP/tools/vm/lab")

# scan_logs STAGE: one result for the guest kernel logs written since
# $stamp (every lab of the stage, earlier boots too), if any were.
# Lines logged before the module first loaded in that boot are shown
# but not counted: under TCG on a busy host, a boot can log an RCU stall
# when the clocksource switch makes time jump, long before the module.
scan_logs() {
	local f b n logs=0 reports=0
	for f in "$IVSHMEM_LAB_DIR"*/vm*/console.log*; do
		[ -f "$f" ] && [ "$f" -nt "$stamp" ] || continue
		logs=$((logs + 1))
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
	[ "$logs" -gt 0 ] || return 0
	if [ "$reports" -eq 0 ]; then
		echo "ok - $1: no checker report in $logs guest kernel log(s)"
	else
		echo "not ok - $1: $reports checker report line(s) in guest kernel logs"
	fi
}

# results_key: what a kept result depends on, hashed: the content of
# every file of the working tree that git tracks or does not ignore
# (committed or not), but the Markdown, Documentation/ (the build stage,
# which renders it, is never kept) and this script (what it passes to the
# stages is in the IVSHMEM_* settings, hashed too).  Nothing outside a
# git checkout.
results_key() {
	local not=(. ':!*.md' ':!Documentation' ':!selftests/check-debug.sh')
	git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1 || return 0
	{
		git -C "$TOP" ls-files -z --cached --others --exclude-standard \
			-- "${not[@]}" | sort -zu |
			(cd "$TOP" && xargs -0 -r sha256sum 2>&1)
		env | grep '^IVSHMEM_' |
			grep -Ev '^IVSHMEM_CHECK_(ONLY|DEBUG_FRESH|DEBUG_ONLY)=' | sort
	} | sha256sum | cut -c1-16
}

passed=0
failed=0
reports=0
tally() {	# tally FILE: adds a stage's last line, "STAGE: N passed, N failed"
	local p f
	p=$(tail -n 1 "$1" | sed -n 's/^[a-z-]*: \([0-9]*\) passed, [0-9]* failed$/\1/p')
	f=$(tail -n 1 "$1" | sed -n 's/^[a-z-]*: [0-9]* passed, \([0-9]*\) failed$/\1/p')
	if [ -z "$p" ] || [ -z "$f" ]; then
		echo "not ok - $1 ended without a tally"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	reports=$((reports + $(sed -n 's/^not ok - [a-z-]*: \([0-9]*\) checker report.*/\1/p' "$1" |
		awk '{ s += $1 } END { print s + 0 }')))
}

# stage_tally STAGE FILE: ends FILE with "STAGE: N passed, N failed",
# counted from its TAP lines (skips are not passes).
stage_tally() {
	echo "$1: $(grep '^ok ' "$2" | grep -vc '# SKIP') passed," \
		"$(grep -c '^not ok ' "$2") failed" >>"$2"
}

# run_stage STAGE FILE: runs STAGE of the suite and scans its logs into
# FILE, which ends "STAGE: N passed, N failed".  Returns 1 if the stage
# did not end (run.sh killed, or no tally): such a FILE is not to keep.
run_stage() {
	local p f rc
	: >"$stamp"
	IVSHMEM_CHECK_ONLY=$1 IVSHMEM_CHECK_LOGS=$IVSHMEM_CHECK_LOGS/$1 \
		"$TOP/selftests/run.sh" >"$out" 2>&1
	rc=$?
	p=$(tail -n 1 "$out" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
	f=$(tail -n 1 "$out" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	{
		if [ -n "$p" ] && [ -n "$f" ]; then
			head -n -1 "$out"	# its tally: this stage's follows
		else
			cat "$out"
			echo "not ok - $1: run.sh ended without a tally (exit status $rc)"
		fi | grep -v '# SKIP not in IVSHMEM_CHECK_ONLY$'
		scan_logs "$1"
	} >"$2"
	stage_tally "$1" "$2"
	[ -n "$p" ] && [ -n "$f" ] && [ "$rc" -lt 128 ]
}

# kept_ok FILE: FILE is a whole kept result of a stage that passed (its
# last line a tally with nothing failed).
kept_ok() {
	[ -f "$1" ] && tail -n 1 "$1" | grep -qE '^[a-z-]+: [0-9]+ passed, 0 failed$'
}

mkdir -p "$IVSHMEM_CHECK_LOGS"
if [ "${IVSHMEM_CHECK_DEBUG_ONLY:-}" = soak ]; then
	: >"$stamp"
	IVSHMEM_LAB_DIR=$IVSHMEM_LAB_DIR-soak "$TOP/selftests/soak.sh" 2>&1 |
		tee "$IVSHMEM_CHECK_LOGS/soak.tap" >"$out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$out"; then
		echo "not ok - soak: exit status $rc" >>"$out"
	fi
	scan_logs soak >>"$out"
	awk '/^ok / && !/# SKIP/ { passed = 1 } END { exit !passed }' "$out" ||
		echo "not ok - soak: no test passed" >>"$out"
	stage_tally soak "$out"
	cat "$out"
	tally "$out"
else
	stages=$("$TOP/selftests/run.sh" --stages)
	only=$(echo ${IVSHMEM_CHECK_ONLY:-})	# one space between names
	for s in $only; do
		if [[ " $stages " != *" $s "* ]]; then
			echo "IVSHMEM_CHECK_ONLY: no stage \"$s\"; stages: $stages" >&2
			exit 2
		fi
	done
	if [ -n "${IVSHMEM_CHECK_ONLY:-}" ] && [ -z "$only" ]; then
		echo "IVSHMEM_CHECK_ONLY: no stage named" >&2
		exit 2
	fi
	key=$(results_key)
	kept=
	if [ -n "$key" ]; then
		kept=$dir/results/$key
		[ "${IVSHMEM_CHECK_DEBUG_FRESH:-0}" = 0 ] || rm -rf "$kept"
		mkdir -p "$kept"
		echo "# kept results: $kept"
	fi
	for s in $stages; do
		[ -z "$only" ] || [[ " $only " == *" $s "* ]] || continue
		file=$IVSHMEM_CHECK_LOGS/$s.out
		if [ -n "$kept" ] && [ -z "$only" ] && [ "$s" != build ] &&
		   kept_ok "$kept/$s.out"; then
			echo "# stage $s: kept from $(date -r "$kept/$s.out" '+%F %T'), same sources and kernel"
			file=$kept/$s.out
		else
			echo "# stage $s"
			# Kept only if it ended, nothing failed and the sources
			# did not change meanwhile (a failed stage runs again
			# next time); never the build stage (it also renders
			# Documentation/, which the key leaves out).
			if run_stage "$s" "$file" && [ -n "$kept" ] &&
			   [ "$s" != build ] && kept_ok "$file" &&
			   [ "$(results_key)" = "$key" ]; then
				cp "$file" "$kept/$s.out.new" && sync &&
					mv "$kept/$s.out.new" "$kept/$s.out"
			fi
		fi
		cat "$file"
		tally "$file"
	done
fi

echo "# checker reports: $reports"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
