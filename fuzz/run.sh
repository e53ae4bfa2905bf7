#!/usr/bin/env bash
# Builds every fuzz target and runs each one, one after another, for SECONDS seconds on its
# seed corpus. Exits non-zero if any target crashes (or fails its assertions).
#
#   bash fuzz/run.sh 60
#
# New corpus entries go to fuzz/corpus/.scratch/<target> (gitignored); the committed seeds in
# fuzz/corpus/<target>/seed-* are only read. Crashing inputs land in fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: bash fuzz/run.sh SECONDS" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")"
# cargo-fuzz needs nightly-only flags (sanitizers); this lets the stable toolchain take them.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The lock file is part of the tree: a stale one would be rewritten by the build and leave
# the checkout dirty. `cargo fuzz build` has no --locked, so check it first.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build

logs=target/fuzz-logs
mkdir -p "$logs"
failed=()
summary=()
for target in $(cargo fuzz list); do
    scratch="corpus/.scratch/$target"
    mkdir -p "$scratch" "corpus/$target"
    log="$logs/$target.log"
    echo "== $target: ${secs}s"
    if cargo fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
        summary+=("$target: $last")
    else
        echo "!! $target FAILED; end of $log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$target")
        summary+=("$target: FAILED (see $log and artifacts/$target/)")
    fi
done

echo
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
