#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug's own logic, without its kernel: which stages run, which
# results are kept and shown again, the log scan and the tally.  The real
# selftests/check-debug.sh runs in a scratch git checkout whose kernel
# build, Makefile, lab and suite (run.sh, soak.sh) are stubs; the stub
# suite has the stages "build alpha beta", each one passing test, and
# does what the STUB_* settings ask (they are not IVSHMEM_* settings, so
# they do not change the results' key):
#   STUB_KILL=STAGE    that stage's run.sh fails a test, then is killed
#                      (SIGKILL)
#   STUB_EXIT=STAGE    that stage's run.sh exits 3 before its tally
#   STUB_TERM=STAGE    that stage's run.sh gets SIGTERM after its tally
#   STUB_EDIT=STAGE    that stage changes a source file while it runs
#   STUB_REPORT=STAGE  that stage's guest logs a KASAN report after the
#                      module loaded; STUB_EARLY=STAGE: before it loaded
#   STUB_SOAK_RC=N     soak.sh prints nothing and exits N
# Prints TAP.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repo=$tmp/repo
mkdir -p "$repo/selftests" "$repo/tools/build" "$repo/tools/vm" \
	"$tmp/cache/kernel-stub/linux/include/generated"
echo '#define UTS_RELEASE "6.1.0-stub"' \
	>"$tmp/cache/kernel-stub/linux/include/generated/utsrelease.h"
cp "$TOP/selftests/check-debug.sh" "$repo/selftests/"

cat >"$repo/tools/build/debug-kernel.sh" <<EOF
#!/bin/sh
echo "$tmp/cache/kernel-stub/linux"
EOF
printf 'module tools selftests:\n\t@true\n' >"$repo/Makefile"
# The lab's own regular expressions, so that the scan is tested with them.
grep -E '^(BAD_LOG_RE|MODULE_LOADED_RE)=' "$TOP/tools/vm/lab" >"$repo/tools/vm/lab"
echo 'int main(void) { return 0; }' >"$repo/src.c"

cat >"$repo/selftests/run.sh" <<'EOF'
#!/usr/bin/env bash
if [ "${1:-}" = --stages ]; then
	echo build alpha beta
	exit 0
fi
s=$IVSHMEM_CHECK_ONLY
echo "$s" >>"$STUB_CALLS"
if [ "${STUB_KILL:-}" = "$s" ]; then
	echo "not ok - $s: the last words"
	kill -KILL $$
fi
[ "${STUB_EDIT:-}" != "$s" ] || echo "/* $s */" >>"$(dirname "$0")/../src.c"
log=$IVSHMEM_LAB_DIR/vm1/console.log
sleep 0.1	# newer than the stage's start, also on coarse timestamps
if [ "${STUB_REPORT:-}" = "$s" ]; then
	mkdir -p "${log%/*}"
	printf 'af_ivshmem: loaded\nBUG: KASAN: use-after-free in stub\n' >"$log"
fi
if [ "${STUB_EARLY:-}" = "$s" ]; then
	mkdir -p "${log%/*}"
	printf 'BUG: KASAN: stub before the module\naf_ivshmem: loaded\n' >"$log"
