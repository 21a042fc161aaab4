#!/usr/bin/env bash
# The Debian package of this build folder (`cpack -G DEB`, into a scratch folder):
# - its files, the conffile /etc/rheo/rheo.json, the maintainer scripts;
# - Depends: adduser and the package of every shared library the binary links (NEEDED);
# - the unit passes `systemd-analyze verify` (its paths pointed into the extracted tree);
# - extracted into a scratch root, the packaged binary with the packaged config serves the
#   packaged chat app and the REST API (data_dir overridden by --data-dir: flags beat the
#   config file, and /var/lib/rheo is not ours to write).
# Usage: package_test.sh <build folder>. Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev),
# systemd-analyze (systemd), curl.
build=$1
source "$(dirname "$0")/install_support.sh"

(cd "$build" && cpack -G DEB -B "$work/cpack") >"$work/cpack.log" 2>&1 ||
  fail "cpack: $(cat "$work/cpack.log")"
deb=$(ls "$work"/cpack/rheo_*_*.deb)
[ -f "$deb" ] || fail "no .deb in $work/cpack"

# Files.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in /usr/bin/rheo /usr/share/rheo/web/index.html /usr/share/rheo/web/app.js \
  /usr/share/rheo/web/chat-core.js /usr/share/rheo/web/style.css /etc/rheo/rheo.json \
  /usr/lib/systemd/system/rheo.service /usr/share/doc/rheo/README.md \
  /usr/share/doc/rheo/example.json; do
  grep -qx "$f" "$work/files" || fail "$f is not in the package: $(cat "$work/files")"
done
# Nothing in /var: the data directory is made by postinst and systemd (StateDirectory).
! grep -q '^/var' "$work/files" || fail "the package ships files in /var"

# Control: the conffile, the maintainer scripts.
dpkg-deb -e "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/rheo/rheo.json ] ||
  fail "conffiles: $(cat "$work/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no executable $s"
  sh -n "$work/control/$s" || fail "$s is not valid sh"
done
grep -q 'adduser --system --group .*--home /var/lib/rheo' "$work/control/postinst" ||
  fail "postinst does not create the system user rheo"
# /var/lib/rheo is removed in the purge branch of postrm, and nowhere else.
awk '/^  purge\)/{p=1} /;;/{p=0} /rm -rf \/var\/lib\/rheo/{print p}' "$work/control/postrm" \
  >"$work/rm_lines"
[ "$(cat "$work/rm_lines")" = 1 ] || fail "postrm removes /var/lib/rheo outside purge"

# Depends: adduser, and the package of each library the binary links directly.
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
echo ", $depends," | grep -q ', adduser,' || fail "Depends lacks adduser"
mkdir -p "$work/root"
dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin/rheo
needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}')
[ -n "$needed" ] || fail "no NEEDED entries in the packaged binary"
for lib in $needed; do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$path" ] || fail "ldd does not resolve $lib"
  # dpkg knows a library by the path its package ships: /lib/... or /usr/lib/...
  pkg=$( (dpkg -S "$path" || dpkg -S "${path#/usr}" || dpkg -S "/usr$path") 2>/dev/null |
    head -1 | cut -d: -f1)
  [ -n "$pkg" ] || fail "no package owns $path"
  echo ", $depends," | grep -q ", $pkg[ ,]" || fail "Depends lacks $pkg (for $lib)"
done

# The unit: systemd's own check. ExecStart must exist, so it points into the extracted tree.
unit=$work/root/usr/lib/systemd/system/rheo.service
grep -qx 'ExecStart=/usr/bin/rheo --config /etc/rheo/rheo.json' "$unit" ||
  fail "ExecStart: $(grep ExecStart "$unit")"
for line in Type=notify User=rheo ReadWritePaths=/var/lib/rheo NoNewPrivileges=yes \
  ProtectSystem=strict PrivateTmp=yes LimitNOFILE=65536 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
mkdir "$work/unit"
sed "s|^ExecStart=/usr/bin/rheo |ExecStart=$bin |" "$unit" >"$work/unit/rheo.service"
(cd "$work/unit" && systemd-analyze verify "$work/unit/rheo.service") >"$work/verify.log" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$work/verify.log")"
[ ! -s "$work/verify.log" ] || fail "systemd-analyze verify warns: $(cat "$work/verify.log")"

# The packaged binary with the packaged config, in the extracted tree; the chat app marked
# so that it cannot be the source tree's.
echo "<!-- packaged copy $$ -->" >>"$work/root/usr/share/rheo/web/index.html"
mkdir "$work/data"
start_rheo "$bin" --config "$work/root/etc/rheo/rheo.json" --data-dir "$work/data"
grep -q "rheo listening on http://127.0.0.1:" "$work/rheo.out" ||
  fail "the packaged config's bind is not 127.0.0.1: $(cat "$work/rheo.out")"
check_serves "$work/root/usr/share/rheo/web" "$work/data"
stop_rheo

echo "package_test: ok ($(stat -c %s "$deb") bytes)"
