#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The side-by-side benchmark suite (`make bench`), in the VM lab, in one
# run: ivshmem-perf (stream throughput by message size and with parallel
# streams, 1-byte ping-pong, connection setup rate, CPU time per byte) over
#   - AF_IVSHMEM between two guests: doorbell, doorbell + SO_BUSY_POLL,
#     plain (polling) + SO_BUSY_POLL; doorbell and polling again with
#     security required (pairwise keys from ivshmem-keys loaded in both
#     guests after the runs in clear);
#   - TCP over the lab's virtio-net link between the same two guests;
#   - TCP loopback, AF_UNIX and AF_VSOCK loopback inside one guest;
#   - memcpy of the same sizes inside one guest (the copy bound);
# and iperf3 under ivshmem-run beside plain iperf3 over TCP.  Writes
# bench/results/DATE/{results.json,report.md,throughput.svg,raw/} and
# copies them to bench/latest.{json,md,svg}.
#
# Environment: BENCH_SECS (seconds per stream test, 1), BENCH_SIZES
# (64,1K,4K,16K,64K,256K), BENCH_PARALLEL (4 streams), BENCH_ROUNDS
# (ping-pong, 2000), BENCH_CONNS (100), BENCH_IPERF_SECS (5),
# BENCH_BUSY_POLL_US (5000), BENCH_OUT (bench/results/DATE),
# BENCH_GUEST_APPEND (clearcpuid=erms: see tools/bench/guests.sh).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$TOP/tools/vm/lab
# shellcheck source=tools/bench/guests.sh
. "$TOP/tools/bench/guests.sh"
MODULE=$TOP/net/ivshmem/af_ivshmem.ko
PERF=$TOP/tools/ivshmem-perf/ivshmem-perf
RUN=$TOP/tools/ivshmem-run/ivshmem-run
IVSS=$TOP/tools/ivss/ivss
KEYS=$TOP/tools/ivshmem-keys/ivshmem-keys
SECS=${BENCH_SECS:-1}
SIZES=${BENCH_SIZES:-64,1K,4K,16K,64K,256K}
PAR=${BENCH_PARALLEL:-4}
ROUNDS=${BENCH_ROUNDS:-2000}
CONNS=${BENCH_CONNS:-100}
IPERF_SECS=${BENCH_IPERF_SECS:-5}
BUSY=${BENCH_BUSY_POLL_US:-5000}
DATE=$(date -u +%Y-%m-%dT%H%MZ)
OUT=${BENCH_OUT:-$TOP/bench/results/$DATE}
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-bench-suite}
IP2=10.99.0.2
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)	# the host's, before we start
mkdir -p "$OUT/raw"

ex() {	# ex VM CMD
	"$LAB" exec "$1" --timeout 1800 -- "$2"
}
log() {
	echo "bench: $*" >&2
}
big=${SIZES##*,}

# perf NAME VM ARGS...: an ivshmem-perf client run into raw/NAME.json
# (the stream sizes one stream each, the largest size with PAR streams,
# ping-pong, connects).
perf() {
	local name=$1 vm=$2 out
	shift 2
	log "$name: $*"
	if out=$(ex "$vm" "'$PERF' client $* -j -L $name -s $SIZES -P 1 -t $SECS \
			-r $ROUNDS -k $CONNS &&
		'$PERF' client $* -j -L $name -s $big -P $PAR -t $SECS -m stream" 2>&1); then
		echo "$out" >"$OUT/raw/$name.out"
		python3 - "$OUT/raw/$name.out" "$OUT/raw/$name.json" <<'EOF'
import json, sys
docs, buf = [], ""
for line in open(sys.argv[1]).read().splitlines(True):	# two JSON documents
    buf += line
    if line.startswith("}"):
        docs.append(json.loads(buf))
        buf = ""
docs[0]["results"] += docs[1]["results"]
docs[0]["ok"] = docs[0]["ok"] and docs[1]["ok"]
json.dump(docs[0], open(sys.argv[2], "w"), indent=1)
EOF
		rm "$OUT/raw/$name.out"
	else
		echo "$out" >&2
		log "$name failed"
		exit 1
	fi
}

# servers VM TRANSPORT...: ivshmem-perf servers, waiting until each listens
servers() {
	local vm=$1 t
	shift
	for t in "$@"; do
		ex "$vm" "setsid '$PERF' server -T $t >/tmp/perf-$t.log 2>&1 &
			for i in \$(seq 100); do grep -q ready /tmp/perf-$t.log && exit 0
				sleep 0.1; done; cat /tmp/perf-$t.log; exit 1" >/dev/null
	done
}
boot() {	# boot MODE: two guests with the module (vm1 loads first)
	log "booting two guests, $1 mode"
	"$LAB" start --force -n 2 --mode "$1" >/dev/null
	ex vm1 "modprobe -a gcm ghash-generic ctr; insmod '$MODULE'" &&
		ex vm2 "modprobe -a gcm ghash-generic ctr; insmod '$MODULE'"
}
# keys P1 P2: each guest loads its row of pairwise keys (ivshmem-keys), so
# that connections between them are protected from then on
keys() {
	"$KEYS" master >"$OUT/raw/master"
	"$KEYS" derive "$OUT/raw/master" r0 "$1" 4 >"$OUT/raw/keys-vm1"
	"$KEYS" derive "$OUT/raw/master" r0 "$2" 4 >"$OUT/raw/keys-vm2"
	ex vm1 "'$KEYS' load '$OUT/raw/keys-vm1'" &&
		ex vm2 "'$KEYS' load '$OUT/raw/keys-vm2'"
	rm -f "$OUT/raw/master" "$OUT/raw/keys-vm1" "$OUT/raw/keys-vm2"
}
peer() {	# peer VM: its peer id
	ex "$1" "'$IVSS' fabric -j" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["self"])'
}
iperf() {	# iperf NAME PORT [ivshmem-run]: Mbit/s received
	local pre=${3:+$RUN }
	ex vm2 "setsid $pre iperf3 -s -1 -p $2 >/tmp/iperf-$1.log 2>&1 &
		sleep 1" >/dev/null
	ex vm1 "$pre iperf3 -c $IP2 -p $2 -t $IPERF_SECS -J" >"$OUT/raw/iperf3_$1.json"
	python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6)' \
		"$OUT/raw/iperf3_$1.json"
}

