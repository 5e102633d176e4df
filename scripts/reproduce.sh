#!/usr/bin/env bash
# Reproduces the evaluation. `quick` runs in minutes; `full` follows the papers' durations.
# For now: builds, then runs the dispatch benchmark (libasync, mely and tokio in one run).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-quick}"
case "$MODE" in
    quick) SECONDS_PER=2 ;;
    full) SECONDS_PER=10 ;;
    -h|--help) echo "usage: scripts/reproduce.sh quick|full"; exit 0 ;;
    *) echo "error: unknown mode '$MODE' (expected quick or full)" >&2; exit 2 ;;
esac
source scripts/lib.sh
ensure_build_deps
cargo build --release --workspace --locked
OUT="results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD 2>/dev/null || echo nogit)"
mkdir -p "$OUT"
echo ">> dispatch benchmark ($SECONDS_PER s per configuration) -> $OUT/dispatch.json"
./target/release/microbenches dispatch --runtime all --workers 2 --seconds "$SECONDS_PER" --format table \
    --json-out "$OUT/dispatch.json"
