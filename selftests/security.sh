#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Connection security on two guests in doorbell mode (see "Encryption and
# key exchange" in Documentation/networking/af_ivshmem.rst): pairwise keys
# from tools/ivshmem-keys; protected connections by default once keys are
# loaded, and data integrity both ways; a reader of the shared memory
# object on the host finds no trace of a pattern sent protected (and
# finds it sent in clear); a ciphertext byte flipped, or an old record
# written back, from the host makes the receiver fail with EBADMSG and
# deliver nothing altered; a guest claiming another peer id, or holding a
# wrong key, cannot connect; the policies (off, prefer, require) and
# their errnos; ivss shows the secure flag.  Prints TAP; exits non-zero
# on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-security}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"
KEYS=$TOP/tools/ivshmem-keys/ivshmem-keys
RING=$TOP/selftests/security_ring.py
SEQ=$TOP/selftests/ivshmem_seqmsg
DSEC=$TOP/selftests/dgram_sec.py
PATTERN=AF-IVSHMEM-EAVESDROP-PATTERN-7f3a
SEQPATTERN=AF-IVSHMEM-SEQPACKET-PATTERN-5c1d
WORK=$IVSHMEM_LAB_DIR-work

lab_up "two guests start" -n 2 --mode doorbell
SHM=$("$LAB" shm r0)
rm -rf "$WORK"
mkdir -p "$WORK"
loaded=yes
for vm in vm1 vm2; do
	# insmod does not follow the module's softdep on the AEAD.
	run $vm "modprobe -a gcm ghash-generic ctr && insmod '$MODULE' &&
		insmod '$DIAG_MODULE'" >/dev/null || loaded=no
done
expect "modules and crypto modules load" yes "$loaded"
P1=$(run vm1 "dmesg | sed -n 's/.*peer id \([0-9]*\),.*/\1/p' | tail -1")
P2=$(run vm2 "dmesg | sed -n 's/.*peer id \([0-9]*\),.*/\1/p' | tail -1")
# listening VM PORT: waits (up to 10 s) until a socket listens on PORT.
listening() {
	run "$1" "for i in \$(seq 100); do '$IVSS' -l 2>/dev/null |
		grep -q ':$2 ' && exit 0; sleep 0.1; done; exit 1" >/dev/null
}
# nc_done VM PORT: waits (up to 20 s) until the ivshmem-nc on PORT ends.
nc_done() {
	run "$1" "for i in \$(seq 200); do pgrep -f 'ivshmem-nc.* $2\$' >/dev/null ||
		exit 0; sleep 0.1; done; exit 1" >/dev/null
}
nc_bg() {	# nc_bg VM OUT-PREFIX ARGS... PORT: a listening ivshmem-nc
	local vm=$1 out=$2
	shift 2
	run "$vm" "rm -f $out.*; setsid sh -c \"'$NC' $* </dev/null >$out.out 2>$out.err\" &" >/dev/null
	listening "$vm" "${*: -1}"
}

# Keys: the host derives each guest's row; each guest loads only its own.
"$KEYS" master >"$WORK/master"
"$KEYS" derive "$WORK/master" r0 "$P1" 4 >"$WORK/row1"
"$KEYS" derive "$WORK/master" r0 "$P2" 4 >"$WORK/row2"
expect "K(i,j) = K(j,i): both rows hold the same key for the pair" \
	"$(sed -n "$((P2 + 1))p" "$WORK/row1" | cut -d' ' -f2)" \
	"$(sed -n "$((P1 + 1))p" "$WORK/row2" | cut -d' ' -f2)"
load_keys() {
	run vm1 "'$KEYS' clear && '$KEYS' load '$WORK/row1'" &&
	run vm2 "'$KEYS' clear && '$KEYS' load '$WORK/row2'"
}
expect_match "each guest loads its row (CAP_NET_ADMIN ioctl)" "4 keys loaded" "$(load_keys)"
expect_match "loading keys needs CAP_NET_ADMIN" "Operation not permitted" \
	"$(run vm1 "setpriv --inh-caps=-all --bounding-set=-all '$KEYS' clear")"

