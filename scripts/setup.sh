#!/usr/bin/env bash
# Installs every Debian package rheo's build, tests and benchmarks need (dpkg-dev, file:
# cpack's dependency list of the .deb; systemd: systemd-analyze for the unit's test; nginx: the
# reverse proxy of the trusted-proxies test, which starts its own; the package's service is
# not started by the install).
# Idempotent: installs only what is missing; runs apt-get update when the lists are absent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ccache
  clang-14 libclang-rt-14-dev
  libcaf-dev libboost-dev libboost-test-dev libboost-program-options-dev
  libmongoc-dev libbson-dev rapidjson-dev libsqlite3-dev libsodium-dev libssl-dev libjemalloc-dev
  python3 python3-mockupdb python3-websocket python3-prometheus-client
  openssl iproute2 nginx
  dpkg-dev file systemd
  chromium nodejs
)
# npm: Debian's package only when no npm came with nodejs (NodeSource's nodejs bundles it
# and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ] \
     || ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    $sudo_cmd apt-get update -q
  fi
  # Packages install without starting their services (nginx would take port 80): a
  # policy-rc.d that refuses, for the install only, unless the machine has one.
  policy=/usr/sbin/policy-rc.d
  own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
    $sudo_cmd chmod 755 "$policy"
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { [ -z "$own_policy" ] || $sudo_cmd rm -f "$policy"; exit 1; }
  [ -z "$own_policy" ] || $sudo_cmd rm -f "$policy"
else
  echo "setup: all packages present"
fi

# npm packages: the browser tests' (test/web: playwright-core drives Debian's chromium) and
# the JavaScript client's devDependencies (web/rheo-client: ws and typescript). Installs
# only when node_modules is missing or older than the lock file.
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
for npm_dir in test/web web/rheo-client; do
  dir="$repo_root/$npm_dir"
  [ -f "$dir/package-lock.json" ] || continue
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] \
     || [ "$dir/package.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: installing npm packages of $npm_dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
  else
    echo "setup: npm packages of $npm_dir present"
  fi
done
