#!/usr/bin/env python3
"""Backup of a large store while writers write: backup time and the longest writer stall.

  backup_bench.py --rheo build/rheo [--docs 1000000] [--writers 4] [--settle 10]
                  [--data-dir DIR]

Starts a server on a fresh data dir (under $TMPDIR), loads --docs chat messages into
`messages` with bench/load_docs.py, then runs --writers writers, each POSTing single
documents to `w` on its own keep-alive connection and timing every answer. After --settle
seconds it runs `rheo backup --data-dir DIR --out FILE` (timed), keeps writing --settle
seconds more (the first WAL checkpoint after the backup falls there), and stops. With
--data-dir DIR the store is kept there (and loaded only when DIR holds none), for repeated
runs on one store. Prints the
backup's time and size and, per window (before, during, after the backup), the writes, their
p50/p99 and the longest, and one JSON line with the same figures.
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = "%x" % int(time.time() * 1000)  # ids unique across runs on one store


def start_server(rheo, data_dir):
    proc = subprocess.Popen([rheo, "--port", "0", "--data-dir", data_dir, "--acl",
                             '[{"roles":["$unauthenticated"],"predicate":"path-prefix(\'/\')"}]'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        sys.exit("the server did not start: " + line)
    port = int(line.split("listening on http://")[1].split()[0].rsplit(":", 1)[1])
    return proc, port


class writer(threading.Thread):
    def __init__(self, port, k, stop):
        super().__init__(daemon=True)
        self.port, self.k, self.stop = port, k, stop
        self.samples = []  # (start, seconds)
        self.failed = None

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        n = 0
        while not self.stop.is_set():
            body = '{"_id":"%s-w%d-%d","n":%d,"pad":"%s"}' % (RUN, self.k, n, n, "x" * 100)
            t0 = time.monotonic()
            conn.request("POST", "/w", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            self.samples.append((t0, time.monotonic() - t0))
            if r.status != 201:
                self.failed = "write answered %d" % r.status
                return
            n += 1


def window(samples, start, end):
    lat = sorted(s for t, s in samples if start <= t < end)
    if not lat:
        return {"writes": 0}
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return {"writes": len(lat), "p50_ms": round(pick(0.5), 2), "p99_ms": round(pick(0.99), 2),
            "max_ms": round(lat[-1] * 1000, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rheo", required=True)
    ap.add_argument("--docs", type=int, default=1000000)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--settle", type=float, default=10)
    ap.add_argument("--data-dir")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rheo-backup-bench.")
    data_dir = a.data_dir or os.path.join(work, "data")
    out = os.path.join(work, "store.backup")
    loaded = os.path.exists(os.path.join(data_dir, "rheo.db"))
    proc, port = start_server(a.rheo, data_dir)
    try:
        t0 = time.monotonic()
        if not loaded:
            subprocess.run([sys.executable, os.path.join(HERE, "load_docs.py"), "--port",
                            str(port), "--coll", "messages", "--count", str(a.docs), "--shape",
                            "chat", "--batch", "5000"], check=True, stdout=subprocess.DEVNULL)
        load_s = time.monotonic() - t0
        db_bytes = os.path.getsize(os.path.join(data_dir, "rheo.db"))
        stop = threading.Event()
        ws = [writer(port, k, stop) for k in range(a.writers)]
        for w in ws:
            w.start()
        time.sleep(a.settle)  # the baseline window
        b0 = time.monotonic()
        r = subprocess.run([a.rheo, "backup", "--data-dir", data_dir, "--out", out],
                           capture_output=True, text=True)
        b1 = time.monotonic()
        if r.returncode != 0:
            sys.exit("backup failed: " + r.stderr)
        wal_after = os.path.getsize(os.path.join(data_dir, "rheo.db-wal"))
        time.sleep(a.settle)
        stop.set()
        for w in ws:
            w.join()
        for w in ws:
            if w.failed:
                sys.exit(w.failed)
        samples = [s for w in ws for s in w.samples]
        first = min(t for t, _ in samples)
        res = {
            "documents": a.docs, "load_s": round(load_s, 1),
            "db_mib": round(db_bytes / 2**20, 1),
            "backup_s": round(b1 - b0, 2), "backup_mib": round(os.path.getsize(out) / 2**20, 1),
            "wal_mib_after_backup": round(wal_after / 2**20, 1), "writers": a.writers,
            "before": window(samples, first, b0), "during": window(samples, b0, b1),
            "after": window(samples, b1, b1 + a.settle + 60),
            "load_average": os.getloadavg()[0],
        }
        print("backup of %d documents (rheo.db %.0f MiB): %.2f s, %.0f MiB; WAL %.1f MiB after it"
              % (a.docs, res["db_mib"], res["backup_s"], res["backup_mib"],
                 res["wal_mib_after_backup"]))
        for name in ("before", "during", "after"):
            w = res[name]
            print("  writes %-6s the backup: %6d, p50 %s ms, p99 %s ms, longest %s ms"
                  % (name, w["writes"], w.get("p50_ms"), w.get("p99_ms"), w.get("max_ms")))
        print(json.dumps(res))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
