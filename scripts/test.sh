#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: the normal build, then
# the same tests built with AddressSanitizer and UndefinedBehaviorSanitizer, then short runs
# of the libFuzzer targets (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase prints how long it took.
phase_start=$SECONDS
phase_name=""
phase() {
  [ -z "$phase_name" ] || echo "== $phase_name: $((SECONDS - phase_start)) s"
  phase_name=$1
  phase_start=$SECONDS
  [ -z "$phase_name" ] || echo "== $phase_name"
}
phase "setup"
bash scripts/setup.sh
jobs=$(nproc)

phase "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRHEO_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
phase "tests"
ctest --test-dir build --output-on-failure -j "$jobs"

phase "build (ASan+UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 -DRHEO_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
phase "tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
phase "fuzz (short runs under ASan)"
bash scripts/fuzz.sh
phase ""
echo "== total: ${SECONDS} s"
