#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Robustness: unloading with live sockets, the syscall fuzzer, and a soak
# with faults, on one lab of N guests (doorbell mode).  Prints TAP; exits
# non-zero on failure.
#
#   selftests/soak.sh [-n GUESTS] [-t SOAK_SECONDS] [-f FUZZ_SECONDS]
#                     [-c CLIENTS] [-i FAULT_INTERVAL_S] [-m MEM_MB] [-s SEED]
#
# Environment (the options win): IVSHMEM_SOAK_GUESTS (4),
# IVSHMEM_SOAK_SECONDS (600), IVSHMEM_FUZZ_SECONDS (60),
# IVSHMEM_SOAK_CLIENTS (3 client processes per guest),
# IVSHMEM_SOAK_INTERVAL (15 s between faults), IVSHMEM_SOAK_MEM (384 MiB
# per guest), IVSHMEM_SOAK_SHM (the region, 16M: small enough that a fill
# reaches its end), IVSHMEM_SOAK_SEED (random; printed: the same seed gives the
# same faults in the same order and the same fuzzer seeds),
# IVSHMEM_SOAK_FAULTS (the kinds to draw from, comma-separated; default
# kill-client,kill-server,reload,restart-qemu,fill).
#
# 1. rmmod with live sockets: refused (EWOULDBLOCK, "in use") while any
#    socket exists, the module keeps working; once their processes are
#    gone it unloads, and the remote ends of its connections get an error.
#    Then connects that give up while the peer answers leave no channel.
# 2. The fuzzer (ivshmem_fuzz) in vm1 and vm2 at once, so that remote
#    peers exist: only the errnos allowed per call, no hang.
# 3. The soak: every guest runs the echo server and CLIENTS client
#    processes (ivshmem_soak) opening, using and closing connections of
#    every type with checksummed data, while the harness injects faults
#    every FAULT_INTERVAL_S seconds: kill a client, kill a server, reload
#    the module in a guest, kill and restart a guest's QEMU, fill the
#    region with connections.  At the end: no corrupted or truncated
#    data, every lost connection counted by its error, every channel
#    back (the region's free space back to where it started), every
#    module unloads, kmemleak (if the kernel has it) reports nothing,
#    and no kernel log has a checker report.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-soak}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"
SOAK=$TOP/selftests/ivshmem_soak
FUZZ=$TOP/selftests/ivshmem_fuzz
KMEMLEAK=/sys/kernel/debug/kmemleak

guests=${IVSHMEM_SOAK_GUESTS:-4}
soak_s=${IVSHMEM_SOAK_SECONDS:-600}
fuzz_s=${IVSHMEM_FUZZ_SECONDS:-60}
clients=${IVSHMEM_SOAK_CLIENTS:-3}
interval=${IVSHMEM_SOAK_INTERVAL:-15}
mem=${IVSHMEM_SOAK_MEM:-384}
shm=${IVSHMEM_SOAK_SHM:-16M}
seed=${IVSHMEM_SOAK_SEED:-$(( (RANDOM << 15) | RANDOM ))}
while getopts n:t:f:c:i:m:s: opt; do
	case $opt in
	n) guests=$OPTARG ;;
	t) soak_s=$OPTARG ;;
	f) fuzz_s=$OPTARG ;;
	c) clients=$OPTARG ;;
	i) interval=$OPTARG ;;
	m) mem=$OPTARG ;;
	s) seed=$OPTARG ;;
	*) echo "usage: $0 [-n GUESTS] [-t SOAK_S] [-f FUZZ_S] [-c CLIENTS] [-i INTERVAL_S] [-m MEM_MB] [-s SEED]" >&2
	   exit 2 ;;
	esac
done
((guests >= 2)) || { echo "soak: at least 2 guests" >&2; exit 2; }
RANDOM=$seed
echo "# soak: seed $seed (replay: -s $seed), $guests guests, soak ${soak_s}s, fuzz ${fuzz_s}s"

SHM=$IVSHMEM_LAB_DIR/shm
declare -A id		# guest -> peer id
declare -A faults
vms=()
for ((k = 1; k <= guests; k++)); do vms+=("vm$k"); done

lab_up "$guests guests start (${mem} MiB each, a $shm region)" -n "$guests" \
	--mode doorbell --mem "$mem" --shm-size "$shm"

# load VM: the module, kmemleak's slate wiped (what booting left behind
# is not ours), the peer id noted.
load() {
	run "$1" "insmod '$MODULE' && { [ ! -w $KMEMLEAK ] || echo clear >$KMEMLEAK; }" &&
		id[$1]=$(run "$1" "'$SOAK' id")
}
peers() {	# the peer ids of every guest, comma-separated
	local vm out=
	for vm in "${vms[@]}"; do out+=${out:+,}${id[$vm]}; done
	echo "$out"
}
loaded=yes
for vm in "${vms[@]}"; do load "$vm" || loaded=no; done
expect "the module loads in every guest" yes "$loaded"
base=$("$TOP/tools/vm/region_usage.py" "$SHM")
echo "# region at the start: $base"

