#!/usr/bin/env bash
# Tracking speedups across commits: samples per commit in a history, its report with change
# points, and a bisection that trusts only tested differences.
#
#   scripts/track.sh run [--commits A..B] [--experiments LIST] [--samples N] [--history FILE]
#   scripts/track.sh report [--history FILE] [--no-plots]
#   scripts/track.sh bisect GOOD BAD --figure NAME [--experiments LIST] [--samples N] [--history FILE]
#
# run: for each commit of A..B (git's meaning: after A, up to B; a single revision is that
# commit; default HEAD), oldest first, checks it out in the worktree target/track/worktree
# (detached; one worktree, so cargo rebuilds only what changed), runs that commit's own
# scripts/reproduce.sh quick N times (--samples, default 5; each run one sample of every
# configuration of the groups in LIST: micro, sws, sfs, instr; default micro,instr), and appends
# the samples with the commit, its date and the environment to the history (default
# results/history/history.jsonl; format in results/history/README.md). Commits run one after
# another, their samples back to back. REPRO_* settings pass through (e.g. REPRO_SECONDS=0.5).
#
# report: results/history/report.md and plots/: every ratio and figure over commits with the
# confidence band of each commit's median, and the change points (E-Divisive means splits kept
# by a t test) with the commits on both sides and the size of the step.
#
# bisect: finds the first commit of GOOD..BAD where figure NAME (a figure key as in the
# comparison, e.g. "instr/http-parse instructions/op", or a ratio's name) moved. GOOD and BAD are
# measured first (N samples each) and must differ significantly; each step measures the middle
# commit and puts it on the side it is closer to only if the rank test separates it from the
# other side (alpha 0.01); otherwise it takes N more samples (up to 3 rounds) and then decides by
# closeness with a warning. Every step prints its evidence. LIST defaults to the figure's group.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
CMD=${1:-}
case "$CMD" in
    -h|--help|"") usage; [ -n "$CMD" ]; exit $? ;;
    run|report|bisect) shift ;;
    *) echo "error: unknown command '$CMD' (run, report or bisect)" >&2; usage >&2; exit 2 ;;
esac
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
for t in git jq; do command -v "$t" >/dev/null || { echo "error: $t is needed (apt-get install $t)" >&2; exit 2; }; done

HISTORY=results/history/history.jsonl SAMPLES=5 LIST="" COMMITS=HEAD FIGURE="" NO_PLOTS=() POS=()
while [ $# -gt 0 ]; do
    case $1 in
        --history) HISTORY=${2:?--history needs a file}; shift 2 ;;
        --samples) SAMPLES=${2:?--samples needs a number}; shift 2 ;;
        --experiments) LIST=${2:?--experiments needs a list}; shift 2 ;;
        --commits) COMMITS=${2:?--commits needs a range}; shift 2 ;;
        --figure) FIGURE=${2:?--figure needs a name}; shift 2 ;;
        --no-plots) NO_PLOTS=(--no-plots); shift ;;
        -*) echo "error: unknown option $1" >&2; exit 2 ;;
        *) POS+=("$1"); shift ;;
    esac
done
[[ $SAMPLES =~ ^[1-9][0-9]*$ ]] || { echo "error: --samples must be a positive number" >&2; exit 2; }
tracker_report_bin || { echo "error: could not build colored-report" >&2; exit 2; }
TRACK_DIR=${TRACK_DIR:-target/track}
WT=$TRACK_DIR/worktree
mkdir -p "$TRACK_DIR"

