#!/usr/bin/env python3
"""Medians over the runs of one scenario: summarize.py RESULTS_DIR S1 -> RESULTS_DIR/S1-summary.md"""
import glob
import json
import os
import re
import statistics
import sys


def figures(r):
    """The figures of one run: the best held step (or the last step), plus connection figures."""
    steps = r["steps"]
    best = r["best_step"]
    s = steps[best] if best >= 0 else (steps[-1] if steps else None)
    http = r["subscribers"] == 0
    f = {}
    if s:
        lat = s["http_latency_ms"] if http else s["latency_ms"]
        f["throughput/s"] = s["acked_per_s"] if http else s["deliveries_per_s"]
        f["writes/s"] = s["acked_per_s"]
        if r["per_user"]:
            f["evaluations/s"] = s["acked_per_s"] * r["subscribers"]
            # S4: most evaluations deliver nothing, so also CPU per subscription x event.
            if s.get("server_cpu_us_per_delivery") is not None and s["acked"] > 0:
                f["server CPU us/evaluation"] = (
                    s["server_cpu_seconds"] * 1e6 / (s["acked"] * r["subscribers"]))
        for q in ("p50", "p90", "p99", "p999", "max"):
            f[q + " ms"] = lat[q]
        f["server CPU %"] = s["server_cpu_percent"]
        # Server CPU (utime + stime) over the step's delivery window / its deliveries, in us.
        # Absent for steps without deliveries (S3's idle connections, S5's REST runs).
        if not http and s.get("server_cpu_us_per_delivery") is not None:
            f["server CPU us/delivery"] = s["server_cpu_us_per_delivery"]
        # REST runs: server CPU per answered request, the figure least moved by other load.
        if http and s["acked"] > 0 and s.get("server_cpu_seconds") is not None:
            f["server CPU us/request"] = s["server_cpu_seconds"] * 1e6 / s["acked"]
        f["bench CPU %"] = s["bench_cpu_percent"]
        f["held step"] = best
        if len(steps) > 1:
            key = "acked_per_s" if http else "deliveries_per_s"
            f["peak throughput/s"] = max(x[key] for x in steps)
            f["first step p50 ms"] = (steps[0]["http_latency_ms"] if http else steps[0]["latency_ms"])["p50"]
            f["first step p99 ms"] = (steps[0]["http_latency_ms"] if http else steps[0]["latency_ms"])["p99"]
            # Rising runs (S1, S4): the first step's offered rate is the same before and after a
            # change, so its CPU per delivery compares like with like.
            if not http and steps[0].get("server_cpu_us_per_delivery") is not None:
                f["first step server CPU us/delivery"] = steps[0]["server_cpu_us_per_delivery"]
        # S7: every node's CPU over the step / all deliveries of the cluster.
        for n in s.get("nodes", []):
            if n["cpu_us_per_delivery"] is not None:
                f["CPU us/delivery " + n["name"]] = n["cpu_us_per_delivery"]
    if "cluster" in r:
        for p in r["cluster"]["peers"]:
            f["core bytes/insert -> " + p["peer"]] = p["bytes_per_insert"]
        for p in r.get("cluster_wire", []):
            f["TCP bytes/insert core -> " + p["peer"]] = p["per_insert"]
        status = r["cluster"]["status_loaded"]
        if status:
            f["upstream feeds"] = status["upstream_feeds"]
    f["server RSS max MiB"] = r["server"]["rss_max_kib"] / 1024
    if r["subscribers"]:
        f["connects/s"] = r["connect"]["per_second"]
        f["RSS/conn B"] = r["server"]["rss_per_connection_bytes"]
        f["close all s"] = r["close_all_seconds"]
    f["errors"] = r["errors"]["total"]
    return f


def main():
    out, scenario = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(out, scenario + "*-[0-9]*.json")))
    by_label = {}
    for path in files:
        label = re.sub(r"-\d+\.json$", "", os.path.basename(path))
        by_label.setdefault(label, []).append(json.load(open(path)))
    lines = []
    for label, runs in sorted(by_label.items()):
        per_run = [figures(r) for r in runs]
        keys = [k for k in per_run[0] if all(k in f for f in per_run)]
        lines.append(f"### {label} ({len(runs)} runs; median, then each run)\n")
        lines.append("| figure | median | runs |")
        lines.append("|---|---|---|")
        for k in keys:
            vals = [f[k] for f in per_run]
            med = statistics.median(vals)
            lines.append(f"| {k} | {med:.6g} | {', '.join(f'{v:.4g}' for v in vals)} |")
        extra = runs[-1]
        lines.append("")
        lines.append("close codes (last run): " + json.dumps(extra["close_codes"]) +
                     ", slow clients: " + json.dumps(extra["slow_close_codes"]) +
                     ", server metrics: " + json.dumps(extra["server_metrics"]) +
                     ", consistent: " + ", ".join(str(r["totals"]["consistent"]) for r in runs))
        lines.append("")
    # Runs with cluster nodes (S7): each step's median over the runs, every node's CPU.
    for label, runs in sorted(by_label.items()):
        if not any(r["steps"] and r["steps"][0].get("nodes") for r in runs):
            continue
        names = [n["name"] for n in runs[0]["steps"][0]["nodes"]]
        lines.append(f"### {label}: every step, median of {len(runs)} runs\n")
        lines.append("| offered/s | acked/s | deliveries/s | p50 ms | p99 ms | " +
                     " | ".join(f"{n} CPU us/delivery" for n in names) + " |")
        lines.append("|---" * (5 + len(names)) + "|")
        for i in range(min(len(r["steps"]) for r in runs)):
            steps = [r["steps"][i] for r in runs]
            med = lambda f: statistics.median(f(x) for x in steps)
            cells = [steps[0]["offered_rate"], med(lambda x: x["acked_per_s"]),
                     med(lambda x: x["deliveries_per_s"]), med(lambda x: x["latency_ms"]["p50"]),
                     med(lambda x: x["latency_ms"]["p99"])]
            cells += [med(lambda x, k=k: x["nodes"][k]["cpu_us_per_delivery"] or 0)
                      for k in range(len(names))]
            lines.append("| " + " | ".join(f"{c:.4g}" for c in cells) + " |")
        if "cluster" in runs[-1]:
            lines.append("")
            lines.append("/_cluster of the core after the load (last run): " +
                         json.dumps(runs[-1]["cluster"]["status_loaded"]))
        lines.append("")
    # Setup notes of the runs (S9: loader figures, index build time, explain output).
    for path in sorted(glob.glob(os.path.join(out, scenario + "-[0-9]*.setup"))):
        lines.append("### " + os.path.basename(path) + "\n")
        lines.append("```")
        lines.extend(open(path).read().splitlines())
        lines.append("```")
        lines.append("")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, scenario + "-summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
