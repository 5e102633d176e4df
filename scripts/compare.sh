#!/usr/bin/env bash
# The regression tracker: compares sample sets (implemented by `colored-report compare`).
#
#   scripts/compare.sh BASE NEW [--threshold PCT] [--alpha A]
#   scripts/compare.sh --ab REV_A REV_B [--experiments LIST] [--pairs N] [--threshold PCT] [--alpha A]
#
# BASE NEW: two results directories of scripts/reproduce.sh (their samples/ with REPRO_RUNS > 1).
# A figure changed when the ratio of medians moved past --threshold (default 5%) AND the rank
# test (Mann-Whitney U) is significant at --alpha (default 0.01); each change is shown as
# REGRESSED / improved / "~ not significant" with its p-value and confidence interval. With too
# few samples to test (one per side), the threshold alone decides, with a warning. Gated: the
# ratios that matter always; absolute figures only when BASE and NEW come from the same machine
# (CPU model, cores, kernel in env.json); instruction counts when built by the same rustc. A
# figure only in NEW is new, never a regression.
#
# --ab: "did my change help?". Builds REV_A and REV_B in git worktrees under target/ab/, runs
# the experiment groups of LIST (comma separated: micro, sws, sfs, instr; default micro) A B A B
# ... N times (--pairs, default 8: the fewest for which the signed-rank test can reach 0.01),
# each run that revision's own scripts/reproduce.sh quick, and tests the pair ratios (Wilcoxon
# signed-rank). REPRO_* settings pass through (e.g. REPRO_SECONDS). Output: target/ab/<time>/.
#
# Exit: 0 pass, 1 a gated regression or an experiment missing from NEW, 2 the tool failed.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
tracker_report_bin || { echo "error: could not build colored-report" >&2; exit 2; }

if [ "$1" != --ab ]; then
    exec "$REPORT_BIN" compare "$@"
fi

shift
[ $# -ge 2 ] || { usage >&2; exit 2; }
REV_A=$1 REV_B=$2
shift 2
LIST=micro PAIRS=8 PASS=()
while [ $# -gt 0 ]; do
    case $1 in
        --experiments) LIST=${2:?--experiments needs a list}; shift 2 ;;
        --pairs) PAIRS=${2:?--pairs needs a number}; shift 2 ;;
        --threshold|--alpha) PASS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || { echo "error: --pairs must be a positive number" >&2; exit 2; }
for t in git jq cargo; do command -v "$t" >/dev/null || { echo "error: $t is needed" >&2; exit 2; }; done
tracker_only "$LIST" || exit 2
SHA_A=$(git rev-parse --verify -q "$REV_A^{commit}") || { echo "error: no revision $REV_A" >&2; exit 2; }
SHA_B=$(git rev-parse --verify -q "$REV_B^{commit}") || { echo "error: no revision $REV_B" >&2; exit 2; }
if [ "$PAIRS" -lt 8 ]; then
    echo "warning: with $PAIRS pairs the signed-rank test cannot reach alpha 0.01 (8 pairs can); the threshold alone will decide" >&2
fi

OUT=target/ab/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/A/samples" "$OUT/B/samples" "$OUT/logs"
# The same revision twice (an A/A check) needs one worktree and one build.
WT_A=target/ab/wt-a WT_B=target/ab/wt-b
[ "$SHA_A" = "$SHA_B" ] && WT_B=$WT_A
for side in a b; do
    sha=$SHA_A
    [ "$side" = b ] && sha=$SHA_B
    [ "$side" = b ] && [ "$WT_B" = "$WT_A" ] && break
    echo ">> worktree target/ab/wt-$side at ${sha:0:10}, building" >&2
    tracker_checkout "target/ab/wt-$side" "$sha" || { echo "error: could not check out $sha" >&2; exit 2; }
    (cd "target/ab/wt-$side" && cargo build --release --workspace -q) >"$OUT/logs/build-$side.log" 2>&1 \
        || { echo "error: ${sha:0:10} does not build (see $OUT/logs/build-$side.log)" >&2; exit 2; }
done
for i in $(seq 1 "$PAIRS"); do
    for side in A B; do
        wt=$WT_A
        [ "$side" = B ] && wt=$WT_B
        echo ">> pair $i/$PAIRS: $side ($TRACK_ONLY)" >&2
        if ! tracker_sample "$wt" "$PWD/$OUT/$side/samples/$i" "$OUT/logs/$side-$i.log"; then
            echo "warning: sample $side $i failed (see $OUT/logs/$side-$i.log); its experiments count as missing" >&2
        fi
    done
done
NOTE="paired: $PAIRS pairs run A B A B ... (A = ${SHA_A:0:10}, B = ${SHA_B:0:10}); each sample one reproduce.sh quick run of $TRACK_ONLY"
tracker_env "$OUT/A" "$NOTE" && tracker_env "$OUT/B" "$NOTE" || exit 2
echo ">> results: $OUT" >&2
exec "$REPORT_BIN" compare "$OUT/A" "$OUT/B" --paired "${PASS[@]}"