# measure SHA: N samples of SHA appended to the history; sets RUN_DIR.
measure() {
    local sha=$1 i date subject
    RUN_DIR=$TRACK_DIR/runs/$sha/$(date -u +%Y%m%dT%H%M%SZ)
    tracker_checkout "$WT" "$sha" || { echo "error: could not check out $sha" >&2; return 2; }
    date=$(git show -s --format=%cI "$sha")
    subject=$(git show -s --format=%s "$sha")
    for i in $(seq 1 "$SAMPLES"); do
        echo ">> ${sha:0:10} sample $i/$SAMPLES ($TRACK_ONLY): $subject" >&2
        if ! tracker_sample "$WT" "$PWD/$RUN_DIR/samples/$i" "$RUN_DIR/logs/sample-$i.log"; then
            echo "warning: sample $i of ${sha:0:10} failed: $(tail -n 2 "$RUN_DIR/logs/sample-$i.log" | tr '\n' ' ')" >&2
        fi
    done
    tracker_env "$RUN_DIR" "track.sh: $SAMPLES reproduce.sh quick runs of this commit back to back (each configuration once per run); commits one after another" \
        || { echo "error: no sample of ${sha:0:10} ran (see $RUN_DIR/logs)" >&2; return 2; }
    "$REPORT_BIN" history append "$RUN_DIR" --history "$HISTORY" --commit "$sha" --commit-date "$date" \
        --subject "$subject" --recorded "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

case $CMD in
run)
    [ ${#POS[@]} -eq 0 ] || { echo "error: unexpected ${POS[*]}" >&2; exit 2; }
    tracker_only "${LIST:-micro,instr}" || exit 2
    if [[ $COMMITS == *..* ]]; then
        mapfile -t SHAS < <(git rev-list --reverse "$COMMITS")
    else
        mapfile -t SHAS < <(git rev-parse --verify "$COMMITS^{commit}")
    fi
    [ ${#SHAS[@]} -gt 0 ] || { echo "error: $COMMITS names no commit" >&2; exit 2; }
    START=$(date +%s)
    for sha in "${SHAS[@]}"; do measure "$sha"; done
    echo ">> ${#SHAS[@]} commit(s) x $SAMPLES sample(s) in $(( $(date +%s) - START )) s; history: $HISTORY" >&2
    ;;
report)
    [ ${#POS[@]} -eq 0 ] || { echo "error: unexpected ${POS[*]}" >&2; exit 2; }
    "$REPORT_BIN" history report --history "$HISTORY" "${NO_PLOTS[@]}"
    ;;
bisect)
    [ ${#POS[@]} -eq 2 ] || { echo "error: bisect needs GOOD and BAD" >&2; usage >&2; exit 2; }
    [ -n "$FIGURE" ] || { echo "error: bisect needs --figure NAME" >&2; exit 2; }
    if [ -z "$LIST" ]; then
        case $FIGURE in
            instr/*) LIST=instr ;; sws/*|SWS*) LIST=sws ;; sfs/*|SFS*) LIST=sfs ;; *) LIST=micro ;;
        esac
    fi
    tracker_only "$LIST" || exit 2
    GOOD=$(git rev-parse --verify -q "${POS[0]}^{commit}") || { echo "error: no revision ${POS[0]}" >&2; exit 2; }
    BAD=$(git rev-parse --verify -q "${POS[1]}^{commit}") || { echo "error: no revision ${POS[1]}" >&2; exit 2; }
    git merge-base --is-ancestor "$GOOD" "$BAD" || { echo "error: GOOD is not an ancestor of BAD" >&2; exit 2; }
    mapfile -t LINE < <(echo "$GOOD"; git rev-list --reverse --ancestry-path "$GOOD..$BAD")
    SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    echo ">> bisecting ${#LINE[@]} commits for '$FIGURE' ($SAMPLES samples per step)" >&2
    measure "$GOOD"
    measure "$BAD"
    MACHINE=$("$REPORT_BIN" history machine "$RUN_DIR")
    # step SHA [--force]: classify SHA; sets RC (0 good, 1 bad, 3 unsure).
    step() {
        RC=0
        "$REPORT_BIN" history bisect-step --history "$HISTORY" --figure "$FIGURE" --good "$GOOD" --bad "$BAD" \
            --candidate "$1" --machine "$MACHINE" --since "$SINCE" "${@:2}" || RC=$?
        [ "$RC" -le 1 ] || [ "$RC" -eq 3 ] || { echo "error: bisect-step failed" >&2; exit 2; }
    }
    echo "== does '$FIGURE' move between GOOD ${GOOD:0:10} and BAD ${BAD:0:10}?"
    step "$BAD"
    if [ "$RC" -ne 1 ]; then
        measure "$GOOD"; measure "$BAD"
        step "$BAD"
        [ "$RC" -eq 1 ] || { echo "no significant move of '$FIGURE' between GOOD and BAD: nothing to bisect"; exit 1; }
    fi
    lo=0 hi=$(( ${#LINE[@]} - 1 ))
    while (( hi - lo > 1 )); do
        mid=$(( (lo + hi) / 2 ))
        sha=${LINE[$mid]}
        measure "$sha"
        echo "== step: ${sha:0:10} $(git show -s --format=%s "$sha") (between ${LINE[$lo]:0:10} and ${LINE[$hi]:0:10})"
        step "$sha"
        rounds=1
        while [ "$RC" -eq 3 ] && [ "$rounds" -lt 3 ]; do
            rounds=$((rounds + 1))
            echo "   unsure: $SAMPLES more samples (round $rounds)"
            measure "$sha"
            step "$sha"
        done
        if [ "$RC" -eq 3 ]; then
            echo "   WARNING: still not significant after $rounds rounds; deciding by closeness"
            step "$sha" --force
        fi
        if [ "$RC" -eq 1 ]; then hi=$mid; else lo=$mid; fi
    done
    echo "== first commit where '$FIGURE' moved: ${LINE[$hi]} $(git show -s --format=%s "${LINE[$hi]}")"
    echo "   (its parent ${LINE[$lo]:0:10} is on GOOD's side)"
    ;;
esac
