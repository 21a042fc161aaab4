#!/usr/bin/env bash
# `cmake --install` of this build folder into a scratch DESTDIR (prefix /opt/rheo): the
# files land where config/install.cmake says, the unit and the config name this prefix,
# and the installed binary, run with the installed config, serves the installed chat app
# (marked, so that it cannot be the source tree's) and the REST API; a static_dir still
# wins over it.
# Usage: install_test.sh <build folder>.
build=$1
source "$(dirname "$0")/install_support.sh"

root=$work/root
prefix=/opt/rheo
DESTDIR=$root cmake --install "$build" --prefix "$prefix" --strip >"$work/install.log" ||
  fail "cmake --install: $(cat "$work/install.log")"
p=$root$prefix

for f in bin/rheo share/rheo/web/index.html share/rheo/web/app.js share/rheo/web/chat-core.js \
  share/rheo/web/style.css share/doc/rheo/README.md share/doc/rheo/example.json \
  etc/rheo/rheo.json lib/systemd/system/rheo.service; do
  [ -f "$p/$f" ] || fail "not installed: $prefix/$f"
done
[ -x "$p/bin/rheo" ] || fail "$prefix/bin/rheo is not executable"
# Nothing outside the prefix (the config goes to /etc only for the prefix /usr).
outside=$(cd "$root" && find . -mindepth 1 -maxdepth 1 ! -name opt)
[ -z "$outside" ] || fail "installed outside $prefix: $outside"
unit=$p/lib/systemd/system/rheo.service
grep -qx "ExecStart=$prefix/bin/rheo --config $prefix/etc/rheo/rheo.json" "$unit" ||
  fail "ExecStart of the unit: $(grep ExecStart "$unit")"

# The help serves as the manual page: commands, files, signals, exit status, every key.
"$p/bin/rheo" --help >"$work/help.txt"
for section in "hash-password" "files:" "signals:" "environment:" "exit status:" \
  "NOTIFY_SOCKET" "/etc/rheo/rheo.json" "share/rheo/web"; do
  grep -q -- "$section" "$work/help.txt" || fail "--help lacks '$section'"
done

# The installed chat app, marked: the binary must serve this copy, not the source tree's.
echo "<!-- installed copy $$ -->" >>"$p/share/rheo/web/index.html"
mkdir "$work/data"
start_rheo "$p/bin/rheo" --config "$p/etc/rheo/rheo.json" --data-dir "$work/data"
grep -q "rheo listening on http://127.0.0.1:" "$work/rheo.out" ||
  fail "the installed config's bind is not 127.0.0.1: $(cat "$work/rheo.out")"
check_serves "$p/share/rheo/web" "$work/data"
stop_rheo

# static_dir beats the installed app.
mkdir -p "$work/other" "$work/data2"
echo "<html>other $$</html>" >"$work/other/index.html"
start_rheo "$p/bin/rheo" --config "$p/etc/rheo/rheo.json" --data-dir "$work/data2" \
  --static-dir "$work/other"
check_serves "$work/other" "$work/data2"
stop_rheo

echo "install_test: ok"
