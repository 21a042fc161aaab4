#!/usr/bin/env bash
# Installs every Debian package rheo's build, tests and benchmarks need.
# Idempotent: installs only what is missing; runs apt-get update when the lists are absent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl
  libcaf-dev libboost-dev libboost-test-dev libboost-program-options-dev
  libmongoc-dev libbson-dev rapidjson-dev libsqlite3-dev libsodium-dev libssl-dev
  python3 python3-mockupdb python3-websocket
)

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
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
