#!/usr/bin/env bash
# Smoke run of the benchmark harness: starts rheo on a fresh data dir, runs rheo-bench with a
# few subscribers for two seconds, and checks that the results are well formed and the counts
# agree (every subscriber received every acknowledged insert). No timing thresholds.
# Usage: smoke_test.sh <rheo binary> <rheo-bench binary>
set -euo pipefail
rheo=$1
bench=$2
work=$(mktemp -d /tmp/rheo-bench-smoke.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Servers with access control get an ACL open to everyone, as the other tests use.
open_acl=()
# grep without -q: under pipefail, grep -q exiting early fails --help with SIGPIPE.
if "$rheo" --help | grep -- '--acl' >/dev/null; then
  open_acl=(--acl '[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix('"'/'"')"}]')
fi
"$rheo" --port 0 --data-dir "$work/data" "${open_acl[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's|^rheo listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/server.out" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "smoke: server did not start"; cat "$work/server.out" "$work/server.err"; exit 1; }

"$bench" --port "$port" --coll smoke --setup --subscribers 20 --threads 2 --http-conns 2 \
  --rate 50 --steps 2 --step-seconds 1 --server-pid "$server_pid" --label smoke \
  --out "$work/result" >/dev/null

python3 - "$work/result" <<'PY'
import json, sys
prefix = sys.argv[1]
r = json.load(open(prefix + ".json"))
t = r["totals"]
assert r["connect"]["opened"] == 20, r["connect"]
assert r["errors"]["total"] == 0, r["errors"]
assert t["inserts_acked"] > 0, t
assert t["deliveries"] == 20 * t["inserts_acked"], (t["deliveries"], t["inserts_acked"])
assert t["expected_deliveries"] == t["deliveries"] and t["consistent"] is True, t
assert t["latency_ms"]["count"] == t["deliveries"], t["latency_ms"]
assert len(r["steps"]) == 2 and all(s["latency_ms"]["p50"] <= s["latency_ms"]["max"] for s in r["steps"])
assert r["server"]["rss_max_kib"] > 0
assert r["server_metrics"]["upstream_feeds_connected"] == 1, r["server_metrics"]
md = open(prefix + ".md").read().splitlines()
assert len(md) == 3 and md[2].startswith("| smoke |"), md
svg = open(prefix + ".svg").read()
assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
print("smoke: ok, %d subscribers x %d inserts = %d deliveries" % (20, t["inserts_acked"], t["deliveries"]))
PY
