#!/usr/bin/env python3
"""Merges the numagrid-bench JSON reports of one scripts/bench-peers.sh run
into results.json, writes results.md (per workload and target: p50, p99,
throughput, and every other target, numagrid-async included, as a ratio to
the memory-only numagrid row) and gnuplot scripts and
PNGs (latency percentile curves per target; throughput against processes).

Usage: scripts/bench_peers_report.py --out DIR --mode quick|full
           --servers TEXT REPORT.json...
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

PERCENTILES = [("p50", "p50_ns", 2), ("p90", "p90_ns", 10),
               ("p99", "p99_ns", 100), ("p99.9", "p99.9_ns", 1000),
               ("p99.99", "p99.99_ns", 10000)]
# The operation in the "read" and "write" columns of each workload.
READ_OP = {"A": "read", "B": "read", "C": "read", "D": "read", "E": "scan",
           "F": "read"}
WRITE_OP = {"A": "update", "B": "update", "C": None, "D": "insert",
            "E": "insert", "F": "read_modify_write"}


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns < 1000:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns / 1e6:.3g} ms"


def fmt_rate(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.3g} M"
    if v >= 1e3:
        return f"{v / 1e3:.3g} k"
    return f"{v:.3g}"


def fmt_ratio(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v:.0f}×"
    return f"{v:.3g}×"


def op(run, name):
    if name is None:
        return None
    for o in run["operations"]:
        if o["op"] == name:
            return o
    return None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(rep):
    w = rep["workload"]
    # Ratios are against the memory-only grid; its journaled variants
    # (numagrid-async, numagrid-sync) are rows like the peers'.
    base = {r["procs"]: r for r in rep["runs"] if r["target"] == "numagrid"}
    read_name, write_name = READ_OP.get(w, "read"), WRITE_OP.get(w)
    lines = [
        f"| Target | Procs | {read_name} p50 | {read_name} p99 | "
        f"{write_name or 'write'} p50 | {write_name or 'write'} p99 | "
        f"ops/s | {read_name} p50 ÷ numagrid | {write_name or 'write'} p50 "
        "÷ numagrid | ops/s ÷ numagrid |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in rep["runs"]:
        r, wr = op(run, read_name), op(run, write_name)
        n = base.get(run["procs"])
        nr = op(n, read_name) if n else None
        nw = op(n, write_name) if n else None
        mark = " (errors)" if run["all"]["failed"] or run["errors"] else ""
        peer = run["target"] != "numagrid"
        lines.append(
            f"| {run['target']}{mark} | {run['procs']} | "
            f"{fmt_ns(r['p50_ns'] if r else None)} | "
            f"{fmt_ns(r['p99_ns'] if r else None)} | "
            f"{fmt_ns(wr['p50_ns'] if wr else None)} | "
            f"{fmt_ns(wr['p99_ns'] if wr else None)} | "
            f"{fmt_rate(run['all']['throughput_ops_per_s'])} | "
            + (" | ".join([
                # Scans do different work per store: no ratio (as in the
                # numagrid-bench report).
                "–" if read_name == "scan" else
                fmt_ratio(ratio(r and r["p50_ns"], nr and nr["p50_ns"])),
                fmt_ratio(ratio(wr and wr["p50_ns"], nw and nw["p50_ns"])),
                fmt_ratio(ratio(run["all"]["throughput_ops_per_s"],
                                n and n["all"]["throughput_ops_per_s"])),
            ]) if peer else ("–" if read_name == "scan" else "1×") + " | "
               + ("1×" if wr else "–") + " | 1×")
            + " |")
    for s in rep.get("skipped", []):
        lines.append(f"| {s['target']} | – | skipped: {s['reason']} "
                     "| | | | | | | |")
    return "\n".join(lines)


def gnuplot_latency(rep, path_png):
    w = rep["workload"]
    runs = [r for r in rep["runs"] if r["procs"] == min(
        x["procs"] for x in rep["runs"])]
    procs = runs[0]["procs"] if runs else 1
    gp = [
        "set terminal pngcairo size 900,540 font 'sans,10'",
        f"set output '{path_png}'",
        f"set title 'Workload {w}: latency percentiles, all operations, "
        f"{procs} worker(s) per target (closed loop)'",
        "set logscale x", "set logscale y",
        "set xrange [1.6:14000]",
        "set xtics (" + ", ".join(f"'{lbl}' {x}" for lbl, _, x in PERCENTILES)
        + ")",
        "set ylabel 'latency (ns, log)'", "set xlabel 'percentile'",
        "set key outside right", "set grid",
    ]
    plots = []
    for i, run in enumerate(runs):
        name = f"$d{i}"
        gp.append(f"{name} << EOD")
        for _, key, x in PERCENTILES:
            gp.append(f"{x} {max(run['all'][key], 1)}")
        gp.append("EOD")
        plots.append(f"{name} using 1:2 with linespoints lw 2 "
                     f"title '{run['target']}'")
    gp.append("plot " + ", \\\n     ".join(plots))
    return "\n".join(gp) + "\n"


def gnuplot_throughput(rep, path_png):
    w = rep["workload"]
    targets = []
    for r in rep["runs"]:
        if r["target"] not in targets:
            targets.append(r["target"])
    procs = sorted({r["procs"] for r in rep["runs"]})
    gp = [
        "set terminal pngcairo size 900,540 font 'sans,10'",
        f"set output '{path_png}'",
        f"set title 'Workload {w}: throughput against worker processes "
        "(threads for tbb)'",
        "set logscale y", "set ylabel 'operations per second (log)'",
        "set xlabel 'workers'",
        f"set xrange [{procs[0] - 0.3}:{procs[-1] + 0.3}]",
        "set xtics (" + ", ".join(f"'{p}' {p}" for p in procs) + ")",
        "set key outside right", "set grid",
    ]
    plots = []
    for i, t in enumerate(targets):
        name = f"$d{i}"
        gp.append(f"{name} << EOD")
        for r in rep["runs"]:
            if r["target"] == t:
                gp.append(f"{r['procs']} {max(r['all']['throughput_ops_per_s'], 1)}")
        gp.append("EOD")
        plots.append(f"{name} using 1:2 with linespoints lw 2 title '{t}'")
    gp.append("plot " + ", \\\n     ".join(plots))
    return "\n".join(gp) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--servers", required=True,
                    help="how the script started the servers")
    ap.add_argument("--command", default="")
    ap.add_argument("reports", nargs="+")
    a = ap.parse_args()

    reports = []
    for path in a.reports:
        with open(path, encoding="utf-8") as f:
            reports.append(json.load(f))
    now = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    merged = {"generator": "scripts/bench-peers.sh", "mode": a.mode,
              "date": now, "servers": a.servers, "command": a.command,
              "reports": reports}
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1)
        f.write("\n")

    plots_dir = os.path.join(a.out, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    pngs = {}
    for rep in reports:
        w = rep["workload"]
        for kind, make in (("latency", gnuplot_latency),
                           ("throughput", gnuplot_throughput)):
            png = f"{kind}-{w}.png"
            gp_path = os.path.join(plots_dir, f"{kind}-{w}.gp")
            with open(gp_path, "w", encoding="utf-8") as f:
                f.write(make(rep, png))
            r = subprocess.run(["gnuplot", os.path.basename(gp_path)],
                               cwd=plots_dir, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"bench_peers_report: gnuplot {gp_path}: {r.stderr}",
                      file=sys.stderr)
            else:
                pngs.setdefault(w, []).append(f"plots/{png}")

    first = reports[0]
    md = [f"# numagrid-bench against its peers ({a.mode} run, {now})", ""]
    md.append(f"Command: `{a.command}`" if a.command else "")
    md += ["",
           f"Host: {first['cpus']} CPUs; load average {first['host']['load_average_1min']:.2f} "
           f"and {first['host']['other_runnable']} other runnable thread(s) at "
           "the start of the first workload (other work on the host makes "
           "2-worker results unreliable). "
           f"Records {first['records']}, key {first['key_size']} B, value "
           f"{first['value_size']} B, distribution "
           + ", ".join(sorted({f"{r['workload']}: {r['distribution']}" for r in reports}))
           + f"; {first['seconds']} s measured after {first['warmup_seconds']} s "
           "warmup per target and worker count; seed "
           f"{first['seed']}.", "",
           "Method: " + first["method"]["statement"] + ".", "",
           "## Persistence of each target", "",
           "| Target | Persistence | Store |", "| --- | --- | --- |"]
    seen = set()
    for rep in reports:
        for run in rep["runs"]:
            if run["target"] in seen:
                continue
            seen.add(run["target"])
            md.append(f"| {run['target']} | {run['persistence']} | "
                      f"{run['store']} |")
    md += ["", f"Servers as this script started them: {a.servers}", "",
           "## Physical limits, measured in each invocation", "",
           "| Workload | DRAM access | Cache-line round trip (CPUs) | "
           "Sequential write | fdatasync p50 (4 KiB append) |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for rep in reports:
        b = rep["baselines"]
        d = b["disk"]
        rt = b["cacheline_round_trip_ns"]
        md.append(
            f"| {rep['workload']} | {fmt_ns(b['dram_ns_per_access'])} | "
            + (f"{fmt_ns(rt)} ({b['cacheline_cpus'][0]}, {b['cacheline_cpus'][1]})"
               if rt is not None else "not measured: " + b["cacheline_error"])
            + " | "
            + (f"{d['seq_write_mib_per_s']:.0f} MiB/s ({d['dir']}, {d['fs_type']})"
               if d["seq_write_mib_per_s"] is not None else "–")
            + " | " + fmt_ns(d["fdatasync_p50_ns"]) + " |")
    md += ["", "numagrid's p50 as multiples of these (same invocation; "
           "numagrid-async's prefixed):", ""]
    for rep in reports:
        items = [f"{q['name'].replace('numagrid.', '')} = {q['value']:.3g}"
                 for q in rep["ratios"]
                 if q["name"].startswith(("numagrid.", "numagrid-")) and (
                     "dram" in q["name"] or "cacheline" in q["name"]
                     or "fdatasync" in q["name"])]
        if items:
            md.append(f"- {rep['workload']}: " + "; ".join(items))
    md += ["", "## Results", "",
           "p50 and p99 per operation type; ops/s counts every operation of "
           "the run. A peer's ratio below 1× is faster (latency) or slower "
           "(ops/s) than numagrid at the same worker count; the ratios are "
           "against the memory-only numagrid row, numagrid-async's too "
           "(the same grid journaled with async durability, its journal "
           "workers running in numagrid-bench). Workers are "
           "processes, threads for tbb. E's numagrid scan is the first N "
           "entries of one partition and the others' are N key lookups "
           "(MGET for Redis, an ordered cursor for LMDB): not the same work.",
           ""]
    for rep in reports:
        md += [f"### Workload {rep['workload']}: {rep['workload_description']}",
               "", table(rep), ""]
        for png in pngs.get(rep["workload"], []):
            md += [f"![{png}]({png})", ""]
        errors = [f"{r['target']} procs {r['procs']}: {e}"
                  for r in rep["runs"] for e in r["errors"]]
        if errors:
            md += ["Errors:", ""] + [f"- {e}" for e in errors] + [""]
    with open(os.path.join(a.out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
