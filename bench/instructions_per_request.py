#!/usr/bin/python3
"""Instructions per request, counted by callgrind: deterministic whatever the machine's load
(a before/after figure for CPU work when the machine is shared). A rheo server (embedded
store, --durability normal) runs under valgrind with instrumentation off; 2,000 chat-like
documents are posted; then for each path, after 50 warm-up requests, instrumentation is on
around N requests on one keep-alive connection and the count is dumped. Last, POST-watched:
N inserts into a collection with one WebSocket client on a stream, each frame received
before the next insert (the request, the commit and the event's way to the socket).

  bench/instructions_per_request.py <rheo binary> [N=1000]

Needs valgrind (Debian package valgrind; not installed by scripts/setup.sh). Kernel work
(syscalls) is not counted."""
import http.client, json, os, re, subprocess, sys, tempfile, time, glob
rheo = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
d = tempfile.mkdtemp(prefix="irs-")
acl = '[{"roles":["$unauthenticated"],"predicate":"path-prefix(\'/\')"}]'
out = open(os.path.join(d, "out"), "w+")
p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                      f"--callgrind-out-file={d}/cg.%p", rheo, "--port", "0", "--data-dir",
                      os.path.join(d, "db"), "--acl", acl, "--durability", "normal"],
                     stdout=out, stderr=subprocess.DEVNULL)
port = None
for _ in range(600):
    out.seek(0); m = re.search(r"listening on http://[^:]+:(\d+)", out.read())
    if m: port = int(m.group(1)); break
    time.sleep(0.1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def req(method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse(); data = r.read(); assert r.status < 300, (r.status, data[:200]); return data
docs = [{"t": i + 1, "from": "user%d" % (i % 50), "message": "hello, this is message %d" % i} for i in range(2000)]
req("POST", "/bench", json.dumps(docs))
paths = {"GET-S5": "/bench?filter=%7B%22t%22%3A%7B%22%24gt%22%3A0%7D%7D&pagesize=10",
         "GET-page10": "/bench?pagesize=10", "GET-page100": "/bench?pagesize=100", "ping": "/_ping"}
res = {}
for name, path in paths.items():
    for _ in range(50): req("GET", path)  # warm
    subprocess.run(["callgrind_control", "--zero", str(p.pid)], stdout=subprocess.DEVNULL)
    subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], stdout=subprocess.DEVNULL)
    for _ in range(n): req("GET", path)
    subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], stdout=subprocess.DEVNULL)
    subprocess.run(["callgrind_control", "--dump=" + name, str(p.pid)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
# An insert that one WebSocket client of a stream receives: the request, the commit and the
# event's whole way to the socket (the client reads each frame before the next insert).
import websocket
req("PUT", "/watched", json.dumps({"streams": [{"uri": "all", "stages": []}]}))
ws = websocket.create_connection("ws://127.0.0.1:%d/watched/_streams/all" % port, timeout=60)
def post_watched(i):
    req("POST", "/watched", json.dumps({"t": i, "from": "user%d" % (i % 50), "message": "hello %d" % i}))
    frame = json.loads(ws.recv()); assert frame["fullDocument"]["t"] == i, frame
for i in range(50): post_watched(i)  # warm
subprocess.run(["callgrind_control", "--zero", str(p.pid)], stdout=subprocess.DEVNULL)
subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], stdout=subprocess.DEVNULL)
for i in range(n): post_watched(1000 + i)
subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], stdout=subprocess.DEVNULL)
subprocess.run(["callgrind_control", "--dump=POST-watched", str(p.pid)], stdout=subprocess.DEVNULL)
time.sleep(0.5)
ws.close()
p.terminate(); p.wait()
for f in sorted(glob.glob(d + "/cg.*")):
    txt = open(f).read()
    desc = re.search(r"^desc: Trigger: dump (\S+)", txt, re.M)
    tot = re.search(r"^totals: (\d+)", txt, re.M)
    if desc and tot: res[desc.group(1)] = int(tot.group(1)) / n
for k, v in res.items(): print(f"{k}: {v/1000:.1f} k instructions/request")
print(json.dumps(res))
