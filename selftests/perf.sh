#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# ivshmem-perf, functional: two guests (doorbell mode); servers in vm2
# (AF_IVSHMEM, TCP) and vm1 (AF_UNIX).  For each transport, with JSON
# output: a checksummed stream test over two connections transfers exactly
# the bytes asked for (a count that is no multiple of the message size)
# and the server saw every byte as sent; ping-pong does exactly the rounds
# asked for; the connect test makes exactly K connections, as the server
# counted them.  --security require without keys fails with ENOKEY;
# --security off overrides a module policy of require.
# Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-perf}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

PERF=$TOP/tools/ivshmem-perf/ivshmem-perf
BYTES=3000001	# per stream
ROUNDS=777
CONNS=37

server() {	# server VM TRANSPORT: an ivshmem-perf server, once it listens
	run "$1" "setsid '$PERF' server -T $2 >/tmp/perf-$2.log 2>&1 &
		for i in \$(seq 100); do grep -q ready /tmp/perf-$2.log && exit 0
			sleep 0.1; done; cat /tmp/perf-$2.log; exit 1"
}
# verify TRANSPORT JSON: the checks on a client run's JSON, one line each
verify() {
	python3 - "$BYTES" "$ROUNDS" "$CONNS" "$2" <<'PY' 2>&1
import json, sys
nbytes, rounds, conns = map(int, sys.argv[1:4])
d = json.loads(sys.argv[4])
for k in ("tool", "transport", "address", "busy_poll_us", "security", "ok",
          "results"):
    assert k in d, "no key %s" % k
assert d["ok"] is True, "ok is not true"
s, p, c = d["results"]
keys = {"stream": ["msg_size", "streams", "bytes", "bytes_received", "seconds",
                   "mbit_s", "checksum", "checksum_ok", "verified",
                   "client_cpu_ns_per_byte", "server_cpu_ns_per_byte"],
        "pingpong": ["rounds", "rounds_echoed", "rtt_us", "one_way_us",
                     "verified", "client_cpu_s", "server_cpu_s"],
        "connect": ["connections", "connections_accepted", "per_second",
                    "verified"]}
for r in (s, p, c):
    for k in keys[r["test"]]:
        assert k in r, "no key %s in %s" % (k, r["test"])
print("stream", s["streams"], s["bytes"], s["bytes_received"],
      s["checksum_ok"], s["verified"], s["mbit_s"] > 0)
print("pingpong", p["rounds"], p["rounds_echoed"], p["verified"],
      sorted(p["rtt_us"]), p["rtt_us"]["p50"] <= p["rtt_us"]["p99"] <= p["rtt_us"]["max"])
print("connect", c["connections"], c["connections_accepted"], c["verified"])
PY
}
# client NAME VM ARGS: the three tests over one transport, checked
client() {
	local name=$1 vm=$2 out
	shift 2
	out=$(run "$vm" "'$PERF' client $* -j -c -m stream,pingpong,connect \
		-s 4K -P 2 -n $BYTES -r $ROUNDS -k $CONNS")
	expect "$name: JSON keys; exactly 2 x $BYTES bytes (checksum), $ROUNDS round trips, $CONNS connections" \
		"stream 2 $((2 * BYTES)) $((2 * BYTES)) True True True
pingpong $ROUNDS $ROUNDS True ['max', 'mean', 'min', 'p50', 'p99'] True
connect $CONNS $CONNS True" "$(verify "$name" "$out")"
}

lab_up "perf: lab starts two guests" -n 2 --mode doorbell
for vm in vm1 vm2; do
	expect "perf: $vm loads af_ivshmem" loaded \
		"$(run $vm "insmod '$MODULE' && echo loaded")"
done
P2=$(run vm2 "'$IVSS' fabric -j" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["self"])')
expect "perf: servers listen (vm2 AF_IVSHMEM and TCP, vm1 AF_UNIX)" "" \
	"$(server vm2 ivshmem; server vm2 tcp; server vm1 unix)"

client "perf: AF_IVSHMEM vm1 -> vm2" vm1 -T ivshmem -a "$P2:5100"
client "perf: TCP vm1 -> vm2" vm1 -T tcp -a 10.99.0.2:5100
client "perf: AF_UNIX in vm1" vm1 -T unix -a /tmp/ivshmem-perf.sock

expect_match "perf: --security require without keys fails with ENOKEY" \
	"Required key not available" \
	"$(run vm1 "'$PERF' client -T ivshmem -a $P2:5100 -m connect -k 1 --security require 2>&1; echo rc=\$?")"
# --security off is set, not skipped: under a module policy of require
# (and no keys) it still connects, in clear; with no option the module's
# policy applies and refuses.
SECURITY_PARAM=/sys/module/af_ivshmem/parameters/security
expect "perf: --security off connects under a module policy of require" \
	"off 1 1 True" \
	"$(run vm1 "echo require > $SECURITY_PARAM &&
		'$PERF' client -T ivshmem -a $P2:5100 -m connect -k 1 --security off -j" |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
c = d["results"][0]
print(d["security"], c["connections"], c["connections_accepted"], d["ok"])' 2>&1)"
expect_match "perf: no --security option follows the module's require: ENOKEY" \
	"Required key not available" \
	"$(run vm1 "'$PERF' client -T ivshmem -a $P2:5100 -m connect -k 1 2>&1
		echo prefer > $SECURITY_PARAM")"
expect "perf: memcpy mode copies, JSON" "memcpy 2 True" \
	"$(run vm1 "'$PERF' memcpy -j -s 64,64K -n 1M" | python3 -c 'import json,sys
d = json.load(sys.stdin)
print("memcpy", len(d["results"]), all(r["bytes"] >= 1 << 20 for r in d["results"]))' 2>&1)"

for vm in vm1 vm2; do
	expect "perf: $vm: servers stop, af_ivshmem unloads" unloaded \
		"$(run $vm "pkill -f ivshmem-perf; for i in \$(seq 50); do
			rmmod af_ivshmem 2>/dev/null && echo unloaded && exit; sleep 0.2; done")"
done
finish
