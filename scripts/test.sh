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
# The tests wait on sockets and child processes far more than they compute: CTest runs
# twice as many at once as there are cores.
test_jobs=$((jobs * 2))

phase "build (RelWithDebInfo)"
# As scripts/run.sh configures it: what it built is reused here.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRHEO_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
phase "tests"
ctest --test-dir build --output-on-failure -j "$test_jobs"
# The JavaScript client packs (its tests ran in ctest): the tarball goes to a temporary folder.
pack_dir=$(mktemp -d)
(cd web/rheo-client && npm pack --silent --pack-destination "$pack_dir" >/dev/null)
echo "npm pack: web/rheo-client -> $(ls "$pack_dir")"
rm -rf "$pack_dir"

phase "build (ASan+UBSan)"
# -O0 with line tables only (-g1: the sanitizers' reports name every function and line):
# the sanitizer build compiles in half the time of -O1 -g, which costs the tests far less.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" \
  -DRHEO_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
phase "tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$test_jobs"
phase "fuzz (short runs under ASan)"
bash scripts/fuzz.sh
phase ""
echo "== total: ${SECONDS} s"
