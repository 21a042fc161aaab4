#!/usr/bin/env python3
"""Resuming clients far behind: what they cost the server, and how fast one catches up.

  replay_bench.py --rheo build/rheo [--events 100000] [--idle 198] [--queue-limit 262144]
                  [--runs 3] [--decay-now]

Starts a server on a fresh data dir (under $TMPDIR) with the given `ws_queue_limit_bytes`
and a change log long enough, writes --events documents of ~150 bytes to `deep` in bulk
POSTs of 1,000, and takes the resume token from before the first. Then:

1. Memory: --idle WebSocket clients resume from that token and do not read (4 KiB receive
   buffers); the server's anonymous RSS (RssAnon of /proc/PID/status) is sampled every 10 ms
   for 3 s from the first connect. Prints its peak and its level at the end above the level
   before the connects.
2. Rate: --runs times, one client resumes from the token on a fresh connection and reads
   all --events events as fast as it can; prints events per second.

--decay-now starts the server with MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0, so that
RSS shows what the server holds rather than what jemalloc keeps for a second after a free.
Prints one JSON line with every figure at the end.
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

ACL = '[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix(\'/\')"}]'


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0])
    return out


class server:
    def __init__(self, binary, queue_limit, retention, decay_now):
        self.dir = tempfile.mkdtemp(prefix="rheo-replay-")
        env = dict(os.environ)
        if decay_now:
            env["MALLOC_CONF"] = "dirty_decay_ms:0,muzzy_decay_ms:0"
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--bind", "127.0.0.1", "--data-dir", self.dir, "--acl", ACL,
             "--durability", "normal", "--ws-queue-limit-bytes", str(queue_limit),
             "--changelog-retention", str(retention)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.proc.stdout.readline()
        self.port = int(re.search(r":(\d+)", line).group(1))

    def http(self, method, path, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=body.encode() if body else None, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers, resp.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(port, target, receive_buffer=0):
    s = socket.socket()
    if receive_buffer:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {target} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)  # byte by byte: nothing of the frames after it is taken
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.decode(errors="replace"))
    return s


def read_events(s, count):
    """Reads `count` text frames; raises on a close frame or the end of the connection."""
    buf = bytearray()
    got = 0
    while got < count:
        data = s.recv(1 << 20)
        if not data:
            raise RuntimeError(f"connection ended after {got} events")
        buf += data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            length, off = buf[pos + 1] & 127, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, off = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, off = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < off + length:
                break
            opcode = buf[pos] & 15
            if opcode == 8:
                raise RuntimeError(f"closed after {got} events: {bytes(buf[pos + off:pos + off + length])!r}")
            if opcode == 1:
                got += 1
            pos += off + length
        del buf[:pos]
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rheo", required=True)
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--idle", type=int, default=198)
    ap.add_argument("--queue-limit", type=int, default=262144)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--decay-now", action="store_true")
    a = ap.parse_args()

    srv = server(a.rheo, a.queue_limit, 2 * a.events, a.decay_now)
    result = {"events": a.events, "idle": a.idle, "queue_limit": a.queue_limit,
              "decay_now": a.decay_now}
    try:
        srv.http("PUT", "/deep", '{"streams":[{"uri":"all","stages":[]}]}')
        _, headers, _ = srv.http("GET", "/deep")
        target = "/deep/_streams/all?resumeAfter=" + headers["Resume-Token"]
        pad = "x" * 100
        for first in range(0, a.events, 1000):
            docs = ",".join('{"n":%d,"pad":"%s"}' % (n, pad)
                            for n in range(first, min(first + 1000, a.events)))
            srv.http("POST", "/deep", "[" + docs + "]")
        # The store's pages are memory-mapped: one replay maps the log's, before any figure
        # (an unpaced server closes it with 1013 early: it then maps less).
        try:
            read_events(connect(srv.port, target), a.events)
        except (RuntimeError, OSError) as e:
            print("warm-up:", e)
        time.sleep(1.5)

        before = rss(srv.proc.pid)
        samples, done = [], threading.Event()

        def sample():
            while not done.is_set():
                samples.append(rss(srv.proc.pid)["RssAnon"])
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        idle = [connect(srv.port, target, 4096) for _ in range(a.idle)]
        time.sleep(3)
        done.set()
        sampler.join()
        result["idle_anon_peak_kib"] = max(samples) - before["RssAnon"]
        result["idle_anon_end_kib"] = samples[-1] - before["RssAnon"]
        print(f"{a.idle} idle clients resuming {a.events} events back: server anonymous memory "
              f"+{result['idle_anon_peak_kib']} KiB at the peak, +{result['idle_anon_end_kib']} KiB "
              f"after 3 s ({result['idle_anon_end_kib'] / a.idle:.1f} KiB per client)")

        rates = []
        for _ in range(a.runs):
            s = connect(srv.port, target)
            start = time.monotonic()
            read_events(s, a.events)
            rates.append(a.events / (time.monotonic() - start))
            s.close()
            print(f"one client catching up {a.events} events: {rates[-1]:,.0f} events/s")
        result["catch_up_events_per_s"] = [round(r) for r in rates]
        for s in idle:
            s.close()
    except (RuntimeError, OSError) as e:
        result["error"] = str(e)
        print("failed:", e)
    finally:
        srv.stop()
    result["load"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
