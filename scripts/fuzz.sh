#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for a while; fail on any crash.
#
# Usage:
#   ./scripts/fuzz.sh [SECONDS]       each target for SECONDS (default 30)
#   FUZZ_TARGETS="permissions" ./scripts/fuzz.sh 60
#                                     only the listed targets
#
# Installs cargo-fuzz with `cargo install cargo-fuzz --locked` when missing.
# cargo-fuzz wants a nightly toolchain (for -Zsanitizer); on stable the run
# uses RUSTC_BOOTSTRAP=1, which unlocks the same flags. The build goes to
# fuzz/target (its own target dir, gitignored).
#
# The committed seeds in fuzz/corpus/<target>/ are read but never written:
# inputs libFuzzer finds go to fuzz/target/corpus/<target>/ (kept between
# runs, gitignored). A crash leaves its input in fuzz/artifacts/<target>/;
# reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
# and, once fixed, copy the input into fuzz/corpus/<target>/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

seconds=${1:-30}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# Keep the fuzz build out of the workspace's target dir even when the
# caller exported CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="$REPO/fuzz/target"

if [[ -n ${FUZZ_TARGETS:-} ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

failed=()
for target in "${targets[@]}"; do
    scratch="fuzz/target/corpus/$target"
    mkdir -p "$scratch"
    corpora=("$scratch")
    if [[ -d fuzz/corpus/$target ]]; then
        corpora+=("fuzz/corpus/$target")
    fi
    echo "==> fuzz $target for ${seconds}s"
    # The first corpus directory receives new inputs; the seeds stay as
    # committed. -timeout and -rss_limit_mb turn hangs and memory blow-ups
    # into failures too.
    if ! cargo fuzz run --fuzz-dir fuzz "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