# Default policy (prefer) with keys: protected, both ends say so.
nc_bg vm2 /tmp/p -P -l 7000
out=$(run vm1 "echo ping | '$NC' -q -P $P2 7000 2>&1")
expect "prefer + keys: the connector's socket is protected" "protected 1" "$out"
expect "prefer + keys: the acceptor's socket is protected, data arrives" \
	"ping protected 1" "$(nc_done vm2 7000; run vm2 "cat /tmp/p.out; grep protected /tmp/p.err" | tr '\n' ' ' | sed 's/ $//')"

# ivss shows the secure flag of a protected connection.
nc_bg vm2 /tmp/i -l 7001
run vm1 "setsid sh -c \"sleep 6 | '$NC' -q $P2 7001 >/dev/null 2>&1\" & sleep 1" >/dev/null
expect_match "ivss -e shows a protected connection as secure" " secure" \
	"$(run vm1 "'$IVSS' -e 2>&1 | grep -A1 ':7001'")"

# Integrity, 4 MiB each way: connector to acceptor, acceptor to connector.
run vm1 "head -c 4194304 /dev/urandom >/tmp/d1" >/dev/null
run vm2 "head -c 4194304 /dev/urandom >/tmp/d2" >/dev/null
nc_bg vm2 /tmp/r -l 7002
start=$(date +%s%N)
run vm1 "'$NC' -q $P2 7002 </tmp/d1" >/dev/null
t_sec=$((($(date +%s%N) - start) / 1000000))
expect "4 MiB connector -> acceptor, protected: checksums match" \
	"$(run vm1 "sha256sum </tmp/d1")" "$(nc_done vm2 7002; run vm2 "sha256sum </tmp/r.out")"
run vm2 "setsid sh -c \"'$NC' -q -l 7003 </tmp/d2 >/dev/null 2>&1\" &" >/dev/null
listening vm2 7003
expect "4 MiB acceptor -> connector, protected: checksums match" \
	"$(run vm2 "sha256sum </tmp/d2")" "$(run vm1 "'$NC' -q $P2 7003 </dev/null | sha256sum")"
nc_bg vm2 /tmp/r -s off -l 7004
start=$(date +%s%N)
run vm1 "'$NC' -s off -q $P2 7004 </tmp/d1" >/dev/null
t_plain=$((($(date +%s%N) - start) / 1000000))
echo "# 4 MiB one way (TCG, wall clock incl. lab exec): protected ${t_sec} ms, plain ${t_plain} ms"

# Eavesdropping: 1 MiB of a pattern sits in the ring (the reader is held
# back); the host's view of the region never shows it protected.
eavesdrop() {	# eavesdrop PORT POLICY: pattern occurrences seen on the host
	run vm1 "yes '$PATTERN' | head -c 1048576 >/tmp/pat" >/dev/null
	run vm2 "setsid sh -c \"'$NC' -q -s $2 -l $1 </dev/null | (sleep 6; cat >/dev/null)\" &" >/dev/null
	listening vm2 "$1"
	run vm1 "setsid sh -c \"'$NC' -q -s $2 $P2 $1 </tmp/pat >/dev/null 2>&1\" &
		sleep 3" >/dev/null
	"$RING" "$SHM" count "$PATTERN"
}
expect "eavesdrop: a protected transfer leaves no trace of the pattern in the region" \
	0 "$(eavesdrop 7010 prefer)"
seen=$(eavesdrop 7011 off)
if [ "${seen:-0}" -gt 100 ]; then ok "eavesdrop: the same transfer in clear shows it ($seen times)"
else not_ok "eavesdrop: the same transfer in clear shows it" "found $seen"; fi

# Tampering and replay from the host, while the receiver holds back: it
# reads a first part, then waits for /tmp/a.go, which the test creates
# once the attack is made (security_ring.py waits for the hold-back), so
# no step depends on how fast the kernel is.
run vm1 "seq 1 100000 >/tmp/seq" >/dev/null	# 588895 bytes; vm2 compares
attack() {	# attack PORT tamper|replay BYTES: the attack's report
	local port=$1
	run vm2 "rm -f /tmp/a.*; setsid sh -c \"'$NC' -q -l $port 2>/tmp/a.err </dev/null |
		(head -c 100000 >/tmp/a.out
		 while [ ! -e /tmp/a.go ]; do sleep 0.1; done; cat >>/tmp/a.out)\" &" >/dev/null
	listening vm2 "$port"
	run vm1 "setsid sh -c \"(head -c $3 /tmp/seq; sleep 60) | '$NC' -q $P2 $port >/dev/null 2>&1\" &" \
		>/dev/null
	"$RING" "$SHM" "$2" "$P1" "$P2" "$port" 2>&1
	run vm2 "touch /tmp/a.go" >/dev/null
}
verdict() {	# verdict: what the receiver got, checked against what was sent
	run vm2 "for i in \$(seq 600); do grep -q 'recv: ' /tmp/a.err && break
			sleep 0.1; done; grep -o 'recv: [A-Z]*' /tmp/a.err
		seq 1 100000 | cmp /tmp/a.out - 2>&1 | grep -q 'EOF on /tmp/a.out' &&
		echo prefix"
}
fails0=$(dev_stat vm2 auth_failures)
expect_match "tamper: a ciphertext byte flipped from the host" "flipped" \
	"$(attack 7020 tamper 588895)"