trap '"$LAB" stop >/dev/null 2>&1 || true' EXIT

boot doorbell
p1=$(peer vm1)
p2=$(peer vm2)
ACCEL=$("$LAB" status | sed -n 's/.*accel \([a-z]*\).*/\1/p' | head -1)
[[ $ACCEL == tcg ]] && ACCEL="no KVM, QEMU TCG"
servers vm2 ivshmem tcp
ex vm1 "modprobe vsock_loopback" || log "no vsock_loopback module"
servers vm1 tcp unix vsock
perf ivshmem_doorbell vm1 -T ivshmem -a "$p2:5100"
perf ivshmem_doorbell_busy vm1 -T ivshmem -a "$p2:5100" -b "$BUSY"
perf tcp_guests vm1 -T tcp -a "$IP2:5100"
perf tcp_loopback vm1 -T tcp -a 127.0.0.1:5100
perf unix vm1 -T unix -a /tmp/ivshmem-perf.sock
perf vsock_loopback vm1 -T vsock -a 1:5100
log "memcpy"
ex vm1 "'$PERF' memcpy -j -L memcpy -s $SIZES -t $SECS" >"$OUT/raw/memcpy.json"
log "iperf3 over TCP, then under ivshmem-run"
tcp_iperf=$(iperf tcp 5201)
run_iperf=$(iperf ivshmem_run 5202 run)
keys "$p1" "$p2"
perf ivshmem_doorbell_secure vm1 -T ivshmem -a "$p2:5100" --security require
"$LAB" stop >/dev/null

boot plain
p1=$(peer vm1)
p2=$(peer vm2)
servers vm2 ivshmem
perf ivshmem_plain_busy vm1 -T ivshmem -a "$p2:5100" -b "$BUSY"
keys "$p1" "$p2"
perf ivshmem_plain_busy_secure vm1 -T ivshmem -a "$p2:5100" -b "$BUSY" --security require
"$LAB" stop >/dev/null

python3 - "$OUT" "$SIZES" "$PAR" "$tcp_iperf" "$run_iperf" "$IPERF_SECS" "$DATE" \
	"$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
	"$ACCEL" \
	"$SECS" "$ROUNDS" "$CONNS" "$BUSY" "$LOAD" "$BENCH_GUEST_APPEND" <<'EOF'
import glob, json, os, sys
(out, sizes, par, tcp, run, isecs, date, cores, cpu, accel, secs, rounds,
 conns, busy, load, append) = sys.argv[1:]
def size(s):
    m = {"K": 1 << 10, "M": 1 << 20}
    return int(float(s[:-1]) * m[s[-1].upper()]) if s[-1].upper() in m else int(s)
configs = {}
for f in sorted(glob.glob(os.path.join(out, "raw", "*.json"))):
    name = os.path.basename(f)[:-5]
    if not name.startswith("iperf3_"):
        configs[name] = json.load(open(f))
data = {
    "date": date,
    "machine": {"cpu": cpu, "cores": int(cores), "accel": accel,
                "guests": "1 vCPU and 512 MiB each" +
                          (", booted with " + append if append.strip() else ""),
                "region": "64 MiB", "load_before": load},
    "params": {"sizes": [size(s) for s in sizes.split(",")],
               "parallel": int(par), "seconds": float(secs),
               "rounds": int(rounds), "connections": int(conns),
               "busy_poll_us": int(busy)},
    "configs": configs,
    "iperf3": {"seconds": int(isecs), "tcp_mbit_s": float(tcp),
               "ivshmem_run_mbit_s": float(run)},
}
json.dump(data, open(os.path.join(out, "results.json"), "w"), indent=1)
EOF
"$TOP/tools/bench/report.py" "$OUT/results.json" -o "$OUT/report.md" \
	--plot "$OUT/throughput.svg" || log "no plot"
mkdir -p "$TOP/bench"
cp "$OUT/results.json" "$TOP/bench/latest.json"
cp "$OUT/report.md" "$TOP/bench/latest.md"
[ ! -f "$OUT/throughput.svg" ] || cp "$OUT/throughput.svg" "$TOP/bench/latest.svg"
echo
cat "$OUT/report.md"
echo
echo "bench: results in $OUT (and bench/latest.*)"
