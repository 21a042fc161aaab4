# Shared by install_test.sh and package_test.sh (sourced): a scratch folder removed on exit,
# a rheo process started from an installed tree, and the checks of what it serves.
# Needs: curl. Sets: work (the scratch folder).
set -euo pipefail

work=$(mktemp -d /tmp/rheo-install-test.XXXXXX)
rheo_pid=""
cleanup() {
  if [ -n "$rheo_pid" ]; then
    kill -KILL "$rheo_pid" 2>/dev/null || true
    wait "$rheo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  [ -s "$work/rheo.out" ] && { echo "--- rheo output"; tail -20 "$work/rheo.out"; }
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

# start_rheo BINARY ARGS...: runs it on a free port (--port 0) with its output in
# $work/rheo.out; sets rheo_port once it prints the port it listens on.
start_rheo() {
  # Emptied here, not only by the redirection in the child: the wait below must not find
  # an earlier run's line before the child has truncated the file.
  : >"$work/rheo.out"
  "$@" --port 0 >"$work/rheo.out" 2>&1 &
  rheo_pid=$!
  wait_for 30 "rheo to listen" grep -q "rheo listening on" "$work/rheo.out"
  rheo_port=$(sed -n 's/^rheo listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$work/rheo.out")
  [ -n "$rheo_port" ] || fail "no port in: $(cat "$work/rheo.out")"
}

# stop_rheo: SIGTERM, then its exit status must be 0.
stop_rheo() {
  kill -TERM "$rheo_pid"
  local status=0
  wait "$rheo_pid" || status=$?
  rheo_pid=""
  [ "$status" -eq 0 ] || fail "rheo exited with $status after SIGTERM"
}

# check_serves WEB_DIR DATA_DIR: the running rheo serves WEB_DIR's index.html as the chat
# page (a browser's GET / goes there), and the chat's REST API stores in DATA_DIR.
check_serves() {
  local web=$1 data=$2
  local location
  location=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Accept: text/html' \
    "http://127.0.0.1:$rheo_port/")
  [ "$location" = "302 http://127.0.0.1:$rheo_port/chat/" ] || fail "GET / answered '$location'"
  curl -sf "http://127.0.0.1:$rheo_port/chat/" >"$work/page.html" || fail "GET /chat/ failed"
  cmp -s "$work/page.html" "$web/index.html" || fail "GET /chat/ is not $web/index.html"
  local code
  code=$(curl -s -o "$work/post.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d '{"message":"installed","from":"test"}' \
    "http://127.0.0.1:$rheo_port/messages")
  [ "$code" = 201 ] || fail "POST /messages answered $code: $(cat "$work/post.json")"
  curl -sf "http://127.0.0.1:$rheo_port/messages" >"$work/messages.json" || fail "GET /messages"
  grep -q '"message":"installed"' "$work/messages.json" ||
    fail "GET /messages lacks the message: $(cat "$work/messages.json")"
  [ -n "$(ls -A "$data")" ] || fail "nothing stored in $data"
}
