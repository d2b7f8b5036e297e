#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Diagnostics.  Two guests on one region hold a known set of sockets
# (selftests/ivshmem_sockets): in vm1 a stream listener, a seqpacket
# listener and a bound datagram socket; from vm2 a stream connection with
# STREAM_BYTES sent and never read, a half-closed stream connection, a
# seqpacket connection with one unread message and a datagram waiting in
# vm1's socket.  Then:
#   - `ivss -a -j` in each guest lists exactly those sockets, with their
#     states, addresses and queue byte counts;
#   - `ivss` filters (-l, state, sport, -t/-S/-d) and -p, -e show what ss
#     would;
#   - `ivss fabric -j` shows the channels of those connections (owner,
#     ports, fill) and free space that adds up, and the peers alive;
#   - the connect, accept and channel tracepoints fire;
#   - once the holders are gone the fabric shows every channel freed, and
#     both modules unload.
# Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-diag}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

HOLDER=$TOP/selftests/ivshmem_sockets
BASE=6000
TRACEFS=/sys/kernel/tracing
TRACE_EVENTS="ivshmem_connect ivshmem_accept ivshmem_chan_alloc ivshmem_close"
TRACE_EVENTS+=" ivshmem_doorbell_send ivshmem_doorbell_recv"

# sockets VM [IVSS-ARGS...]: `ivss -j ARGS` reduced to one sorted line per
# socket: "NETID STATE LOCAL PEER RECV-Q SEND-Q"
sockets() {
	local vm=$1
	shift
	run "$vm" "'$IVSS' -j $*" | python3 -c '
import json, sys
def addr(a):
    return ":".join("*" if v is None else str(v) for v in (a["peer"], a["port"]))
for s in sorted(json.load(sys.stdin), key=lambda s: (s["netid"], s["state"], s["local"]["port"], str(s["peer"]["port"]))):
    print(s["netid"], s["state"], addr(s["local"]), addr(s["peer"]), s["recv_q"], s["send_q"])
' 2>&1
}

# expect_sockets NAME VM WANT IVSS-ARGS...: the reduced listing equals WANT;
# datagrams and peer shutdowns arrive asynchronously, so it is retried
# for up to 10 s.
expect_sockets() {
	local name=$1 vm=$2 want=$3 got i
	shift 3
	want=$(sort <<<"$want")
	for i in $(seq 20); do
		got=$(sockets "$vm" "$@" | sort)
		[ "$got" = "$want" ] && break
		sleep 0.5
	done
	expect "$name" "$want" "$got"
}

# fabric VM PYTHON: runs PYTHON on `ivss fabric -j` (as f, region 0 as r)
fabric() {
	run "$1" "'$IVSS' fabric -j" | python3 -c "
import json, sys
f = json.load(sys.stdin)
r = f['regions'][0]
$2" 2>&1
}

lab_up "diag: lab starts two guests" -n 2 --mode doorbell
for vm in vm1 vm2; do
	expect "diag: $vm loads af_ivshmem and af_ivshmem_diag" loaded \
		"$(run $vm "insmod '$MODULE' && insmod '$DIAG_MODULE' && echo loaded")"
	expect "diag: $vm has tracepoints for connect, accept, channels, close, doorbells" \
		enabled "$(run $vm "mountpoint -q $TRACEFS || mount -t tracefs nodev $TRACEFS
		for e in $TRACE_EVENTS; do
			echo 1 >$TRACEFS/events/af_ivshmem/\$e/enable || exit 1
		done; echo >$TRACEFS/trace; echo enabled")"
done
P2=$(run vm2 "'$HOLDER' 2>/dev/null | sed -n 's/^peer //p'")
P1=$(run vm1 "'$HOLDER' 2>/dev/null | sed -n 's/^peer //p'")

expect "diag: no sockets listed before the test" "" "$(sockets vm1 -a)"
expect "diag: fabric: the region starts empty" "True 0" \
	"$(fabric vm1 'print(r["free_bytes"] == r["data_bytes"], len(r["channels"]))')"

# The known sockets.
run vm1 "setsid '$HOLDER' server $BASE >/tmp/holder.log 2>&1 &
	for i in \$(seq 100); do grep -q ready /tmp/holder.log && exit 0; sleep 0.1; done
	cat /tmp/holder.log" >/dev/null
