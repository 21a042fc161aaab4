#!/usr/bin/env bash
# Runs the scenarios of ../shared/bench.md (scaled to this machine, see bench/README.md):
#   bench/run.sh S1 [S2 ... S12 S5B]
# Each run starts rheo on a fresh temporary data dir, runs rheo-bench, stops the server (S10:
# also on a copy of an aged store, built once and kept, see S10 below).
# Environment: RUNS (runs per scenario, default 3), RHEO (server binary), BENCH (rheo-bench),
# OUT (results directory, default bench/results), THREADS (rheo-bench worker threads),
# RHEO_ARGS (extra server flags, e.g. "--actor-scheduler stealing"), TMPDIR (where the data
# dirs go, default /tmp). S8 (soak): DURATION_S (default 1800), SAMPLE_S (churn wave and sample
# interval, 60), WARMUP_S (300), S8_SUBS (1000), S8_RATE (inserts/s, 50), S8_CHURN (0.1),
# GAUGE_WAIT_S (10), RSS_TOL_PCT (10); see S8 below and bench/soak.py. S10 (aged store):
# S10_MESSAGES (1000000), S10_COLLECTIONS (1000), S10_COLL_DOCS (5), S10_CHANGES (100000),
# S10_BENCH_DOCS (1000), S10_STORE (where the aged store is kept, default
# ~/.cache/rheo-bench/s10-aged-<the sizes>), S10_REBUILD (set: build it again), S10_GET_S (10),
# S10_S2_S (20), S10_START_WAIT_S (120); see S10 below. S11 (live queries): S11_A_SUBS (10000),
# S11_B_QUERIES (1000), S11_B_CLIENTS (clients per query, 10), S11_S2_SUBS (1000), S11_RATE
# (writes/s, 200), S11_SECONDS (20), S11_JOINERS (100); see S11 below. S12 (presence churn):
# S12_SUBS (5000), S12_LISTENERS (500), S12_CHURN (0.1), S12_EVERY_S (10), S12_SECONDS (60),
# S12_BASE (set to 0: no reference run without presence), S12_ARGS (extra rheo-bench flags for
# the presence run, e.g. --churn-skip-listeners); see S12 below. S2tls, S5tls (issue 29): S2
# and S5 in plain text and over TLS (wss://, https://) in each run, same binary and parameters,
# the server on a throwaway self-signed certificate made with openssl in $OUT/tls; see below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RHEO=${RHEO:-$here/../build-bench/rheo}
BENCH=${BENCH:-$here/../build-bench/bench/rheo-bench}
OUT=${OUT:-$here/results}
RUNS=${RUNS:-3}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"

# Servers with access control get an ACL open to everyone: the benchmarks measure data paths.
open_acl=()
# grep without -q: under pipefail, grep -q exiting early fails --help with SIGPIPE.
if "$RHEO" --help | grep -- '--acl' >/dev/null; then
  open_acl=(--acl '[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix('"'/'"')"}]')
