#!/usr/bin/env python3
"""Medians over the runs of one scenario: summarize.py RESULTS_DIR S1 -> RESULTS_DIR/S1-summary.md

S10 (aged store) also gets a table of aged against fresh: the medians in S10-summary.md, and
one run's with summarize.py --s10-run RESULTS_DIR RUN -> RESULTS_DIR/S10-RUN.compare.md."""
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
    # S11: live queries. A delivery is a diff frame; the init latencies (connect -> init frame)
    # of the clients connected at the start and of those that joined during the load; every
    # client's array checked against GET with the query's parameters at the end.
    live = r.get("live")
    if live:
        f["ops/frame"] = live["ops_per_frame"]
        for key, name in (("init_latency_ms", "init"), ("joiner_init_latency_ms", "joiner init")):
            if live[key]["count"]:
                f[name + " p50 ms"] = live[key]["p50"]
                f[name + " p99 ms"] = live[key]["p99"]
        if live["delete_latency_ms"]["count"]:
            f["delete p50 ms"] = live["delete_latency_ms"]["p50"]
            f["delete p99 ms"] = live["delete_latency_ms"]["p99"]
        f["clients verified"] = live["verified"]
        f["mismatches"] = live["mismatches"]
    # S12: presence churn. Time until a join (from the member's handshake) or a leave (from its
    # close) shows in a listener's frame, over all listeners and changes of the load; the
    # ramp-up (every listener has seen every member) apart; the server's CPU over the load.
    p = r.get("presence")
    if p:
        f["handshakes s (all members)"] = p["handshakes_seconds"]
        if p["ramp_seconds"] is not None:
            f["ramp-up s (all listeners saw all members)"] = p["ramp_seconds"]
        for key, name in (("latency_ms", "join/leave"), ("join_latency_ms", "join"),
                          ("leave_latency_ms", "leave")):
            if p[key]["count"]:
                f[name + " p50 ms"] = p[key]["p50"]
                f[name + " p99 ms"] = p[key]["p99"]
        if p["latency_ms"]["count"]:
            f["join/leave max ms"] = p["latency_ms"]["max"]
            f["join/leave > 500 ms %"] = 100.0 * p["late_over_500ms"] / p["latency_ms"]["count"]
        f["changes timed"] = p["timed"]
        rl = p.get("rejoined_listener_latency_ms")
        if rl and rl["count"]:
            # Changes that happened while the listener itself was away (it left and came back
            # in the same wave): in the frame after its first.
            f["rejoined listeners p50 ms"] = rl["p50"]
            f["rejoined listeners p99 ms"] = rl["p99"]
        waves = [w for w in p.get("waves", []) if len(w) >= 4 and w[2] >= 0]
        if waves:
            # When the wave's frame reached the first listener and the last one (connected
            # before the wave), ms after the wave started: the server's send, and its spread.
            f["wave frame first ms (median)"] = statistics.median(w[2] for w in waves)
            f["wave frame first ms (max)"] = max(w[2] for w in waves)
            f["wave frame last ms (max)"] = max(w[3] for w in waves)
        f["server CPU % (load)"] = p["server_cpu_percent"]
        if p["server_cpu_us_per_change"] is not None:
            f["server CPU us/change"] = p["server_cpu_us_per_change"]
        f["lists wrong"] = p["lists"]["wrong"]
        f["GET _presence missing + stale"] = p["get"]["missing"] + p["get"]["stale"]
    elif r.get("churn") and r["churn"].get("closed") and r["steps"]:
        # S12-base: the same churn without presence: CPU over the load per join or leave.
        cpu = sum(x["server_cpu_seconds"] for x in r["steps"])
        secs = sum(x["seconds"] for x in r["steps"])
        f["server CPU % (load)"] = 100.0 * cpu / secs if secs else 0
        f["server CPU us/change"] = cpu * 1e6 / (r["churn"]["closed"] + r["churn"]["reopened"])
    f["server RSS max MiB"] = r["server"]["rss_max_kib"] / 1024
    if r["subscribers"]:
        f["connects/s"] = r["connect"]["per_second"]
        f["RSS/conn B"] = r["server"]["rss_per_connection_bytes"]
        if "bench" in r:  # the load generator's own memory per connection
            f["bench RSS/conn B"] = r["bench"]["rss_per_connection_bytes"]
        f["close all s"] = r["close_all_seconds"]
    f["errors"] = r["errors"]["total"]
    return f