fi
echo "ok - $s: the stub test"
echo "ok - other stages # SKIP not in IVSHMEM_CHECK_ONLY"
echo "# stage times: $s 0 s"
[ "${STUB_EXIT:-}" != "$s" ] || exit 3
echo "1 passed, 0 failed, 1 skipped"
[ "${STUB_TERM:-}" != "$s" ] || kill -TERM $$
EOF
cat >"$repo/selftests/soak.sh" <<'EOF'
#!/usr/bin/env bash
[ -z "${STUB_SOAK_RC:-}" ] || exit "$STUB_SOAK_RC"
echo "ok 1 - soak: the stub soak"
EOF
chmod +x "$repo"/selftests/*.sh "$repo/tools/build/debug-kernel.sh"
git -C "$repo" init -q && git -C "$repo" add -A || exit 1

export IVSHMEM_LAB_DIR=$tmp/lab
export IVSHMEM_CHECK_LOGS=$tmp/logs
export STUB_CALLS=$tmp/calls
unset IVSHMEM_CHECK_ONLY IVSHMEM_CHECK_DEBUG_FRESH IVSHMEM_CHECK_DEBUG_ONLY
results=$tmp/cache/kernel-stub/results

n=0
failures=0
ok() {	# ok NAME CONDITION...: one TAP line; the output is shown on failure
	local name=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failures=$((failures + 1))
		sed 's/^/#   /' "$tmp/out"
		echo "#   (exit status $rc; stages run: $(calls))"
	fi
}

# cd_run ENV...: one run of make check-debug's script with ENV; its output is
# in $tmp/out, its exit status in $rc, the stages it ran in calls.
cd_run() {
	: >"$STUB_CALLS"
	env "$@" "$repo/selftests/check-debug.sh" >"$tmp/out" 2>&1
	rc=$?
}
calls() { paste -sd ' ' "$STUB_CALLS"; }
last() { tail -n 1 "$tmp/out"; }
has() { grep -qxF -- "$1" "$tmp/out"; }
# kept STAGE...: exactly these stages' results are kept, under one key
# (no STAGE: none is)
kept() {
	local want have
	want=$(printf '%s.out\n' "$@" | sort)
	have=$(cd "$results"/* 2>/dev/null && ls -1 | sort)
	[ "$(ls -1 "$results" | wc -l)" -eq 1 ] && [ "$have" = "${want#.out}" ]
}

cd_run
ok "a first run runs every stage and keeps all but build" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = "build alpha beta" ] &&
	[ "$(last)" = "3 passed, 0 failed" ] && has "# checker reports: 0" &&
	has "alpha: 1 passed, 0 failed" && kept alpha beta &&
	! has "1 passed, 0 failed, 1 skipped"'

cd_run
ok "the same sources again: build runs, the others are kept results" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = build ] &&
	[ "$(last)" = "3 passed, 0 failed" ] &&
	grep -q "^# stage alpha: kept from 20[0-9-]* [0-9:]*, same sources and kernel$" "$tmp/out" &&
	grep -q "^# stage beta: kept from " "$tmp/out" &&
	has "ok - alpha: the stub test" && has "beta: 1 passed, 0 failed"'

cd_run IVSHMEM_CHECK_ONLY=beta
ok "a stage named in IVSHMEM_CHECK_ONLY runs although kept, and only it" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = beta ] &&
	[ "$(last)" = "1 passed, 0 failed" ] && ! grep -q "kept from" "$tmp/out"'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1
ok "IVSHMEM_CHECK_DEBUG_FRESH=1 forgets the kept results" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = "build alpha beta" ] && kept alpha beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_KILL=beta
ok "a killed stage fails the run and is not kept" \
	eval '[ $rc -eq 1 ] && [ "$(calls)" = "build alpha beta" ] &&
	has "not ok - beta: the last words" &&
	has "not ok - beta: run.sh ended without a tally (exit status 137)" &&
	has "beta: 0 passed, 2 failed" &&
	[ "$(last)" = "2 passed, 2 failed" ] && kept alpha'

cd_run
ok "the next run resumes at the killed stage" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = "build beta" ] &&
	[ "$(last)" = "3 passed, 0 failed" ] && kept alpha beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_EXIT=alpha
ok "a stage that exits without a tally fails the run and is not kept" \
	eval '[ $rc -eq 1 ] && [ "$(calls)" = "build alpha beta" ] &&
	has "ok - alpha: the stub test" &&
	has "not ok - alpha: run.sh ended without a tally (exit status 3)" &&
	has "alpha: 1 passed, 1 failed" &&
	[ "$(last)" = "3 passed, 1 failed" ] && kept beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_TERM=alpha
ok "a stage whose run.sh died of a signal after its tally is not kept" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = "build alpha beta" ] &&
	[ "$(last)" = "3 passed, 0 failed" ] && kept beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_REPORT=alpha
ok "a checker report after the module loaded fails its stage, which is not kept" \
	eval '[ $rc -eq 1 ] && [ "$(calls)" = "build alpha beta" ] &&
	has "not ok - alpha: 1 checker report line(s) in guest kernel logs" &&
	has "#   BUG: KASAN: use-after-free in stub" &&
	has "alpha: 1 passed, 1 failed" && has "# checker reports: 1" &&
	[ "$(last)" = "3 passed, 1 failed" ] && kept beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_EARLY=alpha
ok "a checker line before the module loaded is shown, not counted" \
	eval '[ $rc -eq 0 ] &&
	has "# $IVSHMEM_LAB_DIR/vm1/console.log: 1 checker line(s) before the module loaded (not counted)" &&
	has "ok - alpha: no checker report in 1 guest kernel log(s)" &&
	has "# checker reports: 0" && [ "$(last)" = "4 passed, 0 failed" ] &&
	kept alpha beta'

cd_run IVSHMEM_CHECK_DEBUG_FRESH=1 STUB_EDIT=alpha
ok "a source changed while a stage runs: nothing after it is kept" \
	eval '[ $rc -eq 0 ] && [ "$(calls)" = "build alpha beta" ] && kept'
git -C "$repo" checkout -q -- src.c

cd_run	# all kept again, then a new file: nothing of it is reused
ok "untracked new sources change the key too" \
	eval 'kept alpha beta && echo x >"$repo/new.c" && cd_run &&
	rm -f "$repo/new.c" && [ "$(calls)" = "build alpha beta" ] &&
	[ "$(ls -1 "$results" | wc -l)" -eq 2 ]'

cd_run "IVSHMEM_CHECK_ONLY=alpha bogus"
ok "an unknown stage is refused, exit 2, nothing run" \
	eval '[ $rc -eq 2 ] && [ -z "$(calls)" ] &&
	[ "$(last)" = "IVSHMEM_CHECK_ONLY: no stage \"bogus\"; stages: build alpha beta" ]'

cd_run "IVSHMEM_CHECK_ONLY= "
ok "a blank IVSHMEM_CHECK_ONLY is refused, exit 2, nothing run" \
	eval '[ $rc -eq 2 ] && [ -z "$(calls)" ] &&
	[ "$(last)" = "IVSHMEM_CHECK_ONLY: no stage named" ]'

cd_run IVSHMEM_CHECK_DEBUG_ONLY=soak
ok "the soak alone: its tests and the tally" \
	eval '[ $rc -eq 0 ] && [ -z "$(calls)" ] &&
	has "soak: 1 passed, 0 failed" && [ "$(last)" = "1 passed, 0 failed" ]'

cd_run IVSHMEM_CHECK_DEBUG_ONLY=soak STUB_SOAK_RC=3
ok "a soak that exits without a result fails, with its exit status" \
	eval '[ $rc -eq 1 ] && has "not ok - soak: exit status 3" &&
	has "not ok - soak: no test passed" && [ "$(last)" = "0 passed, 2 failed" ]'

echo "1..$n"
[ "$failures" -eq 0 ]
