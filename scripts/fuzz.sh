#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) into build/fuzz and runs each one for a
# while over a scratch copy of its seed corpus (build/fuzz/work/<target>; the repo corpus is only
# read). Exits non-zero on the first target that crashes, leaks, hits UB or times out, and prints
# the crashing input's path; add that file to tests/fuzz/corpus/<target>/ once it is fixed.
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default 30 s, every target)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
build="$root/build/fuzz"

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool missing (scripts/setup.sh installs it)" >&2; exit 2; }
done
if ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz: libFuzzer runtime missing: install libclang-rt-14-dev (scripts/setup.sh)" >&2
  exit 2
fi

all_targets=(fuzz_query fuzz_request_envelope fuzz_reply_envelope fuzz_decrypt fuzz_message fuzz_config
             fuzz_handle fuzz_handle_signed)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCWC_BUILD_FUZZERS=ON -DCWC_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

# Per-target input size bound and dictionary.
max_len_of() {
  case "$1" in
    fuzz_query) echo 1024 ;;
    fuzz_decrypt) echo 2048 ;;
    fuzz_config) echo 4096 ;;
    fuzz_handle) echo 8192 ;;
    *) echo 4096 ;;
  esac
}
dict_of() {
  case "$1" in
    fuzz_query) echo query ;;
    fuzz_request_envelope | fuzz_reply_envelope | fuzz_handle) echo envelope ;;
    fuzz_message | fuzz_handle_signed) echo message ;;
    fuzz_config) echo config ;;
    *) echo "" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  work="$build/work/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  args=(-max_total_time="$seconds" -max_len="$(max_len_of "$t")" -timeout=20 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  dict=$(dict_of "$t")
  [[ -n "$dict" ]] && args+=(-dict="$root/tests/fuzz/dict/$dict.dict")
  echo "== $t (${seconds}s)" >&2
  log="$build/$t.log"
  if ! "$build/tests/fuzz/$t" "${args[@]}" "$work" >"$log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED; log: $log" >&2
    grep -E "^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|Test unit written|artifact_prefix)" "$log" >&2 || tail -20 "$log" >&2
    for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/leak-* "$artifacts"/oom-* "$artifacts"/slow-unit-*; do
      [[ -e "$f" ]] && echo "fuzz: crashing input: $f" >&2
    done
    continue
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE" "$log" | tr '\n' ' ' >&2
  echo >&2
done
exit $status
