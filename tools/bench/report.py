#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The benchmark suite's report: its JSON (tools/bench/suite.sh) into a
Markdown table with ratios against TCP between the guests, the issue's
targets as met / not met, and a gnuplot plot of throughput against
message size.

    report.py RESULTS.json [-o REPORT.md] [--plot OUT.svg]
              [--readme README.md]

--readme replaces the text between "<!-- bench:begin -->" and
"<!-- bench:end -->" in that file with the report.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

BASE = "tcp_guests"	# what ratios are taken against
# name, the row's label: the order of the tables.
CONFIGS = [
    ("ivshmem_doorbell", "AF_IVSHMEM, two guests, doorbell"),
    ("ivshmem_doorbell_busy", "AF_IVSHMEM, two guests, doorbell + SO_BUSY_POLL"),
    ("ivshmem_plain_busy", "AF_IVSHMEM, two guests, plain (polling) + SO_BUSY_POLL"),
    ("ivshmem_doorbell_secure", "AF_IVSHMEM, two guests, doorbell, security on"),
    ("ivshmem_plain_busy_secure", "AF_IVSHMEM, two guests, polling, security on"),
    ("tcp_guests", "TCP over virtio-net, two guests"),
    ("tcp_loopback", "TCP loopback, one guest"),
    ("unix", "AF_UNIX, one guest"),
    ("vsock_loopback", "AF_VSOCK loopback, one guest"),
    ("memcpy", "memcpy into a 4 MiB ring, one guest (copy bound)"),
]
NA = "n/a"


def results(cfg, test, **match):
    """The results of one test in a config, filtered by fields."""
    if not cfg or cfg.get("na") or "results" not in cfg:
        return []
    return [r for r in cfg["results"] if r["test"] == test and
            all(r.get(k) == v for k, v in match.items())]


def one(cfg, test, **match):
    found = results(cfg, test, **match)
    return found[0] if found else None


