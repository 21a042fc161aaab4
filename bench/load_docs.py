#!/usr/bin/env python3
"""Bulk loader for S9 and S10: POSTs JSON arrays of generated documents to rheo.

  load_docs.py --port P --coll messages --count 1000000 --shape chat [--batch 2000] [--conns 2]

Shapes:
  chat  {"user":"u<i % users>","timestamp":{"$date":<ms>},"message":"<~100 bytes>"}, the
        timestamps one second apart in insertion order (the newest document is the last);
        --user-field from names the sender "from", as the chat app does (S10);
  s5    {"t":<ns>,"pad":"x" * 60}, the documents S5's POST writes (rheo-bench --doc-bytes 100).
Documents are numbered from --first (default 0), so a second load continues the first one's
senders and timestamps. With --colls N (S10's small collections), PUT /<coll><k> creates
the collections <coll>0 .. <coll>N-1 first and each gets count / N of the documents, one
array per collection.
Each request is one array of --batch documents, which the server inserts in one transaction;
--conns connections send batches concurrently, so that the server parses one batch while the
writer commits another. Prints one JSON line: documents, seconds, documents/s.
"""
import argparse
import http.client
import json
import sys
import threading
import time

WORDS = ("hello there how is everyone doing today the meeting moved to three pm see the notes "
         "in the shared folder and bring coffee").split()


def chat_batch(first, n, users, base_ms, user_field):
    parts = []
    for i in range(first, first + n):
        # ~100 bytes of text that differs from one message to the next.
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(18)]
        text = ("#%d " % i + " ".join(words))[:100]
        parts.append('{"%s":"u%d","timestamp":{"$date":%d},"message":"%s"}' %
                     (user_field, i % users, base_ms + i * 1000, text))
    return "[" + ",".join(parts) + "]"


def s5_batch(first, n, base_ns):
    pad = "x" * 60
    return "[" + ",".join('{"t":%d,"pad":"%s"}' % (base_ns + i, pad)
                          for i in range(first, first + n)) + "]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--coll", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--shape", choices=("chat", "s5"), required=True)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--user-field", default="user")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--colls", type=int, default=0)
    a = ap.parse_args()

    base_ms = 1_700_000_000_000  # 2023-11-14
    base_ns = time.time_ns()
    end = a.first + a.count
    if a.colls > 0:
        # One array per collection: count / colls documents each (the first ones get the rest).
        per, extra = divmod(a.count, a.colls)
        batches, f = [], a.first
        for k in range(a.colls):
            n = per + (1 if k < extra else 0)
            batches.append(("%s%d" % (a.coll, k), f, n))
            f += n
    else:
        batches = [(a.coll, f, min(a.batch, end - f)) for f in range(a.first, end, a.batch)]
    lock = threading.Lock()
    state = {"next": 0, "inserted": 0, "error": None}

    def worker():
        conn = http.client.HTTPConnection(a.host, a.port, timeout=300)
        while True:
            with lock:
                if state["error"] or state["next"] >= len(batches):
                    break
                coll, first, n = batches[state["next"]]
                state["next"] += 1
            if a.colls > 0:
                conn.request("PUT", "/" + coll, "{}", {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status not in (200, 201):
                    with lock:
                        state["error"] = "PUT /%s: HTTP %d: %s" % (
                            coll, resp.status, data[:200].decode(errors="replace"))
                    break
                if n == 0:
                    continue
            body = (chat_batch(first, n, a.users, base_ms, a.user_field) if a.shape == "chat"
                    else s5_batch(first, n, base_ns)).encode()
            conn.request("POST", "/" + coll, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            with lock:
                if resp.status != 200:
                    text = data[:200].decode(errors="replace")
                    state["error"] = "HTTP %d: %s" % (resp.status, text)
                    break
                state["inserted"] += json.loads(data)["inserted"]
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(max(1, a.conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    if state["error"]:
        print("load_docs.py: " + state["error"], file=sys.stderr)
        return 1
    line = {"coll": a.coll, "shape": a.shape, "documents": state["inserted"],
            "seconds": round(secs, 2), "per_second": round(state["inserted"] / secs)}
    if a.colls > 0:
        line["collections"] = a.colls
    print(json.dumps(line))
    return 0 if state["inserted"] == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