expect "tamper: the receiver fails with EBADMSG and got only an unaltered prefix" \
	"recv: EBADMSG prefix" "$(verdict | tr '\n' ' ' | sed 's/ $//')"
expect_match "replay: an earlier record written over the next" "wrote the" \
	"$(attack 7021 replay 400000)"
expect "replay: the receiver fails with EBADMSG and got only an unaltered prefix" \
	"recv: EBADMSG prefix" "$(verdict | tr '\n' ' ' | sed 's/ $//')"
expect "both counted in auth_failures" $((fails0 + 2)) "$(dev_stat vm2 auth_failures)"

# SOCK_SEQPACKET, protected the same way: every message arrives whole,
# with its exact length and checksum: empty ones, ones across several
# records (more than 16360 bytes), ones larger than the sender's channel
# (SO_SNDBUF 8192: a 4 KiB ring), and MSG_TRUNC for one cut short.
seq_bg() {	# seq_bg VM OUT PORT ARGS...: a listening ivshmem_seqmsg
	local vm=$1 out=$2 port=$3
	shift 3
	run "$vm" "rm -f $out; setsid sh -c \"'$SEQ' -l $* $port >$out 2>&1 </dev/null\" &" >/dev/null
	listening "$vm" "$port"
}
seq_out() {	# seq_out VM OUT PORT: the listener's output once it ended
	run "$1" "for i in \$(seq 200); do pgrep -f 'ivshmem_seqmsg -l.* $3\$' >/dev/null ||
		break; sleep 0.1; done; cat $2"
}
LENS="1 0 100 16359 16360 16361 50000 0 200000 7"
seq_bg vm2 /tmp/s.out 7050
sent=$(run vm1 "'$SEQ' $P2 7050 $LENS 2>&1")
expect "SEQPACKET prefer + keys: the connector's socket is protected" \
	"protected 1" "$(echo "$sent" | head -1)"
expect "SEQPACKET protected: ten messages (0 to 200000 bytes), exact lengths and checksums" \
	"$sent" "$(seq_out vm2 /tmp/s.out 7050)"
seq_bg vm2 /tmp/s.out 7051
sent=$(run vm1 "'$SEQ' -b 8192 $P2 7051 $LENS 2>&1")
expect "SEQPACKET protected, messages larger than a 4 KiB channel: exact lengths and checksums" \
	"$sent" "$(seq_out vm2 /tmp/s.out 7051)"
seq_bg vm2 /tmp/s.out 7052 -c 1000
sent=$(run vm1 "'$SEQ' $P2 7052 5000 10 0 2>&1")
got=$(seq_out vm2 /tmp/s.out 7052)
expect "SEQPACKET protected: a message cut short has MSG_TRUNC" \
	"1000 trunc" "$(echo "$got" | sed -n 2p | cut -d' ' -f1,3)"
expect "SEQPACKET protected: the messages after it arrive intact" \
	"$(echo "$sent" | sed -n 3,4p)" "$(echo "$got" | sed -n 3,4p)"
seq_eavesdrop() {	# seq_eavesdrop PORT POLICY: pattern occurrences on the host
	seq_bg vm2 /tmp/e.out "$1" -s "$2" -n 0 -d 8000
	run vm1 "setsid sh -c \"'$SEQ' -s $2 -z 6000 -p '$SEQPATTERN' $P2 $1 60000 0 60000 60000 >/dev/null 2>&1\" &
		sleep 3" >/dev/null
	"$RING" "$SHM" count "$SEQPATTERN"
}
expect "SEQPACKET eavesdrop: a protected transfer leaves no trace of the pattern" \
	0 "$(seq_eavesdrop 7053 prefer)"