# --- 1. rmmod with live sockets ------------------------------------------
# A socket holds a reference on the module (its proto_ops and proto name
# it as owner): delete_module() fails with EWOULDBLOCK (EAGAIN), rmmod
# says "in use", module_exit never runs under a live socket.
out=$(run vm1 "python3 -c '
import ctypes, errno, os, socket, subprocess
fam = int(open(\"/sys/module/af_ivshmem/parameters/family\").read())
s = socket.socket(fam, socket.SOCK_SEQPACKET)
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.syscall(176, b\"af_ivshmem\", os.O_NONBLOCK)  # delete_module
print(\"delete_module=%d %s\" % (rc, errno.errorcode.get(ctypes.get_errno())))
r = subprocess.run([\"rmmod\", \"af_ivshmem\"], capture_output=True, text=True)
print(\"rc=%d %s\" % (r.returncode, r.stderr.strip()))
s.close()
'; grep -c '^af_ivshmem ' /proc/modules")
expect_match "delete_module() with one open socket fails with EWOULDBLOCK" \
	"delete_module=-1 EAGAIN" "$out"
expect_match "rmmod with one open socket is refused (in use)" \
	"rc=1 rmmod: ERROR: Module af_ivshmem is in use" "$out"
expect "  ... and the module stays loaded" 1 "${out##*$'\n'}"

run vm1 "setsid '$SOAK' server >/run/soak-unload-server.out 2>&1 &
	for i in \$(seq 50); do grep -q ready /run/soak-unload-server.out && break; sleep 0.1; done" >/dev/null
run vm2 "setsid '$SOAK' client -p ${id[vm1]} -t 600 -s $seed >/run/soak-unload-client.out 2>&1 &
	sleep 4" >/dev/null
out=$(run vm1 "rmmod af_ivshmem 2>&1; grep -c '^af_ivshmem ' /proc/modules")
expect_match "rmmod with live connections (a server and its clients) is refused" "in use" "$out"
out=$(run vm2 "'$SOAK' client -p ${id[vm1]} -t 3 -s 1")
expect_match "  ... and the connections keep working" "corrupt=0" "$out"
[[ $out == *" complete=0 "* ]] && not_ok "  ... some connection completed" "$out"
out=$(run vm1 "pkill -9 -f 'ivshmem_soak server'
	for i in \$(seq 50); do pgrep -f 'ivshmem_soak server' >/dev/null || break; sleep 0.1; done
	for i in \$(seq 20); do rmmod af_ivshmem 2>/dev/null && break; sleep 0.5; done
	grep -c '^af_ivshmem ' /proc/modules")
expect "once the server is killed, the module unloads" 0 "$out"
out=$(run vm2 "sleep 2; pkill -TERM -f 'ivshmem_soak client'
	for i in \$(seq 50); do grep -q soak-client /run/soak-unload-client.out && break; sleep 0.1; done
	cat /run/soak-unload-client.out")
echo "# remote client: $out"
expect_match "the remote client's connections end with an error, not corruption" "corrupt=0" "$out"
[[ $out =~ errors:.*E[A-Z]+= || $out =~ eof=[1-9] ]] ||
	not_ok "the remote client saw its connections fail" "$out"
load vm1 || not_ok "vm1 reloads the module" "insmod failed"
if every_free=$(region_empty "$SHM"); then
	ok "the unloaded guest's channels are reclaimed ($every_free)"
else
	not_ok "the unloaded guest's channels are reclaimed" "$every_free"
fi

# Regression: a connect that gives up (a signal, its connect timeout)
# after the peer accepted it left the peer's reply channel allocated for
# good (no socket took it, nobody released it).  300 connects from vm1
# to vm2, interrupted by a 0.1-20 ms timer or a 1-20 ms connect timeout;
# then every channel must be back.
run vm2 "setsid '$SOAK' server >/run/soak-giveup-server.out 2>&1 &
	for i in \$(seq 50); do grep -q ready /run/soak-giveup-server.out && break; sleep 0.1; done" >/dev/null
out=$(run vm1 "'$SOAK' giveup -p ${id[vm2]} -t 300")
echo "# $out"
expect_match "300 connects that give up while the peer answers them" "soak-giveup conns=300" "$out"
run vm2 "pkill -f 'ivshmem_soak server'" >/dev/null
if every_free=$(region_empty "$SHM"); then
	ok "  ... leave no channel behind: the peer's reply channels are released ($every_free)"
else
	not_ok "  ... leave no channel behind: the peer's reply channels are released" "$every_free"
fi

# --- 2. the fuzzer ---------------------------------------------------------
fz1=$((RANDOM * 32768 + RANDOM))
fz2=$((RANDOM * 32768 + RANDOM))
run vm2 "setsid '$FUZZ' -t $fuzz_s -p $guests -s $fz2 >/run/soak-fuzz.out 2>&1 &" >/dev/null
out=$("$LAB" exec vm1 --timeout $((fuzz_s + 120)) -- "'$FUZZ' -t $fuzz_s -p $guests -s $fz1" 2>&1)
echo "$out" | grep -v '^#   ' | sed 's/^/# vm1: /'
expect_match "fuzzer in vm1 (seed $fz1): clean errnos only, no hang" "ok seed=$fz1" "$out"
out=$(run vm2 "for i in \$(seq $((fuzz_s + 60))); do grep -q '^ok\|FAIL' /run/soak-fuzz.out && break; sleep 1; done
	sleep 1; cat /run/soak-fuzz.out")
echo "$out" | grep -v '^#   ' | sed 's/^/# vm2: /'
expect_match "fuzzer in vm2 (seed $fz2): clean errnos only, no hang" "ok seed=$fz2" "$out"
if every_free=$(region_empty "$SHM"); then
	ok "after the fuzzers, every channel is free ($every_free)"
else
	not_ok "after the fuzzers, every channel is free" "$every_free"
fi

# --- 3. the soak -----------------------------------------------------------
nclient=0
start_server() {
	run "$1" "setsid '$SOAK' server >>/run/soak-server.out 2>>/run/soak-server.err &
		for i in \$(seq 50); do grep -q ready /run/soak-server.out && break; sleep 0.1; done" >/dev/null
}
start_client() {	# start_client VM: one more client process, its own log
	nclient=$((nclient + 1))
	run "$1" "setsid '$SOAK' client -p $(peers) -t $((soak_s + 600)) -s $((seed + nclient)) \
		>/run/soak-client-$nclient.out 2>&1 &" >/dev/null
}
start_all() {	# start_all VM: the server and the clients
	local i
	start_server "$1"
	for ((i = 0; i < clients; i++)); do start_client "$1"; done
}
# collect VM: the summaries of a guest's processes, before they are lost
collect() {
	run "$1" "pkill -TERM -f 'ivshmem_soak (client|server)'
		for i in \$(seq 100); do pgrep -f 'ivshmem_soak (client|server)' >/dev/null || break
			sleep 0.1; done
		cat /run/soak-client-*.out /run/soak-server.out /run/soak-server.err 2>/dev/null
		rm -f /run/soak-client-*.out /run/soak-server.out /run/soak-server.err" >>"$SUMMARIES"
}
SUMMARIES=$(mktemp)
trap 'rm -f "$SUMMARIES"' EXIT

for vm in "${vms[@]}"; do start_all "$vm"; done
ok "soak: a server and $clients clients in each of $guests guests"

fault_failed=0
inject() {
	local kinds kind vm other out
	IFS=, read -r -a kinds <<<"${IVSHMEM_SOAK_FAULTS:-kill-client,kill-server,reload,restart-qemu,fill}"
	kind=${kinds[RANDOM % ${#kinds[@]}]}
	vm=${vms[RANDOM % guests]}
	# vm1 keeps the lab's first peer id: its QEMU is not restarted
	[[ $kind == restart-qemu && $vm == vm1 ]] && vm=vm2
	faults[$kind]=$(( ${faults[$kind]:-0} + 1 ))
	echo "# fault: $kind in $vm"
	case $kind in
	kill-client)
		run "$vm" "pkill -9 -o -f 'ivshmem_soak client'" >/dev/null
		start_client "$vm" ;;
	kill-server)
		run "$vm" "pkill -9 -f 'ivshmem_soak server'; sleep 0.5" >/dev/null
		start_server "$vm" ;;
	reload)
		collect "$vm"
		out=$(run "$vm" "pkill -9 -f ivshmem_soak
			for i in \$(seq 20); do rmmod af_ivshmem 2>/dev/null && echo unloaded && break
				sleep 0.5; done")
		if [[ $out != unloaded ]]; then
			not_ok "soak: $vm's module unloads once its processes are gone" "$out"
			fault_failed=1
		fi
		load "$vm"
		start_all "$vm" ;;
	restart-qemu)
		collect "$vm"
		if ! "$LAB" restart "$vm" >/dev/null 2>&1 || ! load "$vm"; then
			not_ok "soak: $vm restarts" "lab restart failed"
			fault_failed=1
			return
		fi
		start_all "$vm" ;;
	fill)
		other=${vms[RANDOM % guests]}
		out=$(run "$vm" "'$SOAK' fill -p ${id[$other]} -t 5")
		echo "# $out" ;;
	esac
}

deadline=$((SECONDS + soak_s))
while ((SECONDS < deadline)); do
	sleep "$interval"
	((SECONDS < deadline)) || break
	inject
done
for vm in "${vms[@]}"; do collect "$vm"; done

# The tally over every process's summary line.
total() {	# total FIELD: the sum of FIELD=N over the summaries
	grep -o " $1=[0-9]*" "$SUMMARIES" | awk -F= '{ s += $2 } END { print s + 0 }'
}
clients_lines=$(grep -c '^soak-client' "$SUMMARIES")
conns=$(grep '^soak-client' "$SUMMARIES" | grep -o ' conns=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
complete=$(grep '^soak-client' "$SUMMARIES" | grep -o ' complete=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
verified=$(grep '^soak-client' "$SUMMARIES" | grep -o ' bytes=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
corrupt=$(total corrupt)
causes=$(grep -o ' E[A-Z0-9]*=[0-9]*\| eof=[0-9]*' "$SUMMARIES" |
	awk -F= '{ gsub(/ /, "", $1); s[$1] += $2 } END { for (k in s) if (s[k]) printf "%s=%d ", k, s[k] }')
nfaults=0
flist=
for f in "${!faults[@]}"; do
	nfaults=$((nfaults + faults[$f]))
	flist+="$f=${faults[$f]} "
done
grep -h CORRUPT "$SUMMARIES" | head -n 5 | sed 's/^/# /'
expect "soak: no data corrupted or silently truncated" 0 "$corrupt"
if ((complete > 0)); then
	ok "soak: connections completed ($complete of $conns)"
else
	not_ok "soak: connections completed" "none of $conns ($clients_lines summaries)"
fi
((fault_failed == 0)) && ok "soak: every fault injected and recovered from ($nfaults)"

# Leaks: every channel back, every module unloads, kmemleak clean.
sleep 3	# the liveness timeout: a killed guest's channels
if every_free=$(region_empty "$SHM"); then
	ok "soak: no channel leaked, free space back to its start ($every_free)"
	leaks=0
else
	not_ok "soak: no channel leaked, free space back to its start" "$every_free (start: $base)"
	leaks=1
fi
unloaded=yes
leakrep=
for vm in "${vms[@]}"; do
	out=$(run "$vm" "pkill -9 -f 'ivshmem_(soak|fuzz)'; sleep 0.5
		rmmod af_ivshmem_diag 2>/dev/null; rmmod af_ivshmem && echo unloaded
		if [ -w $KMEMLEAK ]; then
			echo scan >$KMEMLEAK; sleep 6; echo scan >$KMEMLEAK
			cat $KMEMLEAK | head -n 60
		fi")
	[[ $out == unloaded* ]] || { unloaded=no; echo "# $vm: $out"; }
	if [[ $out == *"unreferenced object"* ]]; then
		leakrep+="$vm "
		while IFS= read -r l; do echo "# $vm kmemleak: $l"; done <<<"$out"
	fi
done
expect "soak: the module unloads in every guest (no socket leaked)" yes "$unloaded"
expect "soak: kmemleak reports nothing" "" "$leakrep"
[[ -z $leakrep ]] || leaks=$((leaks + 1))
# The lab's checker expression over every guest's console log (earlier
# boots too), from the module's first load on: a boot under TCG on a busy
# host can log an RCU stall (the clocksource switch makes time jump)
# before the module is anywhere near; those are shown, not counted.
re=$(sed -n "s/^BAD_LOG_RE='\(.*\)'$/\1/p" "$LAB")
loaded_re=$(sed -n "s/^MODULE_LOADED_RE='\(.*\)'$/\1/p" "$LAB")
reports=
for f in "$IVSHMEM_LAB_DIR"/vm*/console.log*; do
	[[ -f $f ]] || continue
	boot=$(tr -d '\r' <"$f" | awk -v re="$loaded_re" '$0 ~ re { exit } { print }' |
		grep -cE -- "$re")
	((boot == 0)) || echo "# ${f#"$IVSHMEM_LAB_DIR"/}: $boot checker line(s) before the module loaded (not counted)"
	reports+=$(tr -d '\r' <"$f" | awk -v re="$loaded_re" '$0 ~ re { on = 1 } on' |
		grep -E -- "$re" | sed "s|^|${f#"$IVSHMEM_LAB_DIR"/}: |")
done
expect "soak: no checker report in any kernel log once the module is loaded (KASAN, lockdep, UBSAN, ...)" \
	"" "$(head -n 20 <<<"$reports")"

echo "# soak summary: seed=$seed guests=$guests seconds=$soak_s connections=$conns" \
	"complete=$complete bytes_verified=$verified corrupt=$corrupt faults=$nfaults ($flist)" \
	"errors_by_cause=(${causes% }) leaks=$leaks"
finish
