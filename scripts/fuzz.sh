#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, coverage-guided
# by libFuzzer through cargo-fuzz, on the stable toolchain: `-s none` turns
# the sanitizer off, which is what needs nightly.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and past
# crashes (fuzz/regressions/TARGET); what it learns is kept between runs in
# target/fuzz/corpus/TARGET. A crash stops the run with its input saved in
# fuzz/artifacts/TARGET/: fix it, then copy the input into
# fuzz/regressions/TARGET/, where `just test` replays it from then on.
# The table at the end is also written to target/fuzz/summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^fuzz$')
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

flags=(-s none --features libfuzzer)
# One build for all targets (they share the whole stack); `cargo fuzz run`
# below then finds them up to date.
if [ ${#targets[@]} -eq 1 ]; then
  cargo fuzz build "${flags[@]}" "${targets[0]}"
else
  cargo fuzz build "${flags[@]}"
fi

mkdir -p target/fuzz
rows=()
total=0
for target in "${targets[@]}"; do
  corpus="target/fuzz/corpus/$target"
  mkdir -p "$corpus"
  extra=("fuzz/seeds/$target")
  [ -d "fuzz/regressions/$target" ] && extra+=("fuzz/regressions/$target")
  log="target/fuzz/$target.log"
  echo "fuzzing $target for ${seconds}s"
  status=0
  # -timeout: an input that takes 10 s is a hang, reported like a crash.
  cargo fuzz run "${flags[@]}" "$target" "$corpus" "${extra[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  runs=${runs:-0}
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  inputs=$(find "$corpus" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "$target: CRASH (exit $status); the input is in fuzz/artifacts/$target/, the log in $log" >&2
    exit 1
  fi
  total=$((total + runs))
  rows+=("{\"target\":\"$target\",\"seconds\":$seconds,\"executions\":$runs,\"coverage\":${coverage:-0},\"corpus\":$inputs,\"crashes\":0}")
  printf '  %-16s %12s executions  %6s/s  coverage %5s  corpus %5s  crashes 0\n' \
    "$target" "$runs" "$((runs / seconds))" "${coverage:-?}" "$inputs"
done

printf '[%s]\n' "$(IFS=,; echo "${rows[*]}")" >target/fuzz/summary.json
echo "fuzz: ${#targets[@]} targets, $total executions, 0 crashes ($(date -u +%Y-%m-%d), $(nproc) cores)"