run vm2 "setsid '$HOLDER' client $P1 $BASE >/tmp/holder.log 2>&1 &
	for i in \$(seq 100); do grep -q ready /tmp/holder.log && exit 0; sleep 0.1; done
	cat /tmp/holder.log" >/dev/null
expect "diag: vm1 accepted the three connections" accepted \
	"$(run vm1 "for i in \$(seq 100); do grep -q accepted /tmp/holder.log && break
		sleep 0.1; done; grep -o accepted /tmp/holder.log")"
port() {	# port NAME: the client's port for its socket NAME
	run vm2 "sed -n 's/^$1 //p' /tmp/holder.log"
}
C1=$(port stream_data)
C2=$(port stream_halfclosed)
CQ=$(port seq)
CD=$(port dgram)

# Exactly the known sockets, with their queues: STREAM_BYTES (1000) unread
# in vm1, a seqpacket message of 64 bytes (one 8-byte record header + 64),
# a 100-byte datagram.
expect_sockets "diag: vm1: ivss -a -j lists exactly the known sockets" vm1 \
"i_str LISTEN *:$BASE *:* 0 8
i_str ESTAB $P1:$BASE $P2:$C1 1000 0
i_str CLOSE-WAIT $P1:$BASE $P2:$C2 0 0
i_seq LISTEN *:$((BASE + 1)) *:* 0 8
i_seq ESTAB $P1:$((BASE + 1)) $P2:$CQ 72 0
i_dgr UNCONN *:$((BASE + 2)) *:* 100 0" -a
expect_sockets "diag: vm2: ivss -a -j lists exactly the known sockets" vm2 \
"i_str ESTAB $P2:$C1 $P1:$BASE 0 1000
i_str FIN-WAIT-2 $P2:$C2 $P1:$BASE 0 0
i_seq ESTAB $P2:$CQ $P1:$((BASE + 1)) 0 72
i_dgr UNCONN *:$CD *:* 0 0" -a

# What ss users reach for.
expect_sockets "diag: vm1: ivss -l lists the listeners (and, as ss, unconnected datagram sockets)" vm1 \
"i_str LISTEN *:$BASE *:* 0 8
i_seq LISTEN *:$((BASE + 1)) *:* 0 8
i_dgr UNCONN *:$((BASE + 2)) *:* 100 0" -l
expect_sockets "diag: vm1: ivss (no -a) lists the connections only" vm1 \
"i_str ESTAB $P1:$BASE $P2:$C1 1000 0
i_str CLOSE-WAIT $P1:$BASE $P2:$C2 0 0
i_seq ESTAB $P1:$((BASE + 1)) $P2:$CQ 72 0"
expect_sockets "diag: vm1: ivss -a -S lists the seqpacket sockets only" vm1 \
"i_seq LISTEN *:$((BASE + 1)) *:* 0 8
i_seq ESTAB $P1:$((BASE + 1)) $P2:$CQ 72 0" -a -S
expect_sockets "diag: vm1: ivss -a -d lists the datagram socket only" vm1 \
"i_dgr UNCONN *:$((BASE + 2)) *:* 100 0" -a -d
expect_sockets "diag: vm2: ivss state fin-wait-2" vm2 \
"i_str FIN-WAIT-2 $P2:$C2 $P1:$BASE 0 0" state fin-wait-2
expect_sockets "diag: vm2: ivss -a dport = :$((BASE + 1))" vm2 \
"i_seq ESTAB $P2:$CQ $P1:$((BASE + 1)) 0 72" -a dport = :$((BASE + 1))
expect_match "diag: vm2: ivss -p names the owning process" \
	'users:(("ivshmem_sockets",pid=' "$(run vm2 "'$IVSS' -p sport = :$C1")"
expect_match "diag: vm1: ivss text output has ss's columns" \
	"Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port" \
	"$(run vm1 "'$IVSS' -a" | tr -s ' ')"
