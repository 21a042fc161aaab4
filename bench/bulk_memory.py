#!/usr/bin/env python3
"""Memory under bulk work (issue 23, point 6): a rheo server on a fresh data dir, then
CYCLES times a bulk POST of DOCS small documents followed by a bulk DELETE of them. After
each cycle it prints the server's RSS and anonymous memory, and at the end its peak (VmHWM)
and the body size, plus the server CPU per inserted document.

  bench/bulk_memory.py [--rheo build-bench/rheo] [--docs 200000] [--cycles 8]
                       [--idle-s 0] [--env NAME=VALUE ...] [--json]

--env adds to the server's environment (e.g. MALLOC_ARENA_MAX=1, or
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to compare allocators). --idle-s
waits that long after the last cycle and samples again (memory given back while idle).
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid):
    """Resets the process's VmHWM to its current RSS (Linux: clear_refs 5), so that a
    request's peak is not hidden under an earlier one (a password hash at startup touches
    64 MiB). Returns whether it could."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def request(port, method, path, body=None, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


def start(rheo, data_dir, env, args):
    out = open(os.path.join(data_dir, "server.out"), "w+")
    err = open(os.path.join(data_dir, "server.err"), "w")
    acl = '[{"roles":["$unauthenticated"],"predicate":"path-prefix(\'/\')"}]'
    p = subprocess.Popen([rheo, "--port", "0", "--data-dir", os.path.join(data_dir, "db"),
                          "--acl", acl] + args, stdout=out, stderr=err,
                         env={**os.environ, **env})
    deadline = time.time() + 20
    while time.time() < deadline:
        out.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", out.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("rheo did not start: " + open(err.name).read())


def body_of(docs, cycle):
    # ~18 bytes a document, as in the run: {"n":123456,"c":1}
    return ("[" + ",".join('{"n":%d,"c":%d}' % (i, cycle) for i in range(docs)) + "]").encode()


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--rheo", default=os.path.join(here, "..", "build-bench", "rheo"))
    ap.add_argument("--docs", type=int, default=200000)
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--idle-s", type=float, default=0)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--arg", action="append", default=[], help="extra server flag")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    a = ap.parse_args()
    env = dict(e.split("=", 1) for e in a.env)
    with tempfile.TemporaryDirectory(prefix="rheo-bulk-mem-") as d:
        p, port = start(a.rheo, d, env, ["--durability", "normal"] + a.arg)
        try:
            base = status_kib(p.pid, "VmRSS")
            peak_resettable = reset_peak(p.pid)
            rows = []
            cpu0 = cpu_seconds(p.pid)
            body_bytes = 0
            for cycle in range(a.cycles):
                body = body_of(a.docs, cycle)
                body_bytes = len(body)
                reset_peak(p.pid)
                before_post = status_kib(p.pid, "VmRSS")
                request(port, "POST", "/bulkmem", body)
                peak_after_post = status_kib(p.pid, "VmHWM")
                reset_peak(p.pid)
                before_delete = status_kib(p.pid, "VmRSS")
                request(port, "DELETE", "/bulkmem/*?filter=" + '{"c":%d}' % cycle)
                rows.append({"cycle": cycle + 1, "rss_kib": status_kib(p.pid, "VmRSS"),
                             "anon_kib": status_kib(p.pid, "RssAnon"),
                             "hwm_kib": peak_after_post,
                             "post_peak_growth_kib": peak_after_post - before_post,
                             "delete_peak_growth_kib": status_kib(p.pid, "VmHWM") - before_delete})
            cpu = cpu_seconds(p.pid) - cpu0
            idle = None
            if a.idle_s > 0:
                time.sleep(a.idle_s)
                idle = {"rss_kib": status_kib(p.pid, "VmRSS"),
                        "anon_kib": status_kib(p.pid, "RssAnon")}
            result = {"docs": a.docs, "cycles": a.cycles, "body_bytes": body_bytes,
                      "env": env, "start_rss_kib": base, "rows": rows, "idle": idle,
                      "peak_kib": max(r["hwm_kib"] for r in rows),
                      "peak_resettable": peak_resettable,
                      "post_peak_growth_kib": max(r["post_peak_growth_kib"] for r in rows),
                      "delete_peak_growth_kib": max(r["delete_peak_growth_kib"] for r in rows),
                      "cpu_us_per_doc": cpu * 1e6 / (a.docs * a.cycles)}
        finally:
            p.terminate()
            p.wait(timeout=30)
    if a.json:
        print(json.dumps(result))
        return
    print(f"# {a.docs} documents a bulk POST ({result['body_bytes']} bytes), then a bulk "
          f"DELETE; env {env or '-'}; start RSS {base // 1024} MiB")
    print("| cycle | RSS MiB | anon MiB | POST peak MiB | POST peak growth MiB | "
          "DELETE peak growth MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cycle']} | {r['rss_kib'] / 1024:.0f} | {r['anon_kib'] / 1024:.0f} | "
              f"{r['hwm_kib'] / 1024:.0f} | {r['post_peak_growth_kib'] / 1024:.1f} | "
              f"{r['delete_peak_growth_kib'] / 1024:.1f} |")
    if idle:
        print(f"| idle {a.idle_s:g} s | {idle['rss_kib'] / 1024:.0f} | "
              f"{idle['anon_kib'] / 1024:.0f} | |")
    if not peak_resettable:
        print("(VmHWM could not be reset: the peaks include the startup's)")
    print(f"peak {result['peak_kib'] / 1024:.0f} MiB; a bulk POST's peak growth "
          f"{result['post_peak_growth_kib'] / 1024:.1f} MiB = "
          f"{result['post_peak_growth_kib'] * 1024 / result['body_bytes']:.1f}x the body, "
          f"a bulk DELETE's {result['delete_peak_growth_kib'] / 1024:.1f} MiB = "
          f"{result['delete_peak_growth_kib'] * 1024 / result['body_bytes']:.1f}x; "
          f"server CPU {result['cpu_us_per_doc']:.2f} us per document inserted and deleted")


if __name__ == "__main__":
    sys.exit(main())
