#!/usr/bin/env bash
# Smoke run of the benchmark harness: starts rheo on a fresh data dir, runs rheo-bench with a
# few subscribers for two seconds, and checks that the results are well formed and the counts
# agree (every subscriber received every acknowledged insert); then a short live-query run
# whose clients' arrays must equal the queries' results; then a short presence churn (S12's
# mode) whose listeners' lists and GET .../_presence must equal the members open at the end;
# then, on a second server with a throwaway certificate, the first run over TLS (wss://
# subscribers and an https:// writer, the certificate verified) and a short GET load over
# https:// (S2tls and S5tls's modes). No timing thresholds.
# Usage: smoke_test.sh <rheo binary> <rheo-bench binary>
set -euo pipefail
rheo=$1
bench=$2
work=$(mktemp -d /tmp/rheo-bench-smoke.XXXXXX)
server_pid=
tls_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$tls_pid" ]; then kill -TERM "$tls_pid" 2>/dev/null || true; wait "$tls_pid" 2>/dev/null || true; fi
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

# Live queries (S11's mode): 20 clients on 4 per-sender queries and 4 that join during the
# load, a writer whose every fifth write deletes a message inside a window; every client's
# array must equal GET /messages with its query's parameters at the end.
"$bench" --port "$port" --coll messages --live-filter '{"from":"u<k>"}' --live-pagesize 5 \
  --live-queries 4 --chat-users 4 --delete-fraction 0.2 --subscribers 20 --live-joiners 4 \
  --threads 2 --http-conns 1 --rate 50 --step-seconds 2 --server-pid "$server_pid" \
  --label smoke-live --out "$work/live" >/dev/null

python3 - "$work/live" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + ".json"))
live = r["live"]
assert r["errors"]["total"] == 0, (r["errors"], live)
assert live["clients"] == 24 and live["joiners_opened"] == 4 and live["init_frames"] == 24, live
assert live["verified"] == 24 and live["mismatches"] == 0 and live["apply_errors"] == 0, live
assert live["deletes_sent"] > 0 and live["diff_frames"] > 0, live
assert live["joiner_init_latency_ms"]["count"] == 4, live
assert r["totals"]["consistent"] is True, r["totals"]
assert r["server_metrics"]["live_queries_connected"] == 4, r["server_metrics"]
print("smoke: live ok, %d clients verified, %d diff frames, %d deletes" %
      (live["verified"], live["diff_frames"], live["deletes_sent"]))
PY

# Presence (S12's mode): 40 members of the messages stream's presence, 8 of them listeners,
# a quarter of them leaving and rejoining every second for 3 s; every listener's list and GET
# .../_presence must equal the members open at the end, every change seen without error.
"$bench" --port "$port" --coll messages --stream all --presence-listeners 8 --subscribers 40 \
  --http-conns 0 --churn 0.25 --churn-seconds 1 --churn-first-seconds 0.5 --step-seconds 3 \
  --threads 2 --server-pid "$server_pid" --label smoke-presence --out "$work/presence" >/dev/null

python3 - "$work/presence" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + ".json"))
p = r["presence"]
assert r["errors"]["total"] == 0 and r["totals"]["consistent"] is True, (r["errors"], p)
assert p["listeners_full"] == 8 and p["ramp_seconds"] is not None, p
assert p["joins"] == p["leaves"] and p["leaves"] >= 10, p
assert p["timed"] > 0 and p["join_latency_ms"]["count"] > 0 and p["leave_latency_ms"]["count"] > 0, p
assert p["dup_joins"] == 0 and p["unknown_leaves"] == 0 and p["bad_frames"] == 0, p
assert p["stray_frames"] == 0, p
assert p["lists"] == {"checked": 8, "wrong": 0, "missing": 0, "stale": 0, "no_first_frame": 0,
                      "all_checked": True}, p["lists"]
g = p["get"]
assert g["status"] == 200 and g["entries"] == 40 and g["members"] == 40, g
assert g["missing"] == 0 and g["stale"] == 0 and g["twice"] == 0 and g["malformed"] == 0, g
print("smoke: presence ok, %d joins and %d leaves, %d seen by listeners, 8 lists and GET "
      "_presence right" % (p["joins"], p["leaves"], p["timed"]))
PY

# TLS (S2tls and S5tls's modes): a second server on a throwaway self-signed certificate; 20
# wss:// subscribers and an https:// writer (the certificate verified against itself), every
# subscriber must receive every acknowledged insert; then 2 https:// connections of GET load.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
"$rheo" --port 0 --data-dir "$work/tls-data" "${open_acl[@]}" --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" >"$work/tls.out" 2>"$work/tls.err" &
tls_pid=$!
tls_port=
for _ in $(seq 1 100); do
  tls_port=$(sed -n 's|^rheo listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/tls.out" | head -1)
  [ -n "$tls_port" ] && break
  sleep 0.1
done
[ -n "$tls_port" ] || { echo "smoke: TLS server did not start"; cat "$work/tls.out" "$work/tls.err"; exit 1; }

"$bench" --port "$tls_port" --tls-ca "$work/cert.pem" --coll smoke --setup --subscribers 20 \
  --threads 2 --http-conns 2 --rate 50 --steps 1 --step-seconds 1 --server-pid "$tls_pid" \
  --label smoke-tls --out "$work/tls" >/dev/null
"$bench" --port "$tls_port" --tls-ca "$work/cert.pem" --coll smoke --subscribers 0 \
  --threads 2 --http-conns 2 --pipeline 4 --http-method GET --rate 0 --step-seconds 1 \
  --server-pid "$tls_pid" --label smoke-tls-get --out "$work/tls-get" >/dev/null

python3 - "$work/tls" "$work/tls-get" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + ".json"))
t = r["totals"]
assert r["tls"] is True and r["connect"]["opened"] == 20, r["connect"]
assert r["errors"]["total"] == 0, r["errors"]
assert t["inserts_acked"] > 0 and t["deliveries"] == 20 * t["inserts_acked"], t
assert t["consistent"] is True and t["latency_ms"]["count"] == t["deliveries"], t
assert r["server_metrics"]["upstream_feeds_connected"] == 1, r["server_metrics"]
g = json.load(open(sys.argv[2] + ".json"))
assert g["tls"] is True and g["errors"]["total"] == 0, g["errors"]
assert g["totals"]["http_ok"] > 0 and g["steps"][0]["http_latency_ms"]["count"] > 0, g["totals"]
print("smoke: TLS ok, %d subscribers x %d inserts = %d deliveries over wss://, %d GETs over "
      "https://" % (20, t["inserts_acked"], t["deliveries"], g["totals"]["http_ok"]))
PY
