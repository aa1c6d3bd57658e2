#!/usr/bin/env bash
# The full test suite, as CI runs it:
#   1. release build: every GoogleTest suite via CTest (unit, ABI, gateway, simulator, integration);
#   2. ASan+UBSan build: the whole suite again;
#   3. every libFuzzer target for a bounded time under ASan+UBSan (clang), from the seed corpus
#      (CWC_FUZZ_SECONDS per target, default 10; scripts/fuzz.sh);
#   4. TSan build: the concurrent suites (stream table, ABI threads, gateway parts, integration).
# Installs missing Debian packages first (scripts/setup.sh), so it works on a fresh machine.
#   scripts/test.sh [--quick]   (--quick: release build only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
jobs=$(nproc)

run_ctest() {  # run_ctest <flavour> [ctest args...]
  local flavour=$1
  shift
  echo "== ctest ($flavour)" >&2
  ctest --test-dir "$root/build/$flavour" --output-on-failure -j "$jobs" --timeout 300 "$@"
}

"$root/scripts/build.sh" release
run_ctest release

if ((!quick)); then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  "$root/scripts/build.sh" asan
  run_ctest asan

  echo "== fuzz (${CWC_FUZZ_SECONDS:-10} s per target)" >&2
  "$root/scripts/fuzz.sh" "${CWC_FUZZ_SECONDS:-10}"

  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp"
  "$root/scripts/build.sh" tsan
  # Newer kernels randomise mmap more than TSan of GCC 12 tolerates: run without ASLR.
  setarch "$(uname -m)" -R true 2>/dev/null && tsan_prefix=(setarch "$(uname -m)" -R) || tsan_prefix=()
  "${tsan_prefix[@]}" ctest --test-dir "$root/build/tsan" --output-on-failure -j "$jobs" --timeout 300 \
    -R 'MessageCryptoThreads|StreamTable|UserLanes|Protocol|Abi|Instance|Gateway|Router|Integration|Sim|FileStore|PluginLoader|EchoAgent|OpenAi|Sse'
fi
