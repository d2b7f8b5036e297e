# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the guest test scripts (regions.sh, liveness.sh, dkms.sh): TAP output,
# expectations, running commands in the lab's guests, region usage.
# Needs TOP (the repository) and IVSHMEM_LAB_DIR set by the caller.

# shellcheck disable=SC2034 # used by the scripts that source this
LAB=$TOP/tools/vm/lab
# shellcheck disable=SC2034
MODULE=$TOP/net/ivshmem/af_ivshmem.ko
# shellcheck disable=SC2034
DIAG_MODULE=$TOP/net/ivshmem/af_ivshmem_diag.ko
# shellcheck disable=SC2034
IVSS=$TOP/tools/ivss/ivss
# shellcheck disable=SC2034
NC=$TOP/tools/ivshmem-nc/ivshmem-nc
# shellcheck disable=SC2034
STREAM=$TOP/selftests/ivshmem_stream
PEERD=$TOP/selftests/ivshmem_peerd

n=0
failures=0
ok() {		# ok NAME: pass
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {	# not_ok NAME WHY: fail
	n=$((n + 1))
	failures=$((failures + 1))
	echo "not ok $n - $1"
	# Every line of a multi-line reason stays a TAP comment.
	printf '%s\n' "$2" | sed 's/^/#   /'
}
expect() {	# expect NAME WANT GOT
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "want [$2], got [$3]"; fi
}
expect_match() {	# expect_match NAME PATTERN GOT
	if [[ $3 == *$2* ]]; then ok "$1"; else not_ok "$1" "want *$2*, got [$3]"; fi
}
run() {		# run VM CMD: output (stdout and stderr) of CMD in VM
	"$LAB" exec "$1" -- "$2" 2>&1
}
dev_stat() {	# dev_stat VM COUNTER: a counter of VM's (first) device
	run "$1" "cat /sys/bus/pci/drivers/af_ivshmem/0000:*/stats/$2 | head -1"
}
peer_id() {	# peer_id VM: its peer id on region 0
	run "$1" "'$IVSS' fabric -j" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["self"])'
}
finish() {	# stop the lab, print the plan, exit with the verdict
	"$LAB" stop >/dev/null 2>&1
	echo "1..$n"
	[ "$failures" -eq 0 ]
	exit
}
lab_up() {	# lab_up NAME START-ARGS...: starts the lab, or fails and ends
	local name=$1
	shift
	if "$LAB" start --force "$@" >/dev/null 2>&1; then
		ok "$name"
	else
		not_ok "$name" "lab start failed"
		finish
	fi
}
start_peer() {	# start_peer VM: the test peer, waiting until it listens
	run "$1" "setsid '$PEERD' >/tmp/peerd.log 2>&1 &
		for i in \$(seq 100); do grep -q ready /tmp/peerd.log && exit 0
			sleep 0.1; done; cat /tmp/peerd.log; exit 1"
}
wait_file() {	# wait_file VM FILE: its contents once non-empty (up to 60 s)
	run "$1" "for i in \$(seq 300); do test -s $2 && break; sleep 0.2; done; cat $2"
}
# wait_out VM FILE [ERE]: its contents once a line matches ERE (up to 240 s)
wait_out() {
	run "$1" "for i in \$(seq 1200); do grep -Eqs '${3:-.}' $2 && break
		sleep 0.2; done; cat $2"
}
# region_empty SHM: no channel allocated, free_start back at the data area
# (read from the host side of the memory object); prints the usage line.
region_empty() {
	local line
	for _ in $(seq 50); do
		line=$("$TOP/tools/vm/region_usage.py" "$1") || break
		[[ $line == *"active=0 free_start=${line##*data_offset=} "* ]] &&
			{ echo "$line"; return 0; }
		sleep 0.2
	done
	echo "$line"
	return 1
}
