#!/usr/bin/env bash
# Runs the whole test suite: builds everything in release mode, runs every package's tests,
# the color-invariant stress test (COLORED_STRESS_EVENTS events per configuration, default
# 10^6) and the loom model of the post/steal protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_deps

echo ">> cargo build --release (every binary)"
cargo build --release --workspace --locked

echo ">> cargo test (workspace)"
cargo test --workspace --locked

if [ -f runtime/tests/loom.rs ]; then
    echo ">> loom model of the post/steal protocol"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p colored-runtime --test loom --release --locked
fi
echo ">> all tests passed"
