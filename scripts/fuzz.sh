#!/usr/bin/env bash
# The libFuzzer targets of test/fuzz: builds them in build-fuzz (clang-14, ASan+UBSan, see
# RHEO_FUZZ in CMakeLists.txt), replays every input of test/fuzz/regressions/<target>/, then
# runs each target for a fixed number of runs over a copy of its seed corpus
# (test/fuzz/corpus/<target>/; the copy lives in a temporary directory, the repository is
# never written). Fails on the first crash, leak, sanitizer report or timeout, printing the
# input that caused it.
#
# Usage: scripts/fuzz.sh [target...]   (default: every target)
# Environment: RHEO_FUZZ_RUNS (default 20000) runs per target.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RHEO_FUZZ_RUNS:-20000}
jobs=$(nproc)

# -O1 with line tables only, as libFuzzer's documentation suggests: the fuzz build compiles
# most of the libraries, and at -O2 -g takes twice as long for runs that are short anyway.
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" -DRHEO_FUZZ=ON -DRHEO_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzzers

targets=("$@")
if ((${#targets[@]} == 0)); then
  for d in test/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

show_input() {
  echo "fuzz: input that failed ($1), base64:"
  base64 "$1" || true
}

for t in "${targets[@]}"; do
  bin=build-fuzz/test/fuzz/$t
  start=$SECONDS
  # Crashes found earlier: each must now pass (libFuzzer runs the given files once).
  if compgen -G "test/fuzz/regressions/$t/*" >/dev/null; then
    for f in test/fuzz/regressions/"$t"/*; do
      if ! "$bin" -timeout=10 "$f" >"$work/$t.replay.log" 2>&1; then
        tail -n 60 "$work/$t.replay.log"
        show_input "$f"
        echo "fuzz: $t: regression $f fails"
        exit 1
      fi
    done
  fi
  dict=()
  case $t in
  http_fuzz) dict=(-dict=test/fuzz/http.dict) ;;
  json_fuzz | query_fuzz | update_fuzz | stream_fuzz) dict=(-dict=test/fuzz/document.dict) ;;
  esac
  mkdir -p "$work/$t/corpus"
  cp test/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  # A fixed seed: the same runs every time, so that CI fails only on a change of the code.
  if ! "$bin" "${dict[@]}" -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/$t/" "$work/$t/corpus" >"$work/$t.log" 2>&1; then
    grep -v '^#' "$work/$t.log" | tail -n 80
    for f in "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-*; do
      [ -e "$f" ] && show_input "$f"
    done
    echo "fuzz: $t failed (reproduce: $bin <input>)"
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
  echo "fuzz: $t: ${execs:-?} runs ok in $((SECONDS - start)) s"
done
