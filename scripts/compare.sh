#!/usr/bin/env bash
# The regression tracker: compares two results directories written by scripts/reproduce.sh.
#
#   scripts/compare.sh BASE NEW [--threshold PCT]
#
# Prints every figure's change and the ratios that matter (speedups inside one run: mely
# time-left / libasync off on unbalanced, mely penalty / mely base, SFS colored / none, SWS mely
# all / libasync off, colored vs N-copy for SWS and SFS, dispatch tokio / mely, ...). Exits 1
# when a ratio fell by more than the threshold (default 5%) or an experiment of BASE is missing
# from NEW; `n/a` is never compared. Implemented by `colored-report compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
BIN=target/release/colored-report
if [ ! -x "$BIN" ] || [ -n "$(find microbenches/src -newer "$BIN" -name '*.rs' 2>/dev/null | head -1)" ]; then
    cargo build --release -q -p microbenches --bin colored-report
fi
exec "$BIN" compare "$@"
