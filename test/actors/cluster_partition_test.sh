#!/usr/bin/env bash
# Partition test of a cluster (section 8 of the API contract): a core and an edge in two
# network namespaces joined by a veth pair. An SSE client on the edge follows
# /messages/_streams/all while a writer in the core's namespace posts numbered messages to
# the core. The link is cut for longer than the cluster timeout (the edge must see it down
# and answer writes with 503), then restored. At the end the client must hold every
# acknowledged write exactly once, in order, on the connection it opened first.
# Presence (the stream declares it): the client is a member, "edgy", with a second one,
# "ghost", that leaves during the partition. The core drops both within the cluster timeout;
# after the partition every node lists edgy once, and ghost never again.
# Usage: cluster_partition_test.sh <rheo binary>. Needs root (network namespaces); exits 77
# (skipped) without.
set -euo pipefail
rheo=$1

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: network namespaces need CAP_SYS_ADMIN"
command -v ip >/dev/null || skip "no ip(8) (iproute2)"
command -v curl >/dev/null || skip "no curl"

core_ns=rheo-core-$$
edge_ns=rheo-edge-$$
core_if=rc$$ # interface names: at most 15 characters
edge_if=re$$
core_ip=10.213.7.1
edge_ip=10.213.7.2
http_port=8080
cluster_port=7070
work=$(mktemp -d /tmp/rheo-partition.XXXXXX)
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$core_ns" 2>/dev/null || true # deleting a namespace deletes its veth end
  ip netns del "$edge_ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  local f
  for f in core.err edge.err writer.err sse.err; do
    [ -s "$work/$f" ] && { echo "--- $f"; tail -20 "$work/$f"; }
  done
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 50 ms until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${seconds} s waiting for $what"
    sleep 0.05
  done
}

ip netns add "$core_ns" 2>"$work/netns.err" || skip "ip netns add failed: $(cat "$work/netns.err")"
ip netns add "$edge_ns" || skip "ip netns add failed"
ip link add "$core_if" netns "$core_ns" type veth peer name "$edge_if" netns "$edge_ns" ||
  skip "cannot create a veth pair"
# For a background process call ip netns exec directly, not these functions: it execs the
# command, so $! is the process itself (a function would leave a subshell in between).
in_core() { ip netns exec "$core_ns" "$@"; }
in_edge() { ip netns exec "$edge_ns" "$@"; }
link_up() { # brings both ends up, with their address (kept while down, re-added if lost)
  in_core ip link set lo up
  in_edge ip link set lo up
  in_core ip link set "$core_if" up
  in_edge ip link set "$edge_if" up
  in_core ip -4 addr show dev "$core_if" | grep -q "$core_ip/" ||
    in_core ip addr add "$core_ip/24" dev "$core_if"
  in_edge ip -4 addr show dev "$edge_if" | grep -q "$edge_ip/" ||
    in_edge ip addr add "$edge_ip/24" dev "$edge_if"
}
link_up

acl='[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix('"'/'"')"}]'
cluster=(--cluster-secret partition-secret --cluster-insecure true --cluster-heartbeat-ms 200
  --cluster-timeout-ms 1000
  --cluster-reconnect-max-ms 500)
core_url=http://$core_ip:$http_port
edge_url=http://$edge_ip:$http_port

ip netns exec "$core_ns" "$rheo" --port "$http_port" --bind "$core_ip" --data-dir "$work/core" --durability normal \
  --cluster-listen "$core_ip:$cluster_port" --node-name core --acl "$acl" "${cluster[@]}" \
  >"$work/core.out" 2>"$work/core.err" &
pids+=($!)
wait_for 10 "the core to listen" grep -qs '^rheo listening' "$work/core.out"
ip netns exec "$edge_ns" "$rheo" --port "$http_port" --bind "$edge_ip" --data-dir "$work/edge" \
  --cluster-join "$core_ip:$cluster_port" --node-name edge-a --acl "$acl" "${cluster[@]}" \
  >"$work/edge.out" 2>"$work/edge.err" &
pids+=($!)
wait_for 10 "the edge to listen" grep -qs '^rheo listening' "$work/edge.out"

edge_link() { # prints the edge's rheo_cluster_link_up value
  in_edge curl -s -m 2 "$edge_url/_metrics" | sed -n 's/^rheo_cluster_link_up{.*} \([01]\)$/\1/p'
}
link_is() { [ "$(edge_link)" = "$1" ]; }
wait_for 10 "the edge's link to be up" link_is 1

# The client: one SSE connection to the edge for the whole test, a member of the stream's
# presence; and another member, which leaves during the partition.
join() { echo "$edge_url/messages/_streams/all?presence=%7B%22nick%22%3A%22$1%22%7D"; }
ip netns exec "$edge_ns" curl -sN -D "$work/sse.headers" -H 'Accept: text/event-stream' \
  "$(join edgy)" >"$work/sse.out" 2>"$work/sse.err" &