# S10: the figures compared, aged store against fresh: (figure, file label after
# "S10-<store>-" or None for the setup log's, key, target, True when higher is better).
S10_ROWS = [
    ("start to listening ms", None, "start", "<= 2000", False),
    ("restart to listening ms (after the load)", None, "restart", "<= 2000", False),
    ("S5 GET req/s", "GET", "throughput/s", "within 10 % of fresh", True),
    ("S5 GET p50 ms", "GET", "p50 ms", "within 10 % of fresh", False),
    ("S5 GET p99 ms", "GET", "p99 ms", "within 10 % of fresh", False),
    ("S5 GET server CPU us/request", "GET", "server CPU us/request", "within 10 % of fresh", False),
    ("GET /_ping req/s", "ping", "throughput/s", "", True),
    ("S5 GET / _ping %", None, "get/ping", ">= 50 %", True),
    ("S2 deliveries/s (200 inserts/s offered)", "S2", "throughput/s", "within 10 % of fresh", True),
    ("S2 p50 ms", "S2", "p50 ms", "within 10 % of fresh", False),
    ("S2 p99 ms", "S2", "p99 ms", "within 10 % of fresh", False),
    ("S2 server CPU us/delivery", "S2", "server CPU us/delivery", "within 10 % of fresh", False),
    ("S2 at 20/s p50 ms", "S2-20", "p50 ms", "within 10 % of fresh", False),
    ("S2 at 20/s p99 ms", "S2-20", "p99 ms", "within 10 % of fresh", False),
    ("S2 at 20/s server CPU us/delivery", "S2-20", "server CPU us/delivery",
     "within 10 % of fresh", False),
    ("errors (all steps)", None, "errors", "0", False),
]


def s10_run(out, run):
    """{store: {key: value}} of one S10 run, from its JSON files and setup log."""
    notes = []
    setup = os.path.join(out, "S10-%s.setup" % run)
    if os.path.exists(setup):
        for line in open(setup):
            try:
                notes.append(json.loads(line))
            except ValueError:
                pass
    res = {}
    for store in ("aged", "fresh"):
        v = {"errors": 0}
        for label in sorted({r[1] for r in S10_ROWS if r[1]}):
            path = os.path.join(out, "S10-%s-%s-%s.json" % (store, label, run))
            if not os.path.exists(path):
                continue
            f = figures(json.load(open(path)))
            v["errors"] += f["errors"]
            for _, lab, key, _, _ in S10_ROWS:
                if lab == label and key in f:
                    v[(lab, key)] = f[key]
        if ("GET", "throughput/s") in v and v.get(("ping", "throughput/s")):
            v["get/ping"] = 100.0 * v[("GET", "throughput/s")] / v[("ping", "throughput/s")]
        for n in notes:
            if n.get("store") == store and n.get("event") in ("start", "restart"):
                v[n["event"]] = n["listening_ms"]
        res[store] = v
    return res


def s10_value(v, row):
    _, lab, key, _, _ = row
    return v.get((lab, key) if lab else key)


