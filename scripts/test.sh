#!/usr/bin/env bash
# Runs the whole test suite: builds everything in release mode, runs every package's tests,
# the color-invariant stress test (COLORED_STRESS_EVENTS events per configuration, default
# 10^6), the loom models of the post/steal and idle protocols, the runtime's examples (as
# processes, over loopback), README.md's By hand section as written, clippy and the runtime's
# rustdoc with warnings as errors, and the shell linter (shellcheck) over every script.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_build_deps
# What the tests need, installed when missing (strace for the SFS durability test, a TrueType
# font for the plots, jq and valgrind for the tracker's tests): under CI=true a test that
# cannot run fails instead of saying SKIPPED.
ensure_packages shellcheck strace fonts-dejavu-core jq valgrind

echo ">> cargo build --release (every binary)"
cargo build --release --workspace --locked

echo ">> cargo test (workspace)"
cargo test --workspace --locked

echo ">> README.md's By hand section, followed as written"
scripts/readme-by-hand.sh

if [ -f runtime/tests/loom.rs ]; then
    echo ">> loom model of the post/steal protocol"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p colored-runtime --test loom --release --locked
fi

echo ">> cargo clippy (warnings are errors)"
if ! cargo clippy --version >/dev/null 2>&1; then
    echo ">> installing clippy (rustup component add clippy)" >&2
    rustup component add clippy
fi
cargo clippy --workspace --all-targets --locked -- -D warnings

echo ">> cargo doc of the runtime (its API reference; warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p colored-runtime --no-deps --locked

echo ">> shellcheck"
shellcheck -x scripts/*.sh scripts/peers/*.sh sws-server/bench/*.sh .ci/run
echo ">> all tests passed"