sse_pid=$!
pids+=("$sse_pid")
wait_for 10 "the SSE client's response" grep -qs '^HTTP/1.1 200' "$work/sse.headers"
ip netns exec "$edge_ns" curl -sN -H 'Accept: text/event-stream' "$(join ghost)" >/dev/null 2>&1 &
ghost_pid=$!
pids+=("$ghost_pid")

# core_members, edge_members: the nicks GET .../_presence lists on that node, sorted, on one
# line (an error answer lists nothing).
nicks() { grep -o '"nick":"[a-z]*"' | sed 's/"nick":"\(.*\)"/\1/' | sort | tr '\n' ' '; }
core_members() { in_core curl -s -m 2 "$core_url/messages/_streams/all/_presence" | nicks; }
edge_members() { in_edge curl -s -m 2 "$edge_url/messages/_streams/all/_presence" | nicks; }
core_lists() { [ "$(core_members)" = "$1" ]; }
edge_lists() { [ "$(edge_members)" = "$1" ]; }
wait_for 10 "both members listed on the core" core_lists "edgy ghost "
wait_for 10 "both members listed on the edge" edge_lists "edgy ghost "

# The writer: posts {"n":1}, {"n":2}, ... to the core one at a time, and appends each n the
# core acknowledged (201) to acked, until the file stop exists.
writer() {
  local n=0 code
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    code=$(in_core curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' -d "{\"n\":$n}" "$core_url/messages" || true)
    if [ "$code" = 201 ]; then echo "$n" >>"$work/acked"; else echo "n=$n: HTTP $code" >&2; fi
  done
}
: >"$work/acked"
writer 2>"$work/writer.err" &
writer_pid=$!
pids+=("$writer_pid")

acked_count() { wc -l <"$work/acked"; }
received() { sed -n 's/^data: .*"fullDocument":{.*"n":\([0-9]*\)[,}].*/\1/p' "$work/sse.out"; }
received_count() { received | wc -l; }
at_least() { [ "$("$1")" -ge "$2" ]; }
wait_for 10 "20 writes acknowledged" at_least acked_count 20
wait_for 10 "the client to receive 10 events" at_least received_count 10

# The partition: both ends down, held for 3 s (3 cluster timeouts).
cut_at=$SECONDS
in_edge ip link set "$edge_if" down
in_core ip link set "$core_if" down
acked_at_cut=$(acked_count)
wait_for 5 "the edge to see its link down" link_is 0
wait_for 5 "the core to drop the cut-off edge's members" core_lists ""
kill "$ghost_pid" # leaves while nobody can tell the core
code=$(in_edge curl -s -m 5 -o "$work/probe.body" -w '%{http_code}' -X POST \
  -H 'Content-Type: application/json' -d '{"probe":"edge"}' "$edge_url/messages" || true)
[ "$code" = 503 ] || fail "a write to the edge during the partition got HTTP $code, not 503"
grep -q '"' "$work/probe.body" || fail "the 503 during the partition has no JSON body"
sleep $((3 - (SECONDS - cut_at) > 0 ? 3 - (SECONDS - cut_at) : 0)) # hold the partition
wait_for 5 "writes during the partition" at_least acked_count $((acked_at_cut + 10))
link_up
wait_for 15 "the edge's link to be up again" link_is 1
acked_at_restore=$(acked_count)
wait_for 10 "20 writes after the partition" at_least acked_count $((acked_at_restore + 20))
wait_for 10 "edgy listed again on the core, ghost not" core_lists "edgy "
wait_for 10 "edgy listed again on the edge, ghost not" edge_lists "edgy "
touch "$work/stop"
wait "$writer_pid" || true
last=$(tail -1 "$work/acked")
last_received() { [ "$(received | tail -1)" = "$last" ]; }
wait_for 15 "the client to receive write $last" last_received

# Every acknowledged n exactly once and in order (an n the core did not acknowledge may
# appear, at most once, in its place).
received >"$work/received"
sort -n -c -u "$work/received" 2>/dev/null ||
  fail "events repeated or out of order: $(uniq -d "$work/received" | head -5 | tr '\n' ' ')"
missing=$(comm -23 <(sort "$work/acked") <(sort "$work/received") | sort -n | head -5 | tr '\n' ' ')
[ -z "$missing" ] || fail "acknowledged writes missing at the client: $missing"
kill -0 "$sse_pid" 2>/dev/null || fail "the SSE client's connection closed"
[ "$(grep -c '^HTTP/' "$work/sse.headers")" -eq 1 ] || fail "the SSE client reconnected"
reconnects=$(in_edge curl -s -m 2 "$edge_url/_metrics" |
  sed -n 's/^rheo_cluster_reconnects_total{.*} \([0-9]*\)$/\1/p')
core_lists "edgy " || fail "after the partition the core lists: $(core_members)"
echo "PASS: $(acked_count) acknowledged writes ($acked_at_cut before the cut, $((acked_at_restore - \
acked_at_cut)) during it), all received once and in order over one SSE connection; edge" \
  "reconnects: $reconnects; presence: the core dropped the edge's members during the cut and lists" \
  "edgy once after it"