seen=$(seq_eavesdrop 7054 off)
if [ "${seen:-0}" -gt 100 ]; then ok "SEQPACKET eavesdrop: the same in clear shows it ($seen times)"
else not_ok "SEQPACKET eavesdrop: the same in clear shows it" "found $seen"; fi
seq_attack() {	# seq_attack PORT tamper|replay: the receiver reads 3 of 20,
		# then waits for /tmp/t.go (created after the attack)
	run vm2 "rm -f /tmp/t.go" >/dev/null
	seq_bg vm2 /tmp/t.out "$1" -n 3 -g /tmp/t.go
	run vm1 "setsid sh -c \"'$SEQ' -z 60000 $P2 $1 $(printf '1000 %.0s' $(seq 20)) >/tmp/t.sent 2>&1\" &" \
		>/dev/null
	"$RING" "$SHM" "$2" "$P1" "$P2" "$1" seqpacket 2>&1
	run vm2 "touch /tmp/t.go" >/dev/null
}
seq_verdict() {	# seq_verdict: the receiver's output once it failed
	run vm2 "for i in \$(seq 600); do grep -q 'recv: ' /tmp/t.out && break
		sleep 0.1; done; cat /tmp/t.out"
}
fails0=$(dev_stat vm2 auth_failures)
expect_match "SEQPACKET tamper: a ciphertext byte flipped from the host" "flipped" \
	"$(seq_attack 7055 tamper)"
expect "SEQPACKET tamper: three messages intact, then EBADMSG and nothing altered" \
	"$(run vm1 "head -4 /tmp/t.sent"; echo "recv: EBADMSG")" \
	"$(seq_verdict)"
expect_match "SEQPACKET replay: an earlier record written over the next" "wrote the" \
	"$(seq_attack 7056 replay)"
expect "SEQPACKET replay: three messages intact, then EBADMSG and nothing altered" \
	"$(run vm1 "head -4 /tmp/t.sent"; echo "recv: EBADMSG")" \
	"$(seq_verdict)"
expect "SEQPACKET: both counted in auth_failures" $((fails0 + 2)) "$(dev_stat vm2 auth_failures)"
seq_bg vm2 /tmp/s.out 7057 -s require
sent=$(run vm1 "'$SEQ' -s require $P2 7057 100 0 30000 2>&1")
expect "SEQPACKET require with keys: connects protected" "protected 1" \
	"$(echo "$sent" | head -1)"
expect "SEQPACKET require: lengths and checksums match" \
	"$sent" "$(seq_out vm2 /tmp/s.out 7057)"

