#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time each and prints how many
# inputs each ran and whether it found anything.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [MAX_RUNS] [TARGET...]
#
# Defaults: 1800 s or 10,000,000 runs per target, whichever comes first; all
# targets. A crash is kept by libFuzzer under fuzz/artifacts/<target>/; turn
# it into a regression test beside the parser it broke before fixing it.
#
# cargo-fuzz builds with nightly compiler flags (`-Zsanitizer=address`); the
# toolchain here is stable, so the build sets RUSTC_BOOTSTRAP=1, which lets a
# stable compiler accept them. The corpus grows under target/fuzz-corpus/,
# seeded from fuzz/seeds/ (real replies, shipped profiles and inventory).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-1800}"
runs="${2:-10000000}"
shift $(( $# > 2 ? 2 : $# ))
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

export RUSTC_BOOTSTRAP=1
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/fuzz}"
cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -O
summary=()
for t in "${targets[@]}"; do
    corpus="$root/target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    log="$root/target/fuzz-corpus/$t.log"
    status=ok
    cargo fuzz run -O "$t" "$corpus" -- \
        -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status="FAILED (see $log and fuzz/artifacts/$t/)"
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n1)
    secs=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -n1)
    summary+=("$(printf '%-22s %12s runs  %8s exec/s  %s  %s' "$t" "${execs:-?}" "${secs:-?}" "$status" "$done_line")")
done
printf '%s\n' "${summary[@]}"