fi
server_pid=
datadir=
# TLS (S2tls, S5tls): while set, start_server gives the server server_tls (its certificate and
# key) and bench gives rheo-bench bench_tls (--tls-ca: the certificate is verified).
server_tls=()
bench_tls=()
tls_on() {
  local dir=$OUT/tls
  if [ ! -f "$dir/cert.pem" ]; then
    mkdir -p "$dir"
    # A throwaway self-signed certificate for 127.0.0.1 (ECDSA P-256, the common choice).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  fi
  server_tls=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
  bench_tls=(--tls-ca "$dir/cert.pem")
}
tls_off() {
  server_tls=()
  bench_tls=()
}
start_server() {
  datadir=$(mktemp -d "${TMPDIR:-/tmp}/rheo-bench-data.XXXXXX")
  : >"$datadir/server.out" # the first poll below may come before the server's redirection
  # shellcheck disable=SC2086 # RHEO_ARGS: extra server flags, split on spaces
  "$RHEO" --port 0 --data-dir "$datadir/db" "${open_acl[@]}" "${server_tls[@]}" "$@" ${RHEO_ARGS:-} \
    >"$datadir/server.out" 2>"$datadir/server.err" &
  server_pid=$!
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's|^rheo listening on https\{0,1\}://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$datadir/server.out" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "run.sh: server did not start" >&2
  cat "$datadir/server.out" "$datadir/server.err" >&2
  exit 1
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  rm -rf "$datadir"
}
# A cluster (S7): start_node NAME ARGS... starts one rheo node on a fresh data dir under
# $cluster_dir and sets node_pid[NAME] and node_port[NAME] (its HTTP port).
declare -A node_pid node_port
cluster_dir=
cport=
start_node() {
  local name=$1 out
  shift
  out=$cluster_dir/$name
  mkdir -p "$out"
  # shellcheck disable=SC2086 # RHEO_ARGS: extra server flags, split on spaces
  "$RHEO" --port 0 --data-dir "$out/db" --node-name "$name" "${open_acl[@]}" "$@" ${RHEO_ARGS:-} \
    >"$out/server.out" 2>"$out/server.err" &
  node_pid[$name]=$!
  for _ in $(seq 1 100); do
    node_port[$name]=$(sed -n 's|^rheo listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out/server.out" | head -1)
    [ -n "${node_port[$name]}" ] && return 0
    sleep 0.1
  done
  echo "run.sh: node $name did not start" >&2
  cat "$out/server.out" "$out/server.err" >&2
  exit 1
}
# link_received PID: the bytes the node PID's cluster link (its socket to the core's port
# $cport) has received so far, TCP payload as the kernel counts it (ss).
link_received() {
  ss -tinpH state established "( dport = :$cport )" |
    awk -v pid="pid=$1," 'index($0, pid) { hit = 1; next }
      hit { if (match($0, /bytes_received:[0-9]+/)) print substr($0, RSTART + 15, RLENGTH - 15); exit }'
}
sessions_open() { # PORT: rheo_sessions_open of the node serving HTTP on PORT
  local v
  v=$(curl -s "http://127.0.0.1:$1/_metrics" | sed -n 's/^rheo_sessions_open[{ ].* \([0-9]*\)$/\1/p')
  echo "${v:-0}"
}
stop_cluster() {
  local name
  for name in "${!node_pid[@]}"; do kill -TERM "${node_pid[$name]}" 2>/dev/null || true; done
  for name in "${!node_pid[@]}"; do wait "${node_pid[$name]}" 2>/dev/null || true; done
  node_pid=()
  node_port=()
  [ -z "$cluster_dir" ] || rm -rf "$cluster_dir"
  cluster_dir=
}
trap 'stop_server; stop_cluster' EXIT

bench() { # label run extra-args...
  local label=$1 run=$2
  shift 2
  echo "run.sh: $label run $run: rheo-bench $*" >&2
  echo "$(date -u +%FT%TZ) $(cut -d" " -f1-3 /proc/loadavg)" >"$OUT/$label-$run.load"
  "$BENCH" --port "$port" --server-pid "$server_pid" --threads "$THREADS" --label "$label" \
    --out "$OUT/$label-$run" "${bench_tls[@]}" "$@" >/dev/null
}

# One function per scenario; each runs once and leaves $OUT/<label>-<run>.{json,md,svg}.
S1() { # broadcast: 10,000 clients, one writer, rising rate (5 s steps instead of 30 s)
  start_server --durability normal
  bench S1 "$1" --setup --subscribers 10000 --http-conns 1 --pipeline 64 --doc-bytes 100 \
    --rate 1 --rate-mult 1.6 --steps 9 --step-seconds 5 --stop-p99-ms 1000 --p99-limit-ms 50
  stop_server
}
# S2's two runs, at 200 then 20 inserts/s: label, clients, run.
s2_rates() {
  start_server --durability normal
  bench "$1" "$3" --setup --subscribers "$2" --http-conns 1 --rate 200 --step-seconds 20
  stop_server
  # The same at a rate this machine sustains, for the latency where the server keeps up.
  start_server --durability normal
  bench "$1-20" "$3" --setup --subscribers "$2" --http-conns 1 --rate 20 --step-seconds 20
  stop_server
}
S2() { # latency: 1,000 clients, 200 inserts/s (20 s), then 20 inserts/s
  s2_rates S2 1000 "$1"
}
S2tls() { # issue 29: S2 (both rates) in plain text and over TLS (1,000 wss:// clients, the
  # writer on https://), the same binary and parameters; odd runs plain first, even runs TLS
  # first. Labels S2tls-plain[-20], S2tls-tls[-20]; summarize.py sets them side by side.
  local order=(plain tls) mode
  [ $(($1 % 2)) = 1 ] || order=(tls plain)
  for mode in "${order[@]}"; do
    if [ "$mode" = tls ]; then tls_on; else tls_off; fi
    s2_rates "S2tls-$mode" 1000 "$1"
  done
  tls_off
}
S2one() { # S2's path with one client: the server's CPU per event (the request, the commit,
  # the event's way to the socket) without the fan-out, where the fixed costs of the event
  # path show (issue 24)
  s2_rates S2one 1 "$1"
}
S3() { # idle connections: 15,000 (fd hard limit 20,000 per process), held 5 s
  start_server --durability normal
  bench S3 "$1" --setup --subscribers 15000 --http-conns 0 --hold-seconds 5 --step-seconds 0 \
    --connect-concurrency 2000
  stop_server
}
S4() { # per-user streams: 10,000 distinct avars, each event matches 1 % (100 clients)
  start_server --durability normal
  bench S4 "$1" --setup --per-user --user-window 100 --subscribers 10000 --http-conns 1 \
    --pipeline 64 --rate 5 --rate-mult 2 --steps 5 --step-seconds 5 --stop-p99-ms 1000
  stop_server
}
S5() { # REST, 64 connections: POST durable (--durability full, the default), POST with
  # --durability normal, then GET on the collection those filled, then GET /_ping
  s5_runs S5 "$1"
}
s5_runs() { # S5's four runs: label prefix, run
  start_server
  bench "$1-POST" "$2" --subscribers 0 --http-conns 64 --pipeline 1 --http-method POST \
    --rate 0 --step-seconds 10
  stop_server
  start_server --durability normal
  bench "$1-POST-normal" "$2" --subscribers 0 --http-conns 64 --pipeline 1 --http-method POST \
    --rate 0 --step-seconds 10
  bench "$1-GET" "$2" --subscribers 0 --http-conns 64 --pipeline 1 --http-method GET \
    --http-path '/bench?filter=%7B%22t%22%3A%7B%22%24gt%22%3A0%7D%7D&pagesize=10' \
    --rate 0 --step-seconds 10
  # REST against the transport: GET /_ping, same connections, same server (summarize.py
  # reports GET / _ping).
  bench "$1-ping" "$2" --subscribers 0 --http-conns 64 --pipeline 1 --http-method GET \
    --http-path /_ping --rate 0 --step-seconds 10
  stop_server
}
S5tls() { # issue 29: S5 in plain text and over TLS (64 https:// connections), the same binary
  # and parameters, alternating as S2tls. Labels S5tls-plain-*, S5tls-tls-*.
  local order=(plain tls) mode
  [ $(($1 % 2)) = 1 ] || order=(tls plain)
  for mode in "${order[@]}"; do
    if [ "$mode" = tls ]; then tls_on; else tls_off; fi
    s5_runs "S5tls-$mode" "$1"
  done
  tls_off
}
S5B() { # S5's GET with HTTP Basic (issue 14): a server with a user; S5 documents loaded in
  # bulk, a wait until the server is idle, then S5's GET anonymously and with the user's
  # password on every request, twice each, alternating. First on 1,000 documents (a cheap
  # query, where the cost of authentication shows), then on 120,000 (about S5's own count).
  local hash
  hash=$("$RHEO" hash-password bench-pw)
  start_server --durability normal --users '[{"userid":"bench","password":"'"$hash"'","roles":["user"]}]'
  setup_log="$OUT/S5B-$1.setup"
  : >"$setup_log"
  local get=(--subscribers 0 --http-conns 64 --pipeline 1 --http-method GET --rate 0 --step-seconds 10
    --http-path '/bench?filter=%7B%22t%22%3A%7B%22%24gt%22%3A0%7D%7D&pagesize=10')
  local size loaded=0
  for size in 1000 120000; do
    load_docs bench $((size - loaded)) s5
    loaded=$size
    settle
    bench "S5B-$size-GET-anonymous" "$1" "${get[@]}"
    bench "S5B-$size-GET-basic" "$1" "${get[@]}" --basic bench:bench-pw
    bench "S5B-$size-GET-anonymous-b" "$1" "${get[@]}"
    bench "S5B-$size-GET-basic-b" "$1" "${get[@]}" --basic bench:bench-pw
  done
  stop_server
}
S6() { # slow consumers: 1,000 healthy clients without, then with, 100 clients that never read
  # (4 KiB SO_RCVBUF), 35 s each. 20 inserts/s of 8 KB documents (not 200/s of 100 B, which
  # saturates the server here, see S2): each slow socket must first fill its 4 MiB kernel send
  # buffer before rheo's own queue (limit 256 KiB) grows. Pings every 120 s, so the pong
  # timeout does not close the slow clients before the queue limit does.
  local server_args=(--durability normal --ws-queue-limit-bytes 262144 --ws-ping-interval-ms 120000)
  start_server "${server_args[@]}"
  bench S6-base "$1" --setup --subscribers 1000 --http-conns 1 --rate 20 --doc-bytes 8000 \
    --step-seconds 35
  stop_server
  start_server "${server_args[@]}"
  bench S6 "$1" --setup --subscribers 1000 --slow-subscribers 100 --slow-rcvbuf 4096 \
    --http-conns 1 --rate 20 --doc-bytes 8000 --step-seconds 35 --slow-drain-seconds 5
  stop_server
}
S7() { # cluster: one core, two edges (embedded store: their writes go to the core). S7_SUBS
  # clients per edge (default 2,000, not 5,000: one rheo-bench process holds both edges'
  # clients on this machine's 20,000 fds and 2 cores), one stream, the writer on edge A at a
  # rising rate (5 s steps). rheo-bench reports each node's CPU per delivery and the bytes the
  # core sent each edge per insert.
  local subs=${S7_SUBS:-2000} secret=bench-cluster-secret a0="" b0="" bench_pid
  cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/rheo-bench-cluster.XXXXXX")
  cport=$((20000 + RANDOM % 20000))
  start_node core --durability normal --cluster-listen "127.0.0.1:$cport" --cluster-secret "$secret"
  start_node edge-a --cluster-join "127.0.0.1:$cport" --cluster-secret "$secret"
  start_node edge-b --cluster-join "127.0.0.1:$cport" --cluster-secret "$secret"
  echo "$(date -u +%FT%TZ) $(cut -d" " -f1-3 /proc/loadavg)" >"$OUT/S7-$1.load"
  echo "run.sh: S7 run $1: core ${node_port[core]}, edges ${node_port[edge-a]} ${node_port[edge-b]}" >&2
  "$BENCH" --port "${node_port[edge-a]}" --sub-ports "${node_port[edge-a]},${node_port[edge-b]}" \
    --cluster-port "${node_port[core]}" --node "core=${node_pid[core]}" \
    --node "edge-a=${node_pid[edge-a]}" --node "edge-b=${node_pid[edge-b]}" \
    --server-pid "${node_pid[edge-a]}" --threads "$THREADS" --label S7 --out "$OUT/S7-$1" \
    --setup --subscribers $((2 * subs)) --http-conns 1 --pipeline 64 --doc-bytes 100 \
    --rate "${S7_RATE:-2}" --rate-mult "${S7_RATE_MULT:-1.6}" --steps "${S7_STEPS:-7}" \
    --step-seconds 5 --stop-p99-ms 1000 --p99-limit-ms 50 --hold-seconds 1 >/dev/null &
  bench_pid=$!
  # The link counters start once every client is connected (each WebSocket handshake on an
  # edge reads the stream's definition from the core over the link, ~280 B per client).
  for _ in $(seq 1 1200); do
    [ "$(sessions_open "${node_port[edge-a]}")" -ge "$subs" ] &&
      [ "$(sessions_open "${node_port[edge-b]}")" -ge "$subs" ] && break
    sleep 0.05
  done
  a0=$(link_received "${node_pid[edge-a]}")
  b0=$(link_received "${node_pid[edge-b]}")
  wait "$bench_pid"
  # What the kernel carried from the core to each edge from then to the end (the events,
  # heartbeats, and for edge A the answers to its forwarded writes), per insert.
  python3 - "$OUT/S7-$1.json" edge-a "$a0" "$(link_received "${node_pid[edge-a]}")" \
    edge-b "$b0" "$(link_received "${node_pid[edge-b]}")" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
r = json.load(open(path))
inserts = r["totals"]["inserts_acked"]
r["cluster_wire"] = [{"peer": args[i], "tcp_bytes_received": int(args[i + 2]) - int(args[i + 1]),
                      "per_insert": (int(args[i + 2]) - int(args[i + 1])) / max(inserts, 1)}
                     for i in range(0, len(args), 3)]
json.dump(r, open(path, "w"))
PY
  stop_cluster
}
# S9 helpers. load_docs COLL COUNT SHAPE: bulk POSTs of 5,000 documents on 2 connections
# (bench/load_docs.py), its JSON line appended to $setup_log.
# Further arguments go to load_docs.py (S10: --user-field, --first, --colls).
setup_log=
load_docs() {
  python3 "$here/load_docs.py" --port "$port" --coll "$1" --count "$2" --shape "$3" --batch 5000 \
    --conns 2 "${@:4}" | tee -a "$setup_log" >&2
}
# Waits until the server has been idle (at most one clock tick of CPU in 0.5 s) after a load,
# for at most 30 s: a WAL checkpoint or a change-log trim must not run into the measurement.
settle() {
  local before after
  for _ in $(seq 1 60); do
    before=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    sleep 0.5
    after=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    [ $((after - before)) -le 1 ] && return 0
  done
}
# explain LABEL PATH: the plan of GET PATH (explain=true), appended to $setup_log.
explain() {
  printf '{"query":"%s","path":"%s","plan":%s}\n' "$1" "$2" \
    "$(curl -sf "http://127.0.0.1:$port$2&explain=true")" | tee -a "$setup_log" >&2
}
# The queries of S9 (URL-encoded): the chat's history call, an equality on the indexed field
# user, deep pages of the history (by page and by range), and S5's GET.
s9_history='/messages?sort=%7Btimestamp%3A-1%7D&pagesize=15'
s9_user='/messages?filter=%7B%22user%22%3A%22u123%22%7D&pagesize=15'
s9_page100="$s9_history&page=100"
s9_page1000="$s9_history&page=1000"
# Page 1000 by range instead of by skip, as a client that pages by the last timestamp it
# holds asks for it: the 15 messages older than the last one of page 999. load_docs.py gives
# message i the date 1700000000000 + i * 1000 ms; page 1000 starts at i = 999,999 - 14,985.
s9_range1000='/messages?filter=%7B%22timestamp%22%3A%7B%22%24lt%22%3A%7B%22%24date%22%3A1700985015000%7D%7D%7D&sort=%7Btimestamp%3A-1%7D&pagesize=15'
s5_get='/bench?filter=%7B%22t%22%3A%7B%22%24gt%22%3A0%7D%7D&pagesize=10'

S9() { # large collection: 1,000,000 chat messages. Both servers run --durability normal, for
  # the speed of the load (the reads measured do not depend on it).
  setup_log="$OUT/S9-$1.setup"
  : >"$setup_log"
  # S5's GET on a collection of 1,000 documents (S5's own runs query ~120,000), for (c).
  start_server --durability normal
  load_docs bench 1000 s5
  settle
  bench S9-S5-GET-1k "$1" --subscribers 0 --http-conns 64 --pipeline 1 --http-method GET \
    --http-path "$s5_get" --rate 0 --step-seconds 10
  stop_server
  start_server --durability normal
  load_docs messages 1000000 chat # messages has its index timestamp_-1 from startup
  local t0 t1
  t0=$(date +%s.%N)
  curl -sf -X PUT "http://127.0.0.1:$port/messages/_indexes/user_1" \
    -H 'Content-Type: application/json' -d '{"keys":{"user":1}}' >/dev/null
  t1=$(date +%s.%N)
  printf '{"index":"user_1","keys":{"user":1},"documents":1000000,"build_seconds":%.2f}\n' \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" | tee -a "$setup_log" >&2
  load_docs bench 1000000 s5 # S5's GET at 1,000,000 documents
  settle
  explain history "$s9_history"
  explain user "$s9_user"
  explain page100 "$s9_page100"
  explain page1000 "$s9_page1000"
  explain range1000 "$s9_range1000"
  explain S5-GET "$s5_get"
  # Single client: one connection, one request at a time.
  local one=(--threads 1 --subscribers 0 --http-conns 1 --pipeline 1 --http-method GET --rate 0)
  bench S9-history "$1" "${one[@]}" --http-path "$s9_history" --step-seconds 10
  bench S9-user "$1" "${one[@]}" --http-path "$s9_user" --step-seconds 10
  bench S9-page100 "$1" "${one[@]}" --http-path "$s9_page100" --step-seconds 5
  bench S9-page1000 "$1" "${one[@]}" --http-path "$s9_page1000" --step-seconds 5
  bench S9-range1000 "$1" "${one[@]}" --http-path "$s9_range1000" --step-seconds 5
  # 64 connections, closed loop (as S5).
  local many=(--subscribers 0 --http-conns 64 --pipeline 1 --http-method GET --rate 0)
  bench S9-history-64c "$1" "${many[@]}" --http-path "$s9_history" --step-seconds 10
  bench S9-user-64c "$1" "${many[@]}" --http-path "$s9_user" --step-seconds 10
  bench S9-S5-GET-1M "$1" "${many[@]}" --http-path "$s5_get" --step-seconds 10
  stop_server
}

# S10 helpers. s10_start TAG DB ARGS...: rheo on the store directory DB (its output in
# $datadir/server-TAG.{out,err}); sets server_pid, port and listen_ms, the time from starting
# the process to its "rheo listening" line (polled every 5 ms, at most S10_START_WAIT_S, 120 s).
listen_ms=
s10_start() {
  local tag=$1 db=$2 t0 i
  shift 2
  # Created here, not by the server's redirection: the first poll may run before it does.
  : >"$datadir/server-$tag.out"
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # RHEO_ARGS: extra server flags, split on spaces
  "$RHEO" --port 0 --data-dir "$db" "${open_acl[@]}" "$@" ${RHEO_ARGS:-} \
    >"$datadir/server-$tag.out" 2>"$datadir/server-$tag.err" &
  server_pid=$!
  port=
  for ((i = 0; i < ${S10_START_WAIT_S:-120} * 200; i++)); do
    port=$(sed -n 's|^rheo listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$datadir/server-$tag.out")
    if [ -n "$port" ]; then
      listen_ms=$((($(date +%s%N) - t0) / 1000000))
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.005
  done
  echo "run.sh: server did not start on $db" >&2
  cat "$datadir/server-$tag.out" "$datadir/server-$tag.err" >&2
  exit 1
}
# s10_stop: stops the server, keeps its data dir (for a restart on the same store).
s10_stop() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
# s10_note JSON: one line for the run's setup log.
s10_note() { echo "$1" | tee -a "$setup_log" >&2; }
# s10_build STORE: the aged store, built once into STORE/db (STORE/build.log: the loader's
# lines; STORE/meta.json: what the store holds, counted in its SQLite file afterwards). With
# --durability normal, for the speed of the load. In order: the chat's messages collection
# (created at startup with its index timestamp_-1) gets the index from_1 of the chat's
# per-sender queries, then all but the last S10_CHANGES messages; the small collections
# (room0 .. room<N-1>, created with PUT, a few chat messages each); S5's collection bench;
# last the S10_CHANGES newest messages, so that the change log holds the latest
# changelog_retention writes after all of the loading (a bulk insert is one change per
# document). Messages are chat-shaped: {from, timestamp, message}.
s10_build() {
  local store=$1 tmp=$1.building t0 t1 first
  first=$((s10_messages - s10_changes))
  rm -rf "$tmp"
  mkdir -p "$tmp"
  datadir=$tmp # stop_server removes it if the build fails
  local log_before=$setup_log
  setup_log=$tmp/build.log
  : >"$setup_log"
  t0=$(date +%s.%N)
  s10_start build "$tmp/db" --durability normal
  curl -sf -X PUT "http://127.0.0.1:$port/messages/_indexes/from_1" \
    -H 'Content-Type: application/json' -d '{"keys":{"from":1}}' >/dev/null
  load_docs messages "$first" chat --user-field from
  load_docs room $((s10_colls * s10_coll_docs)) chat --user-field from --colls "$s10_colls"
  load_docs bench "$s10_bench_docs" s5
  load_docs messages "$s10_changes" chat --user-field from --first "$first"
  settle
  curl -sf "http://127.0.0.1:$port/messages/_indexes" >"$tmp/indexes.json"
  s10_stop
  t1=$(date +%s.%N)
  python3 - "$tmp/db/rheo.db" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$tmp/indexes.json" "$("$RHEO" --version 2>/dev/null || echo unknown)" \
    "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$tmp/meta.json" <<'PY'
import json, os, sqlite3, sys
path, secs, indexes, version, commit = sys.argv[1:6]
db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
one = lambda q: db.execute(q).fetchone()
colls = dict(db.execute("SELECT coll, count(*) FROM documents GROUP BY coll").fetchall())
lo, hi, n = one("SELECT min(seq), max(seq), count(*) FROM changes")
small = [c for c in colls if c.startswith("room")]
print(json.dumps({
    "build_seconds": round(float(secs), 1), "rheo": version, "commit": commit,
    "collections": one("SELECT count(*) FROM collections")[0],
    "messages": colls.get("messages", 0), "bench": colls.get("bench", 0),
    "small_collections": len(small), "small_collection_documents": sum(colls[c] for c in small),
    "changes": n, "changes_seq": [lo, hi],
    "changes_by_coll": dict(db.execute(
        "SELECT coll, count(*) FROM changes GROUP BY coll ORDER BY 2 DESC LIMIT 5").fetchall()),
    "messages_indexes": [i["_id"] for i in json.load(open(indexes))],
    "file_mib": round(sum(os.path.getsize(os.path.join(os.path.dirname(path), f))
                          for f in os.listdir(os.path.dirname(path))) / 2**20, 1)}))
PY
  rm -rf "$store"
  mv "$tmp" "$store"
  datadir=
  setup_log=$log_before
}
# s10_measure STORE RUN: S5's GET, then GET /_ping with the same 64 connections (REST against
# the transport), then S2 at 200 inserts/s and at 20/s, all on the running server; then a
# restart on the same store (listening ms after the load).
s10_measure() {
  local http=(--subscribers 0 --http-conns 64 --pipeline 1 --http-method GET --rate 0
    --step-seconds "${S10_GET_S:-10}")
  settle
  bench "S10-$1-GET" "$2" "${http[@]}" --http-path "$s5_get"
  bench "S10-$1-ping" "$2" "${http[@]}" --http-path /_ping
  bench "S10-$1-S2" "$2" --setup --subscribers 1000 --http-conns 1 --rate 200 \
    --step-seconds "${S10_S2_S:-20}"
  settle
  bench "S10-$1-S2-20" "$2" --setup --subscribers 1000 --http-conns 1 --rate 20 \
    --step-seconds "${S10_S2_S:-20}"
  s10_stop
  s10_start "restart" "$datadir/db" --durability normal
  s10_note '{"store":"'"$1"'","event":"restart","listening_ms":'"$listen_ms"'}'
  stop_server
}
S10() { # aged store: S5's GET and S2 on a copy of a store that has run for a while (built once,
  # kept in S10_STORE; see s10_build), then the same on a fresh store; the time from start to
  # listening on each. Both servers run --durability normal (as S2 and S5's GET).
  s10_messages=${S10_MESSAGES:-1000000}
  s10_colls=${S10_COLLECTIONS:-1000}
  s10_coll_docs=${S10_COLL_DOCS:-5}
  s10_changes=${S10_CHANGES:-100000}
  s10_bench_docs=${S10_BENCH_DOCS:-1000}
  [ "$s10_changes" -le "$s10_messages" ] || s10_changes=$s10_messages
  local store t0 t1 run_t0
  store=m$s10_messages-c${s10_colls}x$s10_coll_docs-x$s10_changes-b$s10_bench_docs
  store=${S10_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/rheo-bench/s10-aged-$store}
  setup_log="$OUT/S10-$1.setup"
  : >"$setup_log"
  if [ -n "${S10_REBUILD:-}" ] && [ "$1" = 1 ] || [ ! -f "$store/meta.json" ]; then
    echo "run.sh: S10: building the aged store in $store" >&2
    s10_build "$store"
    tee -a "$setup_log" <"$store/build.log" >/dev/null
    s10_note '{"store":"aged","event":"built","path":"'"$store"'","meta":'"$(cat "$store/meta.json")"'}'
  else
    s10_note '{"store":"aged","event":"reused","path":"'"$store"'","meta":'"$(cat "$store/meta.json")"'}'
  fi
  # The aged store: a copy, so that runs do not age it further.
  run_t0=$(date +%s)
  datadir=$(mktemp -d "${TMPDIR:-/tmp}/rheo-bench-data.XXXXXX")
  t0=$(date +%s.%N)
  cp -a "$store/db" "$datadir/db"
  t1=$(date +%s.%N)
  s10_start aged "$datadir/db" --durability normal
  s10_note '{"store":"aged","event":"start","listening_ms":'"$listen_ms"',"copy_seconds":'"$(
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"'}'
  s10_measure aged "$1"
  # A fresh store: S5's collection with the same documents, nothing else.
  datadir=$(mktemp -d "${TMPDIR:-/tmp}/rheo-bench-data.XXXXXX")
  s10_start fresh "$datadir/db" --durability normal
  s10_note '{"store":"fresh","event":"start","listening_ms":'"$listen_ms"'}'
  load_docs bench "$s10_bench_docs" s5
  s10_measure fresh "$1"
  s10_note '{"event":"run","seconds":'$(($(date +%s) - run_t0))',"load":"'"$(cut -d" " -f1-3 /proc/loadavg)"'"}'
  python3 "$here/summarize.py" --s10-run "$OUT" "$1"
}

S11() { # live queries (issue 25), each part on a fresh server of the same binary, 20 s of load:
  # S2 as the reference (1,000 clients on a change stream, 200 inserts/s); (a) 10,000 clients
  # on one live query, the chat's history (sort={timestamp:-1}&pagesize=15 on messages), 200
  # inserts/s; (b) 1,000 distinct live queries (filter={"from":"u<k>"}&pagesize=15), 10 clients
  # each, 200 writes/s from random senders, 20 % of them a DELETE of a message inside its
  # sender's window. Messages are loaded first (a: 1,000; b: 30 per sender, with the index
  # from_1 of the chat's per-sender queries). In (a) and (b) S11_JOINERS more clients join
  # during the load (their connect -> init frame is the init latency of a new client), and
  # at the end every client's array is compared with GET /messages with its query's
  # parameters. summarize.py gives (a)'s CPU per frame against S2's per delivery.
  local a_subs=${S11_A_SUBS:-10000} queries=${S11_B_QUERIES:-1000} per=${S11_B_CLIENTS:-10}
  local load=(--http-conns 1 --rate "${S11_RATE:-200}" --step-seconds "${S11_SECONDS:-20}"
    --live-joiners "${S11_JOINERS:-100}" --drain-seconds 30)
  setup_log="$OUT/S11-$1.setup"
  : >"$setup_log"
  start_server --durability normal
  bench S11-S2 "$1" --setup --subscribers "${S11_S2_SUBS:-1000}" --http-conns 1 \
    --rate "${S11_RATE:-200}" --step-seconds "${S11_SECONDS:-20}"
  stop_server
  start_server --durability normal
  load_docs messages 1000 chat --user-field from
  settle
  bench S11-a "$1" --coll messages --live-sort '{timestamp:-1}' --live-pagesize 15 \
    --subscribers "$a_subs" "${load[@]}"
  stop_server
  start_server --durability normal
  curl -sf -X PUT "http://127.0.0.1:$port/messages/_indexes/from_1" \
    -H 'Content-Type: application/json' -d '{"keys":{"from":1}}' >/dev/null
  load_docs messages $((queries * 30)) chat --user-field from --users "$queries"
  settle
  bench S11-b "$1" --coll messages --live-filter '{"from":"u<k>"}' --live-pagesize 15 \
    --live-queries "$queries" --chat-users "$queries" --delete-fraction 0.2 \
    --subscribers $((queries * per)) "${load[@]}"
  stop_server
}

S12() { # presence churn (issue 26): S12_SUBS clients (5,000) join the presence of the default
  # messages stream "all" (presence and broadcast declared by the server), S12_LISTENERS of
  # them (500) with presenceEvents=true; once every listener has seen every member (the
  # ramp-up, reported apart), S12_SECONDS (60) of load in which a wave closes S12_CHURN (10 %)
  # of the clients, listeners among them, and reconnects them every S12_EVERY_S (10 s), the
  # first half a period in (so the window holds whole periods). Listeners time each join from
  # the member's handshake and each leave from its close; at the end every listener's list and
  # GET .../_presence are compared with the members open. No writer. Then, as the reference
  # for the server CPU of the churn itself, the same clients and waves on a stream without
  # presence (S12-base: a plain stream "all" of a collection "bench").
  local subs=${S12_SUBS:-5000} every=${S12_EVERY_S:-10}
  local churn=(--subscribers "$subs" --http-conns 0 --churn "${S12_CHURN:-0.1}" --churn-seconds "$every"
    --churn-first-seconds "$(awk -v e="$every" 'BEGIN { print e / 2 }')" --step-seconds "${S12_SECONDS:-60}")
  start_server --durability normal
  # shellcheck disable=SC2086 # S12_ARGS: extra rheo-bench flags, split on spaces
  bench S12 "$1" --coll messages --stream all --presence-listeners "${S12_LISTENERS:-500}" \
    "${churn[@]}" ${S12_ARGS:-}
  stop_server
  if [ "${S12_BASE:-1}" != 0 ]; then
    start_server --durability normal
    bench S12-base "$1" --setup --coll bench --stream all "${churn[@]}"
    stop_server
  fi
}

# S8 helpers. wait_wave PROGRESS K: waits (at most 120 s) for rheo-bench's progress line of
# wave K and prints it.
wait_wave() {
  local line
  for _ in $(seq 1 2400); do
    line=$(grep "^wave=$2 " "$1" || true)
    [ -n "$line" ] && { echo "$line"; return 0; }
    sleep 0.05
  done
  return 1
}
# gauges: "sessions subscriptions feeds ws_connections" of the server's /_metrics.
gauges() {
  curl -s "http://127.0.0.1:$port/_metrics" | awk '/^rheo_sessions_open /{s=$2}
    /^rheo_subscriptions /{u=$2} /^rheo_upstream_feeds /{f=$2} /^rheo_ws_connections\{/{w+=$2}
    END{print s+0, u+0, f+0, w+0}'
}
# soak_sample SAMPLES PROGRESS-LINE: waits (at most GAUGE_WAIT_S) for the gauges to match
# the clients rheo-bench has open (sessions = clients; their sessions share one stream with
# the same variables, so one subscription and one upstream feed), then appends the server's
# RSS, open fds and gauges to SAMPLES.
soak_sample() {
  local wave live g t0 waited rss fds s u f w
  wave=$(sed 's/^wave=\([0-9]*\) .*/\1/' <<<"$2")
  live=$(sed 's/.* live=\([0-9]*\) .*/\1/' <<<"$2")
  t0=$(date +%s%N)
  for _ in $(seq 1 $((${GAUGE_WAIT_S:-10} * 20))); do
    g=$(gauges)
    [ "$(cut -d" " -f1-3 <<<"$g")" = "$live 1 1" ] && break
    sleep 0.05
  done
  waited=$((($(date +%s%N) - t0) / 1000000))
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$server_pid/status")
  fds=$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  read -r s u f w <<<"$g"
  echo "wave=$wave rss_kib=$rss fds=$fds sessions=$s subscriptions=$u feeds=$f" \
    "ws_connections=$w" \
    "gauge_wait_ms=$waited load1=$(cut -d" " -f1 /proc/loadavg)" >>"$1"
}
S8() { # soak: S2 at a rate this machine holds while other work runs (S8_SUBS clients, 1,000,
  # S8_RATE inserts/s, 50: a quarter of S2's rate) for DURATION_S; every SAMPLE_S a churn wave
  # (S8_CHURN of the clients close and reconnect), then a sample of the server. The writer
  # numbers its documents, so every client counts missing and duplicate events. bench/soak.py
  # prints the table and the verdict (PREFIX.soak.md, PREFIX.soak).
  local duration=${DURATION_S:-1800} every=${SAMPLE_S:-60} prefix=$OUT/S8-$1 line bench_pid
  local status=0 start k wait_s
  : >"$prefix.progress"
  : >"$prefix.samples"
  rm -f "$prefix.status"
  start_server --durability normal
  echo "$(date -u +%FT%TZ) $(cut -d" " -f1-3 /proc/loadavg)" >"$prefix.load"
  echo "run.sh: S8 run $1: $duration s, a wave every $every s" >&2
  "$BENCH" --port "$port" --server-pid "$server_pid" --threads "$THREADS" --label S8 \
    --out "$prefix" --setup --subscribers "${S8_SUBS:-1000}" --http-conns 1 \
    --rate "${S8_RATE:-50}" --step-seconds $((duration + 600)) --churn "${S8_CHURN:-0.1}" \
    --progress "$prefix.progress" >/dev/null &
  bench_pid=$!
  line=$(wait_wave "$prefix.progress" 0) || { echo "run.sh: S8: no start" >&2; exit 1; }
  start=$(date +%s)
  soak_sample "$prefix.samples" "$line"
  for k in $(seq 1 $((duration / every))); do
    wait_s=$((start + k * every - $(date +%s)))
    [ "$wait_s" -le 0 ] || sleep "$wait_s"
    kill -USR1 "$bench_pid"
    line=$(wait_wave "$prefix.progress" "$k") || { echo "run.sh: S8: wave $k missing" >&2; break; }
    soak_sample "$prefix.samples" "$line"
  done
  echo "$(date -u +%FT%TZ) $(cut -d" " -f1-3 /proc/loadavg)" >>"$prefix.load"
  kill -USR2 "$bench_pid"
  wait "$bench_pid" || status=$?
  echo "$status" >"$prefix.status"
  stop_server
  python3 "$here/soak.py" "$prefix" "${WARMUP_S:-300}"
}

for s in "$@"; do
  case $s in S1 | S2 | S2one | S2tls | S3 | S4 | S5 | S5B | S5tls | S6 | S7 | S8 | S9 | S10 | S11 | S12) ;; *)
    echo "usage: bench/run.sh S1 [S2 ... S12 S2one S2tls S5B S5tls]" >&2
    exit 2
    ;;
  esac
  for run in $(seq 1 "$RUNS"); do "$s" "$run"; done
  python3 "$here/summarize.py" "$OUT" "$s"
done
