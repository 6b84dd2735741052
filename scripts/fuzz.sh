#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) from the committed seeds, on the stable
# toolchain (RUSTC_BOOTSTRAP lets it take cargo-fuzz's -Zsanitizer flag). Installs cargo-fuzz
# when missing. New corpus entries go to fuzz/corpus (ignored by git); a crash fails the run
# and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target found a crash (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  echo "fuzz: $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1), no crash"
  rm -f "$log"
done
