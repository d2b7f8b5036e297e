#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# ivshmem-run: unmodified TCP programs over AF_IVSHMEM.  Two guests on one
# region, joined also by a virtio-net link (vm1 10.99.0.1, vm2 10.99.0.2):
#   - each guest publishes its IPv4 addresses; the ioctls map an address
#     to a peer and back, and follow an address added and removed;
#   - iperf3 (server in vm2, client in vm1, both under ivshmem-run)
#     completes, with its bytes on AF_IVSHMEM: the connect tracepoint names
#     vm2's peer and port 5201, vm1 allocated channels, and eth0 carried
#     next to nothing;
#   - sockperf ping-pong completes the same way;
#   - socat moves a file (same sha256) the same way;
#   - destinations off the fabric stay on TCP: loopback, a server not run
#     under ivshmem-run, and (with -n, no kernel lookup) a preloaded server,
#     which also accepts TCP;
#   - the hosts file maps an unpublished IPv4 address and an IPv6 one;
#   - a Python client and server see AF_INET addresses and TCP options.
# Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-run}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

RUN=$TOP/tools/ivshmem-run/ivshmem-run
CHECK=$TOP/selftests/ivshmem_run_check.py
TRACEFS=/sys/kernel/tracing
IP1=10.99.0.1
IP2=10.99.0.2
BYTES=32M
# eth0 may carry a little (ARP, neighbour discovery), never the payload.
ETH_MAX=1000000

# bg VM NAME CMD: runs CMD (no single quotes) in the background in VM
# (output in /tmp/NAME.log) and waits until the log holds "listen" (from
# ivshmem-run -v or socat -d -d, once it listens) or "ready".
bg() {
	run "$1" "setsid sh -c '$3' >/tmp/$2.log 2>&1 </dev/null &
		for i in \$(seq 150); do
			grep -qE 'listen|ready' /tmp/$2.log && exit 0; sleep 0.2
		done; cat /tmp/$2.log; exit 1" >/dev/null
}
tx_bytes() {	# tx_bytes VM: bytes eth0 has sent
	run "$1" "cat /sys/class/net/eth0/statistics/tx_bytes"
}
channels() {	# channels VM: channels this guest allocated on region 0
	run "$1" "cat /sys/bus/pci/drivers/af_ivshmem/*/stats/channels_allocated | head -1"
}
connects() {	# connects VM PORT: ivshmem_connect events to PORT since the last call
	run "$1" "grep -c 'ivshmem_connect:.* remote=$P2:$2' $TRACEFS/trace; echo >$TRACEFS/trace"
}

lab_up "ivshmem-run: lab starts two guests" -n 2 --mode doorbell
for vm in vm1 vm2; do
	expect "ivshmem-run: $vm loads af_ivshmem, connect tracepoint on" loaded \
		"$(run $vm "insmod '$MODULE' || exit 1
		mountpoint -q $TRACEFS || mount -t tracefs nodev $TRACEFS
		echo 1 >$TRACEFS/events/af_ivshmem/ivshmem_connect/enable &&
		echo >$TRACEFS/trace && echo loaded")"
