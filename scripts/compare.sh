#!/usr/bin/env bash
# The regression tracker: compares sample sets (implemented by `colored-report compare`).
#
#   scripts/compare.sh BASE NEW [--threshold PCT] [--alpha A] [--noise FILE | --no-noise]
#   scripts/compare.sh --ab REV_A REV_B [--experiments LIST] [--pairs N] [--threshold PCT] [--alpha A]
#   scripts/compare.sh --calibrate DIR1 DIR2 ... [--out FILE]
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
# Noise: with a calibration of this machine (FILE, default results/noise.json when it exists and
# is of this CPU model and core count), a change is flagged only if it is also larger than the
# 99th percentile of A/A changes of that figure (2.576 * sqrt(2) * the standard deviation of the
# log run medians of the calibration runs); every gated change the rank test flags is printed
# with the A/A spread it was held against. With a calibration, absolute figures are gated on the
# same machine even when a run started busy.
#
# --calibrate: learns that spread from runs of one build on this machine (at least 3; 6 or more
# to measure the tool: with 5 or more it prints the false-alarm rate over every pair of runs and
# the smallest change detected in 95% of trials per figure, each pair held against a calibration
# of the other runs) and writes it to FILE (default results/noise.json). E.g.:
#   for i in 1 2 3 4 5 6; do REPRO_ONLY=micro REPRO_RUNS=5 REPRO_OUT=/tmp/aa/$i scripts/reproduce.sh quick; done
#   scripts/compare.sh --calibrate /tmp/aa/{1,2,3,4,5,6}
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
usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
tracker_report_bin || { echo "error: could not build colored-report" >&2; exit 2; }

NOISE_DEFAULT=results/noise.json
if [ "$1" = --calibrate ]; then
    shift
    OUT_FILE=$NOISE_DEFAULT DIRS=()
    while [ $# -gt 0 ]; do
        case $1 in
            --out) OUT_FILE=${2:?--out needs a file}; shift 2 ;;
            -*) echo "error: unknown option $1" >&2; exit 2 ;;
            *) DIRS+=("$1"); shift ;;
        esac
    done
    [ ${#DIRS[@]} -ge 3 ] || { echo "error: --calibrate needs at least 3 results directories of one build (got ${#DIRS[@]})" >&2; exit 2; }
    exec "$REPORT_BIN" calibrate "${DIRS[@]}" --out "$OUT_FILE"
fi

if [ "$1" != --ab ]; then
    ARGS=() NOISE="" NO_NOISE=0
    while [ $# -gt 0 ]; do
        case $1 in
            --noise) NOISE=${2:?--noise needs a file}; shift 2 ;;
            --no-noise) NO_NOISE=1; shift ;;
            *) ARGS+=("$1"); shift ;;
        esac
    done
    if [ "$NO_NOISE" = 0 ] && [ -z "$NOISE" ] && [ -f "$NOISE_DEFAULT" ]; then NOISE=$NOISE_DEFAULT; fi
    if [ -n "$NOISE" ] && [ "$NO_NOISE" = 0 ]; then ARGS+=(--noise "$NOISE"); fi
    exec "$REPORT_BIN" compare "${ARGS[@]}"
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
