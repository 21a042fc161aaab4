#!/usr/bin/env bash
# Installs what is missing, builds rheo and runs it on the embedded store, with the chat
# app at http://localhost:8080/chat/. Extra arguments go to rheo (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The same configuration as scripts/test.sh, which then reuses every object built here.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRHEO_WERROR=ON >/dev/null
cmake --build build --target rheo
exec ./build/rheo "$@"
