#!/usr/bin/env python3
"""The table and verdict of one soak run (S8): soak.py PREFIX [WARMUP_S]

Reads PREFIX.progress (rheo-bench --progress: one line when the load starts and one after
every churn wave), PREFIX.samples (run.sh: the server's RSS, open fds and gauges sampled
after each of those lines) and PREFIX.json (rheo-bench's result), and writes PREFIX.soak
(JSON) and PREFIX.soak.md (the table and the verdict), and prints the markdown.

The verdict, "flat" when every criterion holds:
- rss: after the warm-up (samples taken at t >= WARMUP_S; default 300 s), server RSS
  max - min <= RSS_TOL_PCT (default 10) % of the min.
- fds: after the warm-up, open fds max - min <= 10 + 1 % of the clients. A wave closes and
  reopens 10 % of them, so a leak of one fd per ten reconnects passes this within two waves.
- gauges: at every sample rheo_sessions_open equals the clients open, rheo_subscriptions
  and rheo_upstream_feeds are 1 (the clients' sessions share one subscription: same stream,
  same variables; run.sh waits up to GAUGE_WAIT_S for them to get there after a wave).
- errors: none (failed connects or reconnects, HTTP errors, closes by the server, events
  missing from a client's sequence or seen twice, clients silent while 100 inserts were
  acknowledged, clients that missed the last insert), every wave completed, rheo-bench's
  exit status 0.
Reported beside the verdict, not part of it: whether the rate held (no insert skipped
because the writer's pipeline was full, acknowledged inserts/s within 2 % of the offered
rate in every interval).
"""
import json
import os
import sys


def kv(line):
    return {k: float(v) for k, v in (f.split("=", 1) for f in line.split())}


def main():
    prefix = sys.argv[1]
    warmup = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    rss_tol = float(os.environ.get("RSS_TOL_PCT", "10"))
    progress = {int(p["wave"]): p for p in map(kv, open(prefix + ".progress").read().splitlines())}
    samples = [kv(line) for line in open(prefix + ".samples").read().splitlines()]
    result = json.load(open(prefix + ".json")) if os.path.exists(prefix + ".json") else None
    bench_status = int(open(prefix + ".status").read()) if os.path.exists(prefix + ".status") else -1
    offered = result["steps"][0]["offered_rate"] if result and result["steps"] else None
    clients = result["subscribers"] if result else 0

    rows = []
    prev = None
    for s in samples:
        p = progress[int(s["wave"])]
        row = dict(s)
        row.update({k: p[k] for k in ("t", "live", "complete", "wave_ms", "deliveries", "acked",
                                       "missed", "errors", "p50_ms", "p99_ms")})
        if prev is not None and p["t"] > prev["t"]:
            dt = p["t"] - prev["t"]
            row["deliveries_per_s"] = (p["deliveries"] - prev["deliveries"]) / dt
            row["acked_per_s"] = (p["acked"] - prev["acked"]) / dt
        rows.append(row)
        prev = p

    after = [r for r in rows if r["t"] >= warmup] or rows[-1:]
    rss = [r["rss_kib"] for r in after]
    fds = [r["fds"] for r in after]
    fd_margin = 10 + clients // 100
    checks = {
        "rss": max(rss) - min(rss) <= rss_tol / 100 * min(rss),
        "fds": max(fds) - min(fds) <= fd_margin,
        "gauges": all(r["sessions"] == r["live"] and r["subscriptions"] == 1 and r["feeds"] == 1
                      for r in rows),
        "errors": (result is not None and result["errors"]["total"] == 0 and bench_status == 0 and
                   all(r["complete"] == 1 and r["errors"] == 0 for r in rows)),
    }
    held = (result is not None and result["errors"]["http_missed"] == 0 and
            all(abs(r["acked_per_s"] - offered) <= 0.02 * offered for r in rows if "acked_per_s" in r))
    verdict = {
        "flat": all(checks.values()),
        "checks": checks,
        "rate_held": held,
        "warmup_s": warmup,
        "samples_after_warmup": len(after),
        "rss_after_warmup_kib": {"min": min(rss), "max": max(rss),
                                 "spread_pct": 100 * (max(rss) - min(rss)) / min(rss)},
        "fds_after_warmup": {"min": min(fds), "max": max(fds), "margin": fd_margin},
        "clients": clients,
        "offered_rate": offered,
        "errors": result["errors"] if result else None,
        "churn": result.get("churn") if result else None,
        "bench_status": bench_status,
    }
    with open(prefix + ".soak", "w") as f:
        json.dump({"verdict": verdict, "rows": rows}, f, indent=1)

    lines = ["| min | t s | clients open | sessions | subscriptions | feeds | gauges settled ms | "
             "RSS MiB | fds | deliveries/s | inserts/s | p50 ms | p99 ms | errors | load 1 min |",
             "|---" * 15 + "|"]
    for r in rows:
        rate = lambda k: f"{r[k]:,.0f}" if k in r else "-"
        lines.append(
            f"| {r['t'] / 60:.0f} | {r['t']:.0f} | {r['live']:.0f} | {r['sessions']:.0f} | "
            f"{r['subscriptions']:.0f} | {r['feeds']:.0f} | {r['gauge_wait_ms']:.0f} | {r['rss_kib'] / 1024:.1f} | "
            f"{r['fds']:.0f} | {rate('deliveries_per_s')} | {rate('acked_per_s')} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']:.0f} | {r['load1']:.2f} |")
    v = verdict
    lines.append("")
    lines.append(
        f"Verdict: **{'flat' if v['flat'] else 'NOT flat'}** "
        f"({', '.join(k + (' ok' if ok else ' FAILED') for k, ok in checks.items())}). "
        f"After the warm-up ({warmup:.0f} s, {len(after)} samples): RSS "
        f"{min(rss) / 1024:.1f}-{max(rss) / 1024:.1f} MiB (spread "
        f"{v['rss_after_warmup_kib']['spread_pct']:.1f} %, bound {rss_tol:.0f} %), fds "
        f"{min(fds):.0f}-{max(fds):.0f} (bound: spread <= {fd_margin}). Rate held: "
        f"{'yes' if held else 'no'}. Errors: {json.dumps(v['errors'])}. Churn: "
        f"{json.dumps(v['churn'])}.")
    text = "\n".join(lines) + "\n"
    with open(prefix + ".soak.md", "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
