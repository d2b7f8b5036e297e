#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark suite's report generator (tools/bench/report.py), offline,
# on a fixed input (selftests/data/bench_sample.json, TCP between guests
# at 200 Mbit/s with 64 KiB messages and 100 us one way): the ratios
# against TCP, the targets' verdicts (two exactly on their bound), n/a for
# a configuration without results, the README splice and the plot.
# Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
REPORT=$TOP/tools/bench/report.py
IN=$TOP/selftests/data/bench_sample.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
failures=0
has() {	# has NAME LINE: the report holds exactly LINE
	n=$((n + 1))
	if grep -qxF -- "$2" "$TMP/report.md"; then
		echo "ok $n - $1"
	else
		failures=$((failures + 1))
		echo "not ok $n - $1"
		echo "#   no line [$2]"
	fi
}

n=$((n + 1))
if "$REPORT" "$IN" -o "$TMP/report.md" 2>"$TMP/err"; then
	echo "ok $n - report.py turns the sample into Markdown"
else
	failures=$((failures + 1))
	echo "not ok $n - report.py failed: $(cat "$TMP/err")"
fi
has "throughput ratios per size and for parallel streams" \
	"| AF_IVSHMEM, two guests, doorbell | 250 (2.50x) | 800 (4.00x) | 900 (3.00x) |"
has "a size without a result is n/a" \
	"| AF_IVSHMEM, two guests, plain (polling) + SO_BUSY_POLL | n/a | 600 (3.00x) | n/a |"
has "security row without the option is n/a throughout" \
	"| AF_IVSHMEM, two guests, doorbell, security on | n/a | n/a | n/a |"
has "the copy bound against TCP" \
	"| memcpy into a 4 MiB ring, one guest (copy bound) | 1000 (10.00x) | 2000 (10.00x) | n/a |"
has "latency, setup rate and CPU per byte ratios" \
	"| AF_IVSHMEM, two guests, doorbell | 120.0 | 500.0 | 700.0 | 130.0 | 60.0 (0.60x) | 150 (3.00x) | 10.00 (0.50x) |"
has "iperf3 under ivshmem-run against TCP" \
	"| iperf3 under ivshmem-run (AF_IVSHMEM) | 350 | 3.50x |"
has "target: 4x TCP, exactly on the bound, met" \
	"| throughput >= 4x TCP between guests (doorbell, peak over sizes) | 800 Mbit/s | 800 Mbit/s | met |"
has "target: half the copy bound, not met" \
	"| throughput >= half the in-guest copy bound (doorbell, peak over sizes) | 800 Mbit/s | 1000 Mbit/s | not met |"
has "target: half TCP's latency with doorbells, not met" \
	"| one-way latency <= 1/2 TCP's, doorbell (p50) | 60.0 us | 50.0 us | not met |"
has "target: a quarter of TCP's latency polling, exactly on the bound, met" \
	"| one-way latency <= 1/4 TCP's, polling (p50) | 25.0 us | 25.0 us | met |"
has "target: iperf3 3x, met" \
	"| iperf3 under ivshmem-run >= 3x iperf3 over TCP | 350 Mbit/s | 300 Mbit/s | met |"

n=$((n + 1))
printf 'intro\n<!-- bench:begin -->\nold\n<!-- bench:end -->\noutro\n' >"$TMP/README.md"
"$REPORT" "$IN" -o /dev/null --readme "$TMP/README.md" 2>"$TMP/err"
if [ "$(head -1 "$TMP/README.md")" = intro ] && [ "$(tail -1 "$TMP/README.md")" = outro ] &&
   ! grep -qx old "$TMP/README.md" && grep -qF "(4.00x)" "$TMP/README.md"; then
	echo "ok $n - --readme replaces the text between the markers"
else
	failures=$((failures + 1))
	echo "not ok $n - --readme: $(cat "$TMP/err" "$TMP/README.md")"
fi

n=$((n + 1))
if ! command -v gnuplot >/dev/null; then
	echo "ok $n - the plot # SKIP gnuplot is not installed"
elif "$REPORT" "$IN" -o /dev/null --plot "$TMP/plot.svg" 2>"$TMP/err" &&
     grep -q "<svg" "$TMP/plot.svg"; then
	echo "ok $n - gnuplot draws throughput against message size (SVG)"
else
	failures=$((failures + 1))
	echo "not ok $n - the plot: $(cat "$TMP/err")"
fi
echo "1..$n"
[ "$failures" -eq 0 ]
