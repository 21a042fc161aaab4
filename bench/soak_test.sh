#!/usr/bin/env bash
# A short soak (S8) against a real server: 200 clients, 20 inserts/s, 60 s with a churn wave
# every 15 s (20 clients close and reconnect each time), a sample after every wave. Asserts
# the verdict's checks that do not depend on time: the gauges back to the live counts at
# every sample (sessions = clients open, one subscription, one feed), open fds not growing
# beyond the margin (10 + 1 % of the clients), no error (every reconnect succeeded, no event
# missing or seen twice, no client silent or behind, no HTTP error, no close by the server),
# every wave done. RSS is reported, not asserted (too short a run, and sanitizer builds).
# Usage: soak_test.sh <rheo binary> <rheo-bench binary>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/rheo-soak-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
RHEO=$1 BENCH=$2 OUT=$out RUNS=1 THREADS=2 DURATION_S=60 SAMPLE_S=15 WARMUP_S=0 \
  S8_SUBS=200 S8_RATE=20 "$here/run.sh" S8 >"$out/run.log" 2>&1 || {
  cat "$out/run.log"
  exit 1
}
python3 - "$out/S8-1" <<'PY'
import json, sys
prefix = sys.argv[1]
soak = json.load(open(prefix + ".soak"))
v, rows = soak["verdict"], soak["rows"]
print(open(prefix + ".soak.md").read())
assert len(rows) == 5, rows  # the start and 4 waves
assert [r["wave"] for r in rows] == [0, 1, 2, 3, 4], rows
assert v["checks"]["gauges"], rows
assert all(r["live"] == 200 and r["sessions"] == 200 for r in rows), rows
assert v["checks"]["fds"], v["fds_after_warmup"]
assert v["checks"]["errors"], v["errors"]
assert v["bench_status"] == 0
c = v["churn"]
assert c["waves"] == 4 and c["closed"] == 80 and c["reopened"] == 80 and c["failed"] == 0, c
assert c["live_at_end"] == 200, c
r = json.load(open(prefix + ".json"))
assert r["totals"]["inserts_acked"] > 0 and r["totals"]["deliveries"] > 0, r["totals"]
print("soak: ok, 4 waves of 20 reconnects, gauges back to 200 sessions each time, "
      "fds %d-%d, no error" % (v["fds_after_warmup"]["min"], v["fds_after_warmup"]["max"]))
PY