done
P1=$(run vm1 "'$IVSS' fabric -j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["self"])')
P2=$(run vm2 "'$IVSS' fabric -j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["self"])')

# Published addresses.
expect "ivshmem-run: vm1 resolves $IP2 to vm2's peer id" "$IP2 $P2 0" \
	"$(run vm1 "python3 '$CHECK' resolve $IP2")"
expect "ivshmem-run: vm1 resolves its own $IP1 to itself" "$IP1 $P1 0" \
	"$(run vm1 "python3 '$CHECK' resolve $IP1")"
expect "ivshmem-run: vm1 maps vm2's peer id back to $IP2" "$IP2 $P2 0" \
	"$(run vm1 "python3 '$CHECK' peeraddr $P2")"
expect "ivshmem-run: an address nobody publishes: ENOENT" \
	"error No such file or directory" \
	"$(run vm1 "python3 '$CHECK' resolve 10.99.0.77")"
run vm2 "ip addr add 10.99.1.2/24 dev eth0" >/dev/null
expect "ivshmem-run: an address vm2 adds is published" "10.99.1.2 $P2 0" \
	"$(run vm1 "for i in \$(seq 50); do python3 '$CHECK' resolve 10.99.1.2 |
		grep -v error && exit; sleep 0.1; done; echo none")"
run vm2 "ip addr del 10.99.1.2/24 dev eth0" >/dev/null
expect "ivshmem-run: and unpublished once removed" "gone" \
	"$(run vm1 "for i in \$(seq 50); do python3 '$CHECK' resolve 10.99.1.2 |
		grep -q error && echo gone && exit; sleep 0.1; done")"

# iperf3.
bg vm2 iperf3 "exec $RUN -v iperf3 -s -1 -p 5201"
eth=$(tx_bytes vm1)
ch=$(channels vm1)
connects vm1 5201 >/dev/null
got=$(run vm1 "'$RUN' iperf3 -c $IP2 -p 5201 -n $BYTES -J >/tmp/iperf3-c.json; echo rc=\$?")
expect "ivshmem-run: iperf3 -c $IP2 -n $BYTES exits 0" "rc=0" "$got"
expect "ivshmem-run: iperf3 sent all the bytes" "True" \
	"$(run vm1 "cat /tmp/iperf3-c.json" | python3 -c 'import json,sys
print(json.load(sys.stdin)["end"]["sum_sent"]["bytes"] >= 32 << 20)' 2>&1)"
expect "ivshmem-run: iperf3's two connections went to vm2's peer id, port 5201 (tracepoint)" \
	2 "$(connects vm1 5201)"
expect "ivshmem-run: vm1 allocated the connections' channels" True \
	"$(python3 -c "print($(channels vm1) - $ch >= 2)")"
expect "ivshmem-run: eth0 did not carry the payload (under $ETH_MAX bytes)" True \
	"$(python3 -c "print($(tx_bytes vm1) - $eth < $ETH_MAX)")"
expect_match "ivshmem-run: the iperf3 server accepted over AF_IVSHMEM from $IP1" \
	"accepted from ::ffff:$IP1 port" "$(wait_file vm2 /tmp/iperf3.log)"
expect_match "ivshmem-run: the iperf3 server saw the client as $IP1" \
	"Accepted connection from $IP1" "$(run vm2 "cat /tmp/iperf3.log")"

# sockperf ping-pong.
bg vm2 sockperf "exec $RUN -v sockperf server --tcp -p 11111"
got=$(run vm1 "'$RUN' sockperf ping-pong --tcp -i $IP2 -p 11111 -t 2 >/tmp/sockperf.log 2>&1
	echo rc=\$?; grep -o 'Summary: Latency is' /tmp/sockperf.log")
expect "ivshmem-run: sockperf ping-pong --tcp completes" "rc=0
Summary: Latency is" "$got"
expect "ivshmem-run: sockperf connected to vm2's peer id, port 11111 (tracepoint)" \
	1 "$(connects vm1 11111)"
run vm2 "pkill -x sockperf" >/dev/null

# socat moves a file.
run vm1 "head -c 4M /dev/urandom >/tmp/send" >/dev/null
bg vm2 socat "exec $RUN -v socat -u TCP-LISTEN:7000,reuseaddr OPEN:/tmp/recv,creat,trunc"
got=$(run vm1 "'$RUN' socat -u OPEN:/tmp/send TCP:$IP2:7000; echo rc=\$?")
expect "ivshmem-run: socat sends a file to $IP2:7000" "rc=0" "$got"
expect "ivshmem-run: socat connected to vm2's peer id, port 7000 (tracepoint)" \
	1 "$(connects vm1 7000)"
want=$(run vm1 "sha256sum </tmp/send")
expect "ivshmem-run: the file arrived whole (sha256)" "$want" \
	"$(run vm2 "for i in \$(seq 50); do pgrep -x socat >/dev/null || break
		sleep 0.1; done; sha256sum </tmp/recv")"

# Off the fabric: TCP.
bg vm2 plain "exec socat -d -d -u TCP-LISTEN:7001,reuseaddr OPEN:/tmp/recv-plain,creat,trunc"
eth=$(tx_bytes vm1)
got=$(run vm1 "'$RUN' -v socat -u OPEN:/tmp/send TCP:$IP2:7001 2>&1; echo rc=\$?")
expect_match "ivshmem-run: a server not under ivshmem-run: falls back to TCP" \
	"port 7001: peer $P2 region 0: Connection refused; TCP" "$got"
expect_match "ivshmem-run: and the transfer succeeds" "rc=0" "$got"
expect "ivshmem-run: over eth0 (over 4 MB sent)" True \
	"$(python3 -c "print($(tx_bytes vm1) - $eth > 4000000)")"
expect "ivshmem-run: the fallback file arrived whole (sha256)" "$want" \
	"$(run vm2 "for i in \$(seq 50); do pgrep -x socat >/dev/null || break
		sleep 0.1; done; sha256sum </tmp/recv-plain")"

bg vm2 noker "exec $RUN -v socat -u TCP-LISTEN:7002,reuseaddr OPEN:/tmp/recv-noker,creat,trunc"
got=$(run vm1 "'$RUN' -n socat -u OPEN:/tmp/send TCP:$IP2:7002; echo rc=\$?")
expect "ivshmem-run: -n (no kernel lookup): TCP to a preloaded server" "rc=0 0" \
	"$got $(connects vm1 7002)"
expect "ivshmem-run: which accepts TCP too (sha256)" "$want" \
	"$(run vm2 "for i in \$(seq 50); do pgrep -x socat >/dev/null || break
		sleep 0.1; done; sha256sum </tmp/recv-noker")"

got=$(run vm1 "'$RUN' python3 -c '
import socket, threading
ls = socket.create_server((\"127.0.0.1\", 0))
port = ls.getsockname()[1]
def serve():
    c, _ = ls.accept()
    c.sendall(c.recv(10))
threading.Thread(target=serve).start()
c = socket.create_connection((\"127.0.0.1\", port))
c.sendall(b\"lo\")
print(c.recv(10).decode(), c.getpeername()[0])'")
expect "ivshmem-run: loopback stays on TCP" "lo 127.0.0.1" "$got"

# The hosts file: an IPv4 address nobody publishes, an IPv6 address.
run vm1 "printf '# ivshmem-run test\n10.99.5.5 $P2 0\nfd00::2 $P2  # IPv6\n' \
	>/tmp/ivshmem-hosts" >/dev/null
bg vm2 hosts4 "exec $RUN -v socat -u TCP-LISTEN:7003,reuseaddr OPEN:/tmp/recv-h4,creat,trunc"
got=$(run vm1 "'$RUN' -f /tmp/ivshmem-hosts socat -u OPEN:/tmp/send TCP4:10.99.5.5:7003
	echo rc=\$?")
expect "ivshmem-run: -f HOSTS maps 10.99.5.5 to vm2's peer id (tracepoint)" "rc=0 1" \
	"$got $(connects vm1 7003)"
expect "ivshmem-run: the file arrived whole (sha256)" "$want" \
	"$(run vm2 "for i in \$(seq 50); do pgrep -x socat >/dev/null || break
		sleep 0.1; done; sha256sum </tmp/recv-h4")"
bg vm2 hosts6 "exec $RUN -v socat -u TCP-LISTEN:7004,reuseaddr OPEN:/tmp/recv-h6,creat,trunc"
got=$(run vm1 "IVSHMEM_HOSTS=/tmp/ivshmem-hosts '$RUN' socat -u OPEN:/tmp/send \
	'TCP6:[fd00::2]:7004'; echo rc=\$?")
expect "ivshmem-run: IVSHMEM_HOSTS maps IPv6 fd00::2 to vm2's peer id (tracepoint)" "rc=0 1" \
	"$got $(connects vm1 7004)"
expect "ivshmem-run: the file arrived whole (sha256)" "$want" \
	"$(run vm2 "for i in \$(seq 50); do pgrep -x socat >/dev/null || break
		sleep 0.1; done; sha256sum </tmp/recv-h6")"

# The TCP persona.
bg vm2 persona "exec $RUN python3 -u $CHECK server 7100"
client=$(run vm1 "'$RUN' python3 '$CHECK' client $IP2 7100")
server=$(run vm2 "for i in \$(seq 50); do
	grep -q congestion /tmp/persona.log && break; sleep 0.1; done; cat /tmp/persona.log")
expect "ivshmem-run: persona client connected over AF_IVSHMEM (tracepoint)" \
	1 "$(connects vm1 7100)"
expect "ivshmem-run: client: AF_INET addresses, TCP options answered, echo" \
	"client peername $IP2 7100
client sockname_addr $IP1
client domain 2
client protocol 6
client nodelay 1
client keepalive 1
client keepidle 30
client maxseg_positive True
client tcp_info_state 1 long_enough True
client congestion cubic
client echo ping" "$client"
port=$(sed -n 's/^server accept_addr [0-9.]* //p' <<<"$server")
expect "ivshmem-run: server: accepted from $IP1 (after select), AF_INET, TCP options" \
	"ready
server accept_addr $IP1 $port
server peername $IP1 $port
server sockname_addr $IP2
server domain 2
server protocol 6
server nodelay 1
server keepalive 1
server keepidle 30
server maxseg_positive True
server tcp_info_state 1 long_enough True
server congestion cubic" "$server"

for vm in vm1 vm2; do
	run $vm "pkill -f ivshmem_run_check; pkill -x socat; pkill -x iperf3" >/dev/null
	expect "ivshmem-run: $vm unloads af_ivshmem" unloaded \
		"$(run $vm "for i in \$(seq 50); do rmmod af_ivshmem 2>/dev/null &&
			echo unloaded && exit; sleep 0.2; done")"
done
finish