got=$(run vm2 "'$IVSS' -j -e sport = :$C1" | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
c = s["channels"]
print(s["inode"] > 0, s["peer_pid"] > 0, s["secure"], c["tx"]["size"] > 0,
      c["rx"]["size"] > 0)' 2>&1)
expect "diag: vm2: ivss -e -j: inode, peer pid, security, both channels" \
	"True True False True True" "$got"

# The fabric: the channels of those connections, seen from vm1.
got=$(fabric vm1 "
ch = r['channels']
def find(src, dst, typ):
    return [c for c in ch if c['src_port'] == src and c['dst_port'] == dst
            and c['type'] == typ]
data = find($C1, $BASE, 'stream')
seq = find($CQ, $BASE + 1, 'seqpacket')
print(len(data), data and data[0]['fill'], data and data[0]['sender'],
      data and data[0]['receiver'], len(seq), seq and seq[0]['fill'],
      r['stats']['dgram_received'])
print(r['free_bytes'] + sum(c['size'] for c in ch) == r['data_bytes'],
      r['active_channels'] == len(ch))
print(sorted((p['id'], p['alive']) for p in r['peers']))")
expect "diag: fabric: the stream and seqpacket channels with their fill, the datagram counted" \
	"1 1000 $P2 $P1 1 72 1
True True
[($P1, True), ($P2, True)]" "$got"

expect "diag: fabric: vm2 counted one datagram sent, three connections' channels" \
	"1 3" "$(fabric vm2 'print(r["stats"]["dgram_sent"],
	sum(1 for c in r["channels"] if c["sender"] == r["self"] and c["type"] != "dgram"))')"

# Tracepoints.
trace() {	# trace VM EVENT: that event's lines in VM's trace buffer
	run "$1" "grep ' $2:' $TRACEFS/trace"
}
expect_match "diag: vm2: ivshmem_connect fired for the stream connection" \
	"ivshmem_connect: region=0 stream local=$P2:$C1 remote=$P1:$BASE" \
	"$(trace vm2 ivshmem_connect)"
expect_match "diag: vm1: ivshmem_accept fired for it" \
	"ivshmem_accept: region=0 stream local=$P1:$BASE remote=$P2:$C1" \
	"$(trace vm1 ivshmem_accept)"
expect_match "diag: vm2: ivshmem_chan_alloc fired" "err=0" \
	"$(trace vm2 ivshmem_chan_alloc)"
expect_match "diag: vm2: ivshmem_doorbell_send fired for vm1" \
	"self=$P2 peer=$P1" "$(trace vm2 ivshmem_doorbell_send)"
expect_match "diag: vm1: ivshmem_doorbell_recv fired" \
	"self=$P1 vector=" "$(trace vm1 ivshmem_doorbell_recv)"

# Teardown: the holders exit, every channel goes, the modules unload.
run vm2 "pkill -f ivshmem_sockets" >/dev/null
run vm1 "pkill -f ivshmem_sockets" >/dev/null
expect_match "diag: vm1: ivshmem_close fired for the stream connection" \
	"ivshmem_close: region=0 stream local=$P1:$BASE remote=$P2:$C1" \
	"$(run vm1 "sleep 0.5; grep ' ivshmem_close:' $TRACEFS/trace")"
# vm2 closed first (EOF); vm1 then closes two connections with data
# unread (1000 stream bytes, the seqpacket message): two resets sent.
expect "diag: fabric: vm1 counted two resets sent, none received" "2 0" \
	"$(fabric vm1 'print(r["stats"]["resets_sent"], r["stats"]["resets_received"])')"
for i in $(seq 20); do
	got=$(fabric vm1 'print(len(r["channels"]), r["free_bytes"] == r["data_bytes"])')
	[ "$got" = "0 True" ] && break
	sleep 0.5
done
expect "diag: fabric: every channel freed once the holders exit" "0 True" "$got"
expect "diag: vm1: ivss -a lists nothing" "" "$(sockets vm1 -a)"
for vm in vm1 vm2; do
	expect "diag: $vm: both modules unload" unloaded \
		"$(run $vm "rmmod af_ivshmem_diag && rmmod af_ivshmem && echo unloaded")"
done
if "$LAB" stop >/dev/null 2>&1; then ok "diag: guest kernel logs are clean"
else not_ok "diag: guest kernel logs are clean" "see $IVSHMEM_LAB_DIR/vm*/console.log"; fi
echo "1..$n"
[ "$failures" -eq 0 ]