def size_name(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%d MiB" % (n >> 20)
    if n >= 1024 and n % 1024 == 0:
        return "%d KiB" % (n >> 10)
    return "%d B" % n


def ratio(value, base):
    if value is None or not base:
        return NA
    return "%.2fx" % (value / base)


def fmt(value, digits=0):
    return NA if value is None else "%.*f" % (digits, value)


def verdict(ok):
    return NA if ok is None else ("met" if ok else "not met")


def build(data):
    """The Markdown report of a suite's results."""
    cfgs = data["configs"]
    sizes = data["params"]["sizes"]
    big = max(sizes)
    par = data["params"].get("parallel", 4)
    base = cfgs.get(BASE)
    present = [(k, label) for k, label in CONFIGS if k in cfgs]
    out = []
    m = data.get("machine", {})
    load = m.get("load_before")
    out.append("Measured %s on %s (%s cores, %s%s), guests: %s; "
               "AF_IVSHMEM region %s.  Ratios are against %s.\n" % (
                   data.get("date", "?"), m.get("cpu", "?"), m.get("cores", "?"),
                   m.get("accel", "?"),
                   ", host load average %s at the start" % load if load else "",
                   m.get("guests", "?"), m.get("region", "?"),
                   dict(CONFIGS)[BASE]))

    def mbit(cfg, size, streams=1):
        r = one(cfg, "stream", msg_size=size, streams=streams)
        if not r:
            r = one(cfg, "memcpy", msg_size=size) if streams == 1 else None
        return r["mbit_s"] if r else None

    # Throughput.
    head = ["transport"] + ["%s" % size_name(s) for s in sizes] + \
        ["%d streams x %s" % (par, size_name(big))]
    out.append("Stream throughput, Mbit/s (ratio to TCP between guests), "
               "one stream unless noted:\n")
    out.append("| " + " | ".join(head) + " |")
    out.append("| " + " | ".join(["---"] * len(head)) + " |")
    for key, label in present:
        cfg = cfgs[key]
        cells = [label]
        for s in sizes + [None]:
            v = mbit(cfg, big, par) if s is None else mbit(cfg, s)
            b = mbit(base, big, par) if s is None else mbit(base, s)
            cells.append(NA if v is None else
                         "%s (%s)" % (fmt(v), ratio(v, b)))
        out.append("| " + " | ".join(cells) + " |")

    # Latency, setup rate, CPU.
    out.append("\nPing-pong (1 byte), connection setup, CPU time per byte "
               "(client + server, %s, one stream):\n" % size_name(big))
    head = ["transport", "rtt p50 us", "rtt p99 us", "rtt max us",
            "rtt mean us", "one-way p50 us (ratio)", "connects/s (ratio)",
            "CPU ns/byte (ratio)"]
    out.append("| " + " | ".join(head) + " |")
    out.append("| " + " | ".join(["---"] * len(head)) + " |")

    def cpu(cfg):
        r = one(cfg, "stream", msg_size=big, streams=1)
        if not r:
            return None
        return r["client_cpu_ns_per_byte"] + r["server_cpu_ns_per_byte"]

    bp, bc = one(base, "pingpong"), one(base, "connect")
    for key, label in present:
        if key == "memcpy":
            continue
        cfg = cfgs[key]
        p, c = one(cfg, "pingpong"), one(cfg, "connect")
        rtt = p["rtt_us"] if p else {}
        cells = [label, fmt(rtt.get("p50"), 1), fmt(rtt.get("p99"), 1),
                 fmt(rtt.get("max"), 1), fmt(rtt.get("mean"), 1)]
        cells.append(NA if not p else "%s (%s)" % (
            fmt(p["one_way_us"]["p50"], 1),
            ratio(p["one_way_us"]["p50"], bp and bp["one_way_us"]["p50"])))
        cells.append(NA if not c else "%s (%s)" % (
            fmt(c["per_second"]), ratio(c["per_second"], bc and bc["per_second"])))
        cells.append(NA if cpu(cfg) is None else "%s (%s)" % (
            fmt(cpu(cfg), 2), ratio(cpu(cfg), cpu(base))))
        out.append("| " + " | ".join(cells) + " |")

    # iperf3.
    ip = data.get("iperf3", {})
    tcp, run = ip.get("tcp_mbit_s"), ip.get("ivshmem_run_mbit_s")
    out.append("\niperf3 between the guests (%s s, one stream):\n" %
               ip.get("seconds", "?"))
    out.append("| iperf3 | Mbit/s | ratio |")
    out.append("| --- | --- | --- |")
    out.append("| plain iperf3 over TCP (virtio-net) | %s | %s |" %
               (fmt(tcp), ratio(tcp, tcp)))
    out.append("| iperf3 under ivshmem-run (AF_IVSHMEM) | %s | %s |" %
               (fmt(run), ratio(run, tcp)))

    # Targets.  Throughput: the peak over the message sizes, one stream;
    # the copy bound is the best memcpy rate over the same sizes.
    def peak(key):
        vals = [mbit(cfgs.get(key), s) for s in sizes]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def p50(key):
        p = one(cfgs.get(key), "pingpong")
        return p["one_way_us"]["p50"] if p else None

    def check(value, bound, lower_is_better=False):
        if value is None or bound is None:
            return None
        return value <= bound if lower_is_better else value >= bound

    tcp_t, copy_t, iv_t = peak(BASE), peak("memcpy"), peak("ivshmem_doorbell")
    tcp_l = p50(BASE)
    targets = [
        ("throughput >= 4x TCP between guests (doorbell, peak over sizes)",
         iv_t, "%s Mbit/s" % fmt(4 * tcp_t if tcp_t else None),
         check(iv_t, tcp_t and 4 * tcp_t)),
        ("throughput >= half the in-guest copy bound (doorbell, peak over sizes)",
         iv_t, "%s Mbit/s" % fmt(copy_t / 2 if copy_t else None),
         check(iv_t, copy_t and copy_t / 2)),
        ("one-way latency <= 1/2 TCP's, doorbell (p50)",
         p50("ivshmem_doorbell"), "%s us" % fmt(tcp_l / 2 if tcp_l else None, 1),
         check(p50("ivshmem_doorbell"), tcp_l and tcp_l / 2, True)),
        ("one-way latency <= 1/4 TCP's, polling (p50)",
         p50("ivshmem_plain_busy"), "%s us" % fmt(tcp_l / 4 if tcp_l else None, 1),
         check(p50("ivshmem_plain_busy"), tcp_l and tcp_l / 4, True)),
        ("iperf3 under ivshmem-run >= 3x iperf3 over TCP",
         run, "%s Mbit/s" % fmt(3 * tcp if tcp else None),
         check(run, tcp and 3 * tcp)),
    ]
    out.append("\nThe issue's targets:\n")
    out.append("| target | measured | needed | verdict |")
    out.append("| --- | --- | --- | --- |")
    for name, value, need, ok in targets:
        digits = 1 if "latency" in name else 0
        unit = " us" if "latency" in name else " Mbit/s"
        out.append("| %s | %s | %s | %s |" % (
            name, NA if value is None else fmt(value, digits) + unit, need,
            verdict(ok)))
    return "\n".join(out) + "\n"


def plot(data, path):
    """Throughput against message size, with gnuplot (SVG or PNG)."""
    gp = shutil.which("gnuplot")
    if not gp:
        print("report: gnuplot not found, no plot", file=sys.stderr)
        return False
    cfgs, sizes = data["configs"], data["params"]["sizes"]
    series = []
    for key, label in CONFIGS:
        pts = []
        for s in sizes:
            r = one(cfgs.get(key), "stream", msg_size=s, streams=1) or \
                one(cfgs.get(key), "memcpy", msg_size=s)
            if r:
                pts.append((s, r["mbit_s"]))
        if pts:
            series.append((label, pts))
    term = "pngcairo size 960,600" if path.endswith(".png") else \
        "svg size 960,600 dynamic background rgb 'white'"
    lines = ["set terminal %s" % term, "set output '%s'" % path,
             "set termoption noenhanced",
             "set logscale xy", "set grid",
             "set key outside bottom center horizontal maxcols 2 font ',10'",
             "set xlabel 'message size (bytes)'",
             "set ylabel 'throughput (Mbit/s)'",
             "set title 'Stream throughput against message size (%s)'" %
             data.get("date", "")]
    lines.append("plot " + ", ".join(
        "'-' using 1:2 with linespoints title '%s'" % label.replace("'", "")
        for label, _ in series))
    for _, pts in series:
        lines += ["%d %f" % p for p in pts] + ["e"]
    res = subprocess.run([gp], input="\n".join(lines) + "\n", text=True,
                         capture_output=True)
    if res.returncode:
        print("report: gnuplot failed: %s" % res.stderr, file=sys.stderr)
    return res.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("-o", "--output")
    ap.add_argument("--plot")
    ap.add_argument("--readme")
    args = ap.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    md = build(data)
    if args.output:
        with open(args.output, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if args.plot and not plot(data, args.plot):
        return 1
    if args.readme:
        with open(args.readme) as f:
            text = f.read()
        begin, end = "<!-- bench:begin -->\n", "<!-- bench:end -->"
        a, b = text.find(begin), text.find(end)
        if a < 0 or b < a:
            print("report: no bench markers in %s" % args.readme, file=sys.stderr)
            return 1
        with open(args.readme + ".tmp", "w") as f:
            f.write(text[:a + len(begin)] + "\n" + md + "\n" + text[b:])
        os.replace(args.readme + ".tmp", args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