def s10_table(runs):
    """Markdown rows: each figure's median over the runs (aged, fresh, aged/fresh), then the
    runs' values."""
    lines = ["| figure | aged | fresh | aged / fresh | target | aged, each run | fresh, each run |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda x: "-" if x is None else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    for row in S10_ROWS:
        cells = {}
        for store in ("aged", "fresh"):
            vals = [s10_value(r[store], row) for r in runs]
            have = [x for x in vals if x is not None]
            cells[store] = (statistics.median(have) if have else None, vals)
        a, f = cells["aged"][0], cells["fresh"][0]
        ratio = f"{100.0 * a / f:.0f} %" if a is not None and f else "-"
        lines.append(f"| {row[0]} | {fmt(a)} | {fmt(f)} | {ratio} | {row[3]} | " +
                     ", ".join(fmt(x) for x in cells["aged"][1]) + " | " +
                     ", ".join(fmt(x) for x in cells["fresh"][1]) + " |")
    return lines


def s10_runs(out):
    runs = sorted({m.group(1) for p in glob.glob(os.path.join(out, "S10-*-[0-9]*.json"))
                   for m in [re.search(r"-(\d+)\.json$", p)] if m}, key=int)
    return [s10_run(out, r) for r in runs], runs


def get_ping(by_label):
    """REST against the transport: every label ending in -ping with its -GET beside it (S5,
    S10): GET req/s over _ping req/s, per run and the median."""
    lines = []
    for label, pings in sorted(by_label.items()):
        if not label.endswith("-ping") or label[:-5] + "-GET" not in by_label:
            continue
        gets = by_label[label[:-5] + "-GET"]
        ratios = [100.0 * figures(g)["throughput/s"] / figures(p)["throughput/s"]
                  for g, p in zip(gets, pings) if figures(p).get("throughput/s")]
        if ratios:
            lines.append(f"REST against the transport, {label[:-5]}-GET / {label}: median "
                         f"{statistics.median(ratios):.1f} % (runs: " +
                         ", ".join(f"{x:.1f} %" for x in ratios) + "; target >= 50 %)\n")
    return lines


def live_vs_s2(by_label):
    """S11 (a): the server's CPU per frame of the live query against S2's per delivery, run by
    run (both in the same run of run.sh, same server binary)."""
    if "S11-a" not in by_label or "S11-S2" not in by_label:
        return []
    ratios = []
    for a, s2 in zip(by_label["S11-a"], by_label["S11-S2"]):
        fa, fs = figures(a), figures(s2)
        if fa.get("server CPU us/delivery") and fs.get("server CPU us/delivery"):
            ratios.append((fa["server CPU us/delivery"], fs["server CPU us/delivery"]))
    if not ratios:
        return []
    return ["S11 (a) server CPU per frame / S2's per delivery: median %.2f (runs: %s; target "
            "<= 1.2)\n" % (statistics.median(a / s for a, s in ratios),
                           ", ".join("%.2f / %.2f us = %.2f" % (a, s, a / s) for a, s in ratios))]


def presence_vs_base(by_label):
    """S12: the server CPU of presence, the run with presence less the same churn without it
    (S12-base, same run of run.sh), as % of one core and per join or leave."""
    if "S12" not in by_label or "S12-base" not in by_label:
        return []
    pairs = []
    for a, b in zip(by_label["S12"], by_label["S12-base"]):
        fa, fb = figures(a), figures(b)
        pairs.append((fa["server CPU % (load)"], fb["server CPU % (load)"],
                      fa.get("server CPU us/change", 0), fb.get("server CPU us/change", 0)))
    if not pairs:
        return []
    med = lambda xs: statistics.median(xs)
    return ["S12 server CPU over the load, with presence / without (S12-base) / the difference: "
            "median %.1f %% / %.1f %% / %.1f %% of one core (target for presence <= 10 %%); "
            "per join or leave %.0f / %.0f / %.0f us (runs: %s)\n" % (
                med([p[0] for p in pairs]), med([p[1] for p in pairs]),
                med([p[0] - p[1] for p in pairs]), med([p[2] for p in pairs]),
                med([p[3] for p in pairs]), med([p[2] - p[3] for p in pairs]),
                "; ".join("%.1f - %.1f %%" % (p[0], p[1]) for p in pairs))]


TLS_FIGURES = ("throughput/s", "writes/s", "p50 ms", "p90 ms", "p99 ms", "p999 ms", "max ms",
               "server CPU %", "server CPU us/delivery", "server CPU us/request", "bench CPU %",
               "server RSS max MiB", "RSS/conn B", "bench RSS/conn B", "connects/s", "errors")


def tls_vs_plain(by_label):
    """Issue 29 (S2tls, S5tls): every label with "-tls" beside its "-plain" twin, run in the same
    run of run.sh with the same server binary: each figure's median over the runs, plain and
    TLS, TLS / plain, and each run's pair."""
    lines = []
    for label, tls_runs in sorted(by_label.items()):
        if "-tls" not in label or label.replace("-tls", "-plain", 1) not in by_label:
            continue
        plain = label.replace("-tls", "-plain", 1)
        pf = [figures(r) for r in by_label[plain]]
        tf = [figures(r) for r in tls_runs]
        lines.append(f"### {label} against {plain} ({len(tf)} / {len(pf)} runs; median)\n")
        lines.append("| figure | plain | TLS | TLS / plain | runs (plain / TLS) |")
        lines.append("|---|---|---|---|---|")
        for k in TLS_FIGURES:
            if not all(k in f for f in pf + tf):
                continue
            a = statistics.median(f[k] for f in pf)
            b = statistics.median(f[k] for f in tf)
            ratio = f"{b / a:.2f}" if a else "-"
            runs = "; ".join(f"{x[k]:.4g} / {y[k]:.4g}" for x, y in zip(pf, tf))
            lines.append(f"| {k} | {a:.4g} | {b:.4g} | {ratio} | {runs} |")
        lines.append("")
    return lines


def main():
    if sys.argv[1] == "--s10-run":
        out, run = sys.argv[2], sys.argv[3]
        text = "\n".join([f"### S10 run {run}: aged store against fresh\n"] +
                         s10_table([s10_run(out, run)])) + "\n"
        with open(os.path.join(out, "S10-%s.compare.md" % run), "w") as f:
            f.write(text)
        print(text)
        return
    out, scenario = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(out, scenario + "*-[0-9]*.json")))
    by_label = {}
    for path in files:
        label = re.sub(r"-\d+\.json$", "", os.path.basename(path))
        # S1's files are not S10's (S5's do include S5B's).
        if label[len(scenario):][:1].isdigit():
            continue
        by_label.setdefault(label, []).append(json.load(open(path)))
    lines = []
    if scenario == "S10":
        runs, names = s10_runs(out)
        if runs:
            lines.append(f"### S10: aged store against fresh ({len(runs)} runs: " +
                         ", ".join(names) + "; median, then each run)\n")
            lines.extend(s10_table(runs))
            lines.append("")
            lines.append("(the aged store's setup: `S10-<run>.setup`, at the end)\n")
    lines.extend(get_ping(by_label))
    lines.extend(live_vs_s2(by_label))
    lines.extend(presence_vs_base(by_label))
    lines.extend(tls_vs_plain(by_label))
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