# Impersonation: vm1 claims vm2's id (test_claim_peer) and connects to
# vm2; it holds K(vm1,vm2), not K(vm2,vm2), and cannot complete.
nc_bg vm2 /tmp/c -l 7030
out=$(run vm1 "echo $P2 >/sys/module/af_ivshmem/parameters/test_claim_peer
	'$NC' -q -w 3000 $P2 7030 </dev/null 2>&1
	echo -1 >/sys/module/af_ivshmem/parameters/test_claim_peer")
expect_match "impersonation: a guest claiming another peer's id cannot connect" \
	"connect: EKEYREJECTED" "$out"
expect "impersonation: the listener accepted nothing" "" \
	"$(run vm2 "sleep 1; cat /tmp/c.out /tmp/c.err")"
run vm1 "'$KEYS' set $P2 $(printf '%064x' 1)" >/dev/null
out=$(run vm1 "'$NC' -q -w 3000 $P2 7030 </dev/null 2>&1")
expect_match "a wrong key for the pair: connect fails" "connect: EKEYREJECTED" "$out"
expect "the listener still accepted nothing" "" \
	"$(run vm2 "sleep 1; cat /tmp/c.out /tmp/c.err")"
run vm2 "pkill -f 'ivshmem-nc -l 7030'" >/dev/null

# Policies.
run vm1 "'$KEYS' clear $P2" >/dev/null
out=$(run vm1 "'$NC' -q -s require $P2 7040 </dev/null 2>&1")
expect_match "require without a key: connect fails with ENOKEY" "connect: ENOKEY" "$out"
out=$(run vm1 "'$SEQ' -s require $P2 7040 1 2>&1")
expect_match "SEQPACKET require without a key: connect fails with ENOKEY" \
	"connect: ENOKEY" "$out"
nc_bg vm2 /tmp/q -l 7041
out=$(run vm1 "'$NC' -q $P2 7041 </dev/null 2>&1")
expect_match "prefer without a key to a peer that has one: refused (no downgrade), EACCES" \
	"connect: EACCES" "$out"
load_keys >/dev/null
nc_bg vm2 /tmp/q -l 7042
out=$(run vm1 "'$NC' -q -s off $P2 7042 </dev/null 2>&1")
expect_match "off to prefer with keys: refused, EACCES" "connect: EACCES" "$out"
nc_bg vm2 /tmp/q -s off -l 7043
out=$(run vm1 "'$NC' -q $P2 7043 </dev/null 2>&1")
expect_match "prefer with keys to an off listener: refused, EACCES" "connect: EACCES" "$out"
nc_bg vm2 /tmp/q -s require -l 7044
out=$(run vm1 "'$NC' -q -s off $P2 7044 </dev/null 2>&1")
expect_match "off to a require listener: refused, EACCES" "connect: EACCES" "$out"
run vm1 "'$KEYS' clear" >/dev/null
run vm2 "'$KEYS' clear" >/dev/null
nc_bg vm2 /tmp/q -l 7045
out=$(run vm1 "echo x | '$NC' -q -P -s off $P2 7045 2>&1")
expect "off to prefer without keys: plain, getsockopt says 0" "protected 0" "$out"
nc_bg vm2 /tmp/q -s off -l 7046
out=$(run vm1 "echo x | '$NC' -q -P $P2 7046 2>&1")
expect "prefer to off without keys: plain" "protected 0" "$out"

# Datagrams are never protected: across guests require refuses them
# (sendto and connect fail with EPROTONOSUPPORT; none from another guest
# reaches a require socket: dropped, counted as dgram_dropped_no_socket).
# Within a guest they never touch the region, and work.
expect "datagram, require: sendto another guest fails with EPROTONOSUPPORT" \
	"sendto: EPROTONOSUPPORT" "$(run vm1 "'$DSEC' require send $P2 7060")"
expect "datagram, require: connect to another guest fails with EPROTONOSUPPORT" \
	"connect: EPROTONOSUPPORT" "$(run vm1 "'$DSEC' require connect $P2 7060")"
expect "datagram, require: to a socket in the same guest it is delivered" "got 8" \
	"$(run vm1 "'$DSEC' require loop $P1 7061")"
dsec_recv() {	# dsec_recv POLICY PORT DROPPED: vm1's send, what vm2's POLICY
		# socket got.  Event-driven: the receiver is stopped ("none")
		# once dgram_dropped_no_socket passes DROPPED; a receiver not
		# bound within 60 s is said, so a drop is never taken for
		# the policy's.
	run vm2 "rm -f /tmp/d.out; setsid sh -c \"exec '$DSEC' $1 recv $2 120 >/tmp/d.out 2>&1\" &
		for i in \$(seq 600); do grep -q ready /tmp/d.out && break; sleep 0.1; done
		grep -q ready /tmp/d.out || echo 'receiver not ready:'"
	run vm1 "'$DSEC' prefer send $P2 $2"
	run vm2 "for i in \$(seq 600); do [ \$(wc -l </tmp/d.out) -ge 2 ] && break
		[ \$(cat /sys/bus/pci/devices/*/stats/dgram_dropped_no_socket | head -1) -gt $3 ] &&
			pkill -TERM -f 'dgram_sec.py $1 recv $2 '
		sleep 0.1; done; tail -1 /tmp/d.out"
}
drop0=$(dev_stat vm2 dgram_dropped_no_socket)
expect "datagram from another guest to a require socket: not delivered" "sent none" \
	"$(dsec_recv require 7062 "$drop0" | tr '\n' ' ' | sed 's/ $//')"
expect "... dropped, counted in dgram_dropped_no_socket" $((drop0 + 1)) \
	"$(dev_stat vm2 dgram_dropped_no_socket)"
expect "the same to a prefer socket: delivered" "sent got 8" \
	"$(dsec_recv prefer 7063 "$((drop0 + 1))" | tr '\n' ' ' | sed 's/ $//')"

expect "the module default is prefer" prefer \
	"$(run vm1 "cat /sys/module/af_ivshmem/parameters/security")"

finish
