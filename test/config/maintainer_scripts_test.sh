#!/usr/bin/env bash
# The Debian package's maintainer scripts (config/debian/), run as dpkg runs them, in a
# private mount namespace where /var/lib and /run are scratch folders and the system
# commands they call (adduser, deluser, getent, install, deb-systemd-helper,
# deb-systemd-invoke, systemctl) are stand-ins that log their arguments:
# - postinst configure creates the system user rheo and /var/lib/rheo, enables and starts
#   the unit; on an upgrade it keeps the user and restarts the unit;
# - prerm remove stops the unit; postrm remove keeps the data; postrm purge deletes it and
#   the user.
# Usage: maintainer_scripts_test.sh <config/debian folder>. Needs root and unshare(1) (mount
# namespaces); exits 77 (skipped) without.
set -euo pipefail
scripts=$(cd "$1" && pwd)

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: a mount namespace needs CAP_SYS_ADMIN"
command -v unshare >/dev/null || skip "no unshare(1)"
unshare --mount true 2>/dev/null || skip "unshare --mount is not permitted here"

work=$(mktemp -d /tmp/rheo-maint-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/varlib" "$work/run/systemd/system"

# Stand-ins: each logs "name args" to $work/calls; user state is the file $work/user.
for cmd in adduser deluser delgroup getent install deb-systemd-helper deb-systemd-invoke \
  systemctl; do
  cat >"$work/bin/$cmd" <<STUB
#!/bin/sh
echo "$cmd \$*" >>"$work/calls"
case "$cmd" in
  adduser) touch "$work/user" ;;
  deluser) rm -f "$work/user" ;;
  getent) [ -f "$work/user" ] || exit 2 ;;
  install) for a in "\$@"; do last=\$a; done; mkdir -p "\$last" ;;
esac
exit 0
STUB
  chmod +x "$work/bin/$cmd"
done

cat >"$work/run.sh" <<EOF2
set -euo pipefail
mount --bind "$work/varlib" /var/lib
mount --bind "$work/run" /run
export PATH="$work/bin:\$PATH"
fail() { echo "FAIL: \$*"; echo "--- calls"; cat "$work/calls" 2>/dev/null; exit 1; }
called() { grep -qxF -- "\$1" "$work/calls" || fail "not called: \$1"; }
not_called() { ! grep -q -- "\$1" "$work/calls" || fail "called: \$1"; }
step() { : >"$work/calls"; echo "== \$*"; sh "$scripts/\$1" "\${@:2}"; }

step postinst configure
called "adduser --system --group --quiet --home /var/lib/rheo --no-create-home --gecos rheo realtime data server rheo"
called "install -d -m 0750 -o rheo -g rheo /var/lib/rheo"
[ -d /var/lib/rheo ] || fail "no /var/lib/rheo"
called "deb-systemd-helper enable rheo.service"
called "systemctl --system daemon-reload"
called "deb-systemd-invoke start rheo.service"

echo data >/var/lib/rheo/rheo.db
step postinst configure 0.1.0
not_called adduser
not_called "install "
called "deb-systemd-invoke restart rheo.service"

step prerm remove
called "deb-systemd-invoke stop rheo.service"
step prerm upgrade 0.1.1
not_called "deb-systemd-invoke"

step postrm remove
[ -f /var/lib/rheo/rheo.db ] || fail "postrm remove deleted the data"
called "deb-systemd-helper mask rheo.service"
not_called deluser

step postrm purge
[ ! -e /var/lib/rheo ] || fail "postrm purge kept /var/lib/rheo"
called "deb-systemd-helper purge rheo.service"
called "deluser --system --quiet rheo"
EOF2
unshare --mount --propagation private bash "$work/run.sh"
[ ! -e "$work/varlib/rheo" ] || { echo "FAIL: the namespace's /var/lib/rheo remains"; exit 1; }
echo "maintainer_scripts_test: ok"
