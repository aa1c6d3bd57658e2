#!/usr/bin/env bash
# Compares two builds of cwc_core_bench on this machine, alternating them so that a noisy
# neighbour (steal time on a shared VM) hits both alike, and prints each benchmark's minimum and
# median over every repetition of every round.
#
#   bench/core_ab.sh <old cwc_core_bench> <new cwc_core_bench> [rounds] [filter]
#     rounds: alternating runs of each binary (default 4), each 5 repetitions of 0.2 s
#     filter: --benchmark_filter regex (default 'InstanceHandleRefresh$|OpenSslFloor')
#
# The old binary usually comes from a worktree: git worktree add /tmp/old <rev>, then
# cmake -S /tmp/old -B /tmp/old/build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo and
# ninja -C /tmp/old/build bench/cwc_core_bench.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
old_bin=$1
new_bin=$2
rounds=${3:-4}
filter=${4:-'InstanceHandleRefresh$|OpenSslFloor'}
for bin in "$old_bin" "$new_bin"; do
  [[ -x "$bin" ]] || { echo "core_ab: $bin is not an executable" >&2; exit 2; }
done

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for _ in $(seq "$rounds"); do
  for side in old new; do
    bin=$old_bin
    [[ $side == new ]] && bin=$new_bin
    # One line per repetition: "<side> <benchmark> <ns>" (aggregate rows skipped).
    "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.2 --benchmark_repetitions=5 2>/dev/null |
      awk -v side="$side" '/^BM_/ && !/_(mean|median|stddev|cv) / {print side, $1, $2}' >>"$samples"
  done
done

echo "| benchmark | old min | old median | new min | new median | new/old (medians) |"
echo "| --- | --- | --- | --- | --- | --- |"
sort -k2,2 -k1,1 -k3,3n "$samples" | awk '
  { key = $2 SUBSEP $1; n[key]++; v[key, n[key]] = $3; names[$2] = 1 }
  function stat(name, side, which,   key) {
    key = name SUBSEP side
    if (!(key in n)) return "-"
    return which == "min" ? v[key, 1] : v[key, int((n[key] + 1) / 2)]
  }
  END {
    for (name in names) {
      om = stat(name, "old", "median"); nm = stat(name, "new", "median")
      ratio = (om != "-" && nm != "-" && om > 0) ? sprintf("%.2f", nm / om) : "-"
      printf "| %s | %s | %s | %s | %s | %s |\n", name, stat(name, "old", "min"), om, stat(name, "new", "min"), nm, ratio
    }
  }' | sort
echo "(ns per iteration; $rounds alternating rounds x 5 repetitions per side)"
