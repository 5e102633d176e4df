#!/usr/bin/env bash
# Reproduces the evaluation of libasync-smp and Mely in one command.
#
#   scripts/reproduce.sh quick   # minutes: short runs, 50/200/400 clients, 64 MB SFS file
#   scripts/reproduce.sh full    # the papers' durations: 30 s x 3 runs, 200..2000 clients, 200 MB
#
# Steps: build (cargo build --release --workspace); the microbenchmarks (Tables III-VI and the
# synthetic table via `microbenches paper-tables`, dispatch against tokio at every scaling step);
# SWS in libasync off / libasync base / mely off / mely all (connection penalty 1, the paper's;
# penalty 1000, ours; penalty 1000 with our multi-color steal) / N-copy against nginx and Apache
# (worker MPM) under load-injector, stepping the virtual clients, 1 KB file; SFS colored (one and
# half) / none / N-copy / libasync off / libasync base under sfs-bench (16 clients) beside OpenSSH
# sftp (chacha20-poly1305@openssh.com, one session per SFS client) reading the same file over
# loopback; the same file through the kernel (multiio): 16 reader processes on 16 FUSE mounts
# (sfs-client mount) of SFS colored / none / N-copy, and on 16 sshfs mounts, then 16 writer
# processes on the same mounts (own file each, fsync at the end) and straight into the export
# directory; scaling over 1, 2,
# 4, ... workers up to the worker count; instruction counts (callgrind) of the single-threaded
# paths (instr-counts); the simulator (calibration, validation against real runs at 1 and 2
# cores, Tables III-VI at 8 simulated cores on the Mely paper's e5410, scaling to 64 simulated
# cores). Then `colored-report report` writes report.md, csv/ and plots/ (SVG and PNG).
#
# Workers and CPUs: every server (sws-server, sfs-server, nginx, Apache, sshd) and every
# microbenchmark runs REPRO_WORKERS workers (default: what the machine allows: all the CPUs this
# shell may use, or half of them when it has 4 or more, the other half going to the clients).
# With 4 or more CPUs and fewer workers than CPUs, the servers run on the first REPRO_WORKERS
# CPUs and the load injector, sfs-bench and the sftp clients on the others (taskset); with fewer
# CPUs they share them. More workers than server CPUs oversubscribes them; the report says so.
# env.json records workers, server_cpus, client_cpus, cpu_split, oversubscribed, scaling_workers.
#
# Output: results/<date>-<commit>/ (raw JSON per experiment, logs/, csv/, plots/, report.md).
# Every sample is kept: with REPRO_RUNS=N, samples/<i>/ (i = 1..N) is a results directory of
# the i-th run of each experiment (the top-level file holds the median), and samples/order.jsonl
# lists the sample files in the order they were measured (env.json's "interleaving" says how).
# The microbenchmarks run in rounds (round-robin): round i runs every paper-tables configuration
# once and dispatch at every worker count, and is sample i of each, so a ratio's sample i divides
# figures measured in the same round; microbench/paper-tables.json holds every round's rows.
# SWS and SFS points run in rounds too (round i: one injector or sfs-bench run of every point,
# each against its own server start); a point's top-level file merges its rounds.
# An experiment that cannot run or fails leaves <name>.error with the reason instead of its
# JSON, and the script goes on; nothing is ever estimated. Every server it starts listens on
# 127.0.0.1 only and is stopped on exit, failure or interrupt (trap).
#
# Environment overrides (for development; the defaults are the modes above):
#   REPRO_WORKERS   server workers and the top of the scaling steps (default: see above)
#   REPRO_SECONDS   measured seconds per run           REPRO_RUNS      runs per configuration
#   REPRO_WARMUP    warm-up seconds per run            REPRO_CLIENTS   client counts, e.g. "50 200"
#   REPRO_SCALE_CLIENTS  client count of the scaling runs (fewer workers than REPRO_WORKERS)
#   REPRO_SFS_MB    size of the SFS file (MB)
#   REPRO_SFTP_GETS reads of the file per sftp session (amortises the SSH handshake)
#   REPRO_ONLY      subset of "micro sws sfs instr sim" to run   REPRO_SWS_CONFIGS / REPRO_SFS_CONFIGS
#   REPRO_SFS_MOUNT_CONFIGS  through-the-kernel runs, subset of "colored none ncopy sshfs"
#   REPRO_SIM_SECONDS  virtual seconds per simulated table row (scaling points: a tenth of it)
#   REPRO_OUT       output directory                   REPRO_NO_INSTALL=1  never apt-get
#   REPRO_ONLY may name "instr" too (instruction counts under callgrind; in the default set)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
MODE="${1:-quick}"
case "$MODE" in
    quick)
        SECS=3 RUNS=1 WARMUP=1 CLIENTS="50 200 400" SCALE_CLIENTS=200
        PT_SECONDS=1 PT_REPEAT=3 DISPATCH_SECONDS=1 SFS_MB=64 SFTP_GETS=2 ;;
    full)
        SECS=30 RUNS=3 WARMUP=5 CLIENTS="200 400 600 800 1000 1200 1400 1600 1800 2000" SCALE_CLIENTS=1000
        PT_SECONDS=5 PT_REPEAT=3 DISPATCH_SECONDS=10 SFS_MB=200 SFTP_GETS=2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown mode '$MODE' (expected quick or full)" >&2; exit 2 ;;
esac
SECS=${REPRO_SECONDS:-$SECS}
RUNS=${REPRO_RUNS:-$RUNS}
WARMUP=${REPRO_WARMUP:-$WARMUP}
CLIENTS=${REPRO_CLIENTS:-$CLIENTS}
SCALE_CLIENTS=${REPRO_SCALE_CLIENTS:-$SCALE_CLIENTS}
SFS_MB=${REPRO_SFS_MB:-$SFS_MB}
SFTP_GETS=${REPRO_SFTP_GETS:-$SFTP_GETS}
if [ -n "${REPRO_SECONDS:-}" ]; then PT_SECONDS=$SECS DISPATCH_SECONDS=$SECS; fi
# Simulator: seconds per validation run (real and virtual), virtual seconds per table row and
# per scaling point.
if [ "$MODE" = full ]; then SIM_VALIDATE_SECONDS=3 SIM_SECONDS=2; else SIM_VALIDATE_SECONDS=1 SIM_SECONDS=0.3; fi
# Virtual seconds per run of the paper-faithful model (fit, predictions, ablation, thieves).
if [ "$MODE" = full ]; then SIM_PAPER_SECONDS=0.5; else SIM_PAPER_SECONDS=0.1; fi
SIM_SECONDS=${REPRO_SIM_SECONDS:-$SIM_SECONDS}
SIM_SCALE_SECONDS=$(awk -v s="$SIM_SECONDS" 'BEGIN { printf "%g", s / 10 }')
if [ -n "${REPRO_RUNS:-}" ]; then PT_REPEAT=$RUNS; fi
ONLY=${REPRO_ONLY:-"micro sws sfs instr sim"}
SWS_CONFIGS=${REPRO_SWS_CONFIGS:-"libasync-off libasync-base libasync-base-paper mely-off mely-all-p1 mely-all-p1-paper mely-all-p1000 mely-all-p1000-half ncopy nginx apache"}
SFS_CONFIGS=${REPRO_SFS_CONFIGS:-"colored colored-paper colored-half none ncopy libasync-off libasync-base libasync-base-paper"}
SFS_MOUNT_CONFIGS=${REPRO_SFS_MOUNT_CONFIGS:-"colored none ncopy sshfs"}
SFS_CLIENTS=16
# As many sftp sessions as SFS has clients, so the two MB/s figures compare like for like.
SFTP_CLIENTS=$SFS_CLIENTS

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/peers/nginx.sh
source scripts/peers/nginx.sh
# shellcheck source=scripts/peers/apache.sh
source scripts/peers/apache.sh
# shellcheck source=scripts/peers/sshd.sh
source scripts/peers/sshd.sh
# shellcheck source=scripts/peers/sshfs.sh
source scripts/peers/sshfs.sh

log() { echo ">> $*" >&2; }

# The worker count and CPU split need these before anything else runs.
require_tools taskset awk nproc || exit 2

# ---------------------------------------------------------------------------------------------
# Workers and the CPU split.
mapfile -t ALLOWED < <(allowed_cpus)
NCPU=${#ALLOWED[@]}
if [ -n "${REPRO_WORKERS:-}" ]; then
    case $REPRO_WORKERS in
        '' | *[!0-9]* | 0*) echo "error: REPRO_WORKERS must be a positive integer (got '$REPRO_WORKERS')" >&2; exit 2 ;;
    esac
    WORKERS=$REPRO_WORKERS
elif [ "$NCPU" -ge 4 ]; then
    WORKERS=$(( NCPU / 2 ))
else
    WORKERS=$NCPU
fi
if [ "$NCPU" -ge 4 ] && [ "$WORKERS" -lt "$NCPU" ]; then
    CPU_SPLIT=disjoint
    SERVER_CPU_LIST=("${ALLOWED[@]:0:WORKERS}")
    CLIENT_CPU_LIST=("${ALLOWED[@]:WORKERS}")
else
    CPU_SPLIT=shared
    SERVER_CPU_LIST=("${ALLOWED[@]}")
    CLIENT_CPU_LIST=("${ALLOWED[@]}")
fi
OVERSUBSCRIBED=false
if [ "$WORKERS" -gt "${#SERVER_CPU_LIST[@]}" ]; then OVERSUBSCRIBED=true; fi
join_cpus() { local IFS=,; echo "$*"; }
SERVER_CPUS=$(join_cpus "${SERVER_CPU_LIST[@]}")
CLIENT_CPUS=$(join_cpus "${CLIENT_CPU_LIST[@]}")
SCALING_STEPS=$(scaling_steps "$WORKERS")
# server_cpus_for N: the CPUs a server of N workers runs on (the first N server CPUs; all of them
# when N is more).
server_cpus_for() {
    local n=$1
    if [ "$n" -gt "${#SERVER_CPU_LIST[@]}" ]; then n=${#SERVER_CPU_LIST[@]}; fi
    join_cpus "${SERVER_CPU_LIST[@]:0:n}"
}
# on_clients CMD...: runs a client (injector, sfs-bench, a mount daemon; a program or a shell
# function) in a subshell bound to the client CPUs, which everything it starts inherits.
on_clients() { ( taskset -pc "$CLIENT_CPUS" "$BASHPID" >/dev/null && "$@" ); }
log "$WORKERS workers; server CPUs $SERVER_CPUS, client CPUs $CLIENT_CPUS ($CPU_SPLIT$([ "$OVERSUBSCRIBED" = true ] && echo ', oversubscribed')); scaling steps $SCALING_STEPS"

# ---------------------------------------------------------------------------------------------
# Build and install what is missing.
ensure_build_deps || exit 1
if [ "${REPRO_NO_INSTALL:-0}" != 1 ]; then ensure_jq || exit 1; fi
require_tools jq awk grep sed cut tr head tail seq find date mktemp stat git tee wc basename \
    sleep cat cp mv rm mkdir chmod id pkill || exit 1
if [ "${REPRO_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
    # Peers and the plots' font; a failure here only makes those experiments missing.
    for p in nginx apache2 openssh-server openssh-client fonts-dejavu-core fuse3 sshfs; do
        ensure_packages "$p" || log "could not install $p (its experiments will be recorded as missing)"
    done
fi
log "cargo build --release --workspace"
cargo build --release --workspace || { echo "error: the build failed" >&2; exit 1; }
BIN="$ROOT/target/release"

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT="$COMMIT-dirty"; fi
OUT=${REPRO_OUT:-"results/$(date -u +%Y-%m-%d)-$COMMIT"}
mkdir -p "$OUT/microbench" "$OUT/sws" "$OUT/sfs" "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
log "results -> $OUT"

# Up to 2000 clients and as many server connections, plus the injector's own sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
TMP=$(mktemp -d /tmp/reproduce.XXXXXX)
chmod 755 "$TMP"
SERVER_PID=""
MOUNTS=()
cleanup() {
    local rc=$?
    if declare -F unmount_all >/dev/null; then unmount_all; fi
    if [ -n "$SERVER_PID" ]; then stop_server; fi
    # Anything else this script started and left behind (its children only).
    local p
    for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# How the samples were taken (env.json's "interleaving"; the order itself is samples/order.jsonl).
INTERLEAVING="microbenchmarks round-robin: round r runs every paper-tables configuration once, then dispatch at every worker count, and is sample r of each (then, as many rounds again, the paper's rows with --fidelity paper, added to sample r); SWS injector runs and SFS runs round-robin too: round r runs every SWS point, then every SFS point, each against its own server start, and is sample r of each; through-the-kernel SFS runs round-robin over the configurations; order in samples/order.jsonl"

# Environment of this run, in the project's env schema (results/README.md).
peer_version() { "$@" 2>&1 | head -1 || true; }
"$BIN/results-env" --tool "scripts/reproduce.sh" --mode "$MODE" --seconds "$SECS" --runs "$RUNS" \
    --warmup "$WARMUP" --clients "$CLIENTS" --workers "$WORKERS" \
    --server-cpus "$SERVER_CPUS" --client-cpus "$CLIENT_CPUS" --cpu-split "$CPU_SPLIT" \
    --oversubscribed "$OVERSUBSCRIBED" --scaling-workers "${SCALING_STEPS// /,}" \
    --paper-tables-seconds "$PT_SECONDS" --paper-tables-repeat "$PT_REPEAT" \
    --sfs-clients "$SFS_CLIENTS" --sfs-file-mb "$SFS_MB" \
    --sftp-clients "$SFTP_CLIENTS" --sftp-gets-per-session "$SFTP_GETS" \
    --sfs-mount-readers "$SFS_CLIENTS" --sshfs "$(sshfs --version 2>&1 | grep -m1 '^SSHFS' || true)" \
    --loadavg-start "$(cut -d' ' -f1 /proc/loadavg)" \
    --interleaving "$INTERLEAVING" \
    --nginx "$(peer_version "$(command -v nginx || echo /usr/sbin/nginx)" -v)" \
    --apache "$(peer_version "$(command -v apache2 || echo /usr/sbin/apache2)" -v)" \
    --openssh "$(peer_version ssh -V)" >"$OUT/env.json" || { echo "error: results-env failed" >&2; exit 1; }

# Record an experiment as missing: record_missing NAME MESSAGE...
record_missing() {
    local name=$1
    shift
    rm -f "$OUT/$name.json"
    printf '%s\n' "$*" >"$OUT/$name.error"
    rm -f "$OUT"/samples/*/"$name.json"
    log "MISSING $name: $*"
}

# Run a command whose stdout is the experiment's JSON: run_json NAME CMD...
# On failure or output that is not a JSON object/array, records the experiment as missing with
# the tail of its stderr.
run_json() {
    local name=$1
    shift
    local out="$OUT/$name.json" err="$OUT/logs/${name//\//_}.log"
    rm -f "$OUT/$name.error"
    "$@" >"$out.tmp" 2>"$err"
    local rc=$?
    if [ "$rc" -eq 0 ] && head -c 1 "$out.tmp" | grep -q '[[{]'; then
        mv "$out.tmp" "$out"
        return 0
    fi
    rm -f "$out.tmp"
    record_missing "$name" "exit $rc: ${*##*/} :: $(tail -n 3 "$err" | tr '\n' ' ')"
    return 1
}

# keep_sample NAME I FILE: FILE is the I-th sample of experiment NAME; copies it into the
# sample tree (samples/I/NAME.json) and appends the sample to samples/order.jsonl.
SAMPLE_SEQ=0
keep_sample() {
    local name=$1 i=$2 file=$3
    mkdir -p "$(dirname "$OUT/samples/$i/$name.json")"
    cp "$file" "$OUT/samples/$i/$name.json"
    SAMPLE_SEQ=$((SAMPLE_SEQ + 1))
    jq -cn --argjson seq "$SAMPLE_SEQ" --arg e "$name" --argjson i "$i" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{seq: $seq, experiment: $e, sample: $i, finished: $t}' >>"$OUT/samples/order.jsonl"
}

# median_by KEY FIELD OUT FILES...: FILES are JSON arrays of objects told apart by KEY; writes
# to OUT, per KEY, the object whose FIELD is the median over the files (lower middle when even).
median_by() {
    local key=$1 field=$2 out=$3
    shift 3
    jq -s --arg k "$key" --arg f "$field" \
        'add | group_by(.[$k]) | map(sort_by(.[$f]) | .[(length - 1) / 2 | floor])' "$@" >"$out"
}

# ---------------------------------------------------------------------------------------------
# Servers.
# free_port and stop_server are in scripts/lib.sh.

# The error a failed server printed (its "Error:" line), else the last lines of its log.
why_failed() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        if grep -m1 -E '^(Error|error|\[emerg\]|AH[0-9]+)' "$f" 2>/dev/null; then return; fi
        grep -m1 -E 'emerg|Address already in use' "$f" 2>/dev/null && return
    done
    for f in "$@"; do [ -s "$f" ] && tail -n 2 "$f"; done | tr '\n' ' '
}

# wait_listen PORT: until something accepts on 127.0.0.1:PORT (10 s), while SERVER_PID lives.
wait_listen() {
    local port=$1 i
    [ -n "$port" ] || return 1
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# paper_fidelity CONFIG: CONFIG-paper is CONFIG's server with the papers' mechanisms (the
# rows of Table I named as the paper's): prints "--fidelity paper" for such a name, nothing else.
paper_fidelity() {
    if [ "${1%-paper}" != "$1" ]; then echo "--fidelity paper"; fi
}

# start_sws CONFIG WORKERS STATS_FILE LOG: starts one configuration on the first WORKERS server
# CPUs (CONFIG-paper: with --fidelity paper, see paper_fidelity); sets SERVER_PID and PORT.
start_sws() {
    local cfg=$1 workers=$2 stats=$3 logf=$4 args cpus fid
    cpus=$(server_cpus_for "$workers")
    PORT=$(free_port) || { echo "no free port" >"$logf"; return 1; }
    : >"$logf"
    fid=$(paper_fidelity "$cfg")
    case ${cfg%-paper} in
        nginx | apache) if [ -n "$fid" ]; then echo "$cfg: a peer has no --fidelity" >"$logf"; return 1; fi ;;
    esac
    case ${cfg%-paper} in
        libasync-off) args="--mode colored --runtime libasync --stealing off" ;;
        libasync-base) args="--mode colored --runtime libasync --stealing base" ;;
        mely-off) args="--mode colored --runtime mely --stealing off" ;;
        # The paper's Mely: every heuristic, one color per steal, no connection penalty.
        mely-all-p1) args="--mode colored --runtime mely --stealing all --conn-penalty 1 --steal-amount one" ;;
        # Ours: the tuned connection penalty, then also the multi-color steal.
        mely-all-p1000) args="--mode colored --runtime mely --stealing all --conn-penalty 1000 --steal-amount one" ;;
        mely-all-p1000-half) args="--mode colored --runtime mely --stealing all --conn-penalty 1000 --steal-amount half" ;;
        ncopy) args="--mode ncopy --runtime mely --stealing off" ;;
        nginx)
            peer_nginx_start "$PORT" "$workers" "$TMP/www" "$cpus" 2>"$logf" || return 1
            SERVER_PID=$PEER_PID
            return 0 ;;
        apache)
            peer_apache_start "$PORT" "$workers" "$TMP/www" "$MAX_CLIENTS" "$cpus" 2>"$logf" || return 1
            SERVER_PID=$PEER_PID
            return 0 ;;
        *) echo "unknown SWS configuration $cfg" >"$logf"; return 1 ;;
    esac
    # shellcheck disable=SC2086
    # Port 0: the server binds any free port and prints it ("listening on 127.0.0.1:PORT").
    taskset -c "$cpus" "$BIN/sws-server" --root "$TMP/www" --listen "127.0.0.1:0" --workers "$workers" $args $fid \
        --max-clients 20000 --stats-json "$stats" >"$logf" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 200); do
        PORT=$(grep -m1 'listening on' "$logf" | grep -o '127\.0\.0\.1:[0-9]*' | cut -d: -f2)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 0 # wait_listen reports it
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------------
# Microbenchmarks, in rounds: round r runs every paper-tables configuration once (--repeat 1)
# and then dispatch at every scaling step, so sample r of every microbenchmark figure was measured
# within the same few seconds and a ratio's sample r divides figures of one round (drift of a
# shared machine moves both). Rounds: PT_REPEAT (REPRO_RUNS when set); dispatch runs in the first
# RUNS rounds. An experiment that fails in a round is missing and is not run in later rounds.
run_micro() {
    local rounds=$PT_REPEAT
    if [ "$RUNS" -gt "$rounds" ]; then rounds=$RUNS; fi
    log "microbenchmarks: $rounds round(s) of paper tables (${PT_SECONDS} s per configuration) and dispatch at $SCALING_STEPS worker(s) (${DISPATCH_SECONDS} s each, first $RUNS round(s)); $WORKERS workers"
    local pt=microbench/paper-tables pt_ok=1 r w d pt_files=()
    local -A disp_ok=()
    rm -f "$OUT/$pt.error" "$OUT/$pt-paper.error"
    for w in $SCALING_STEPS; do
        disp_ok[$w]=1
        rm -f "$OUT/microbench/dispatch-w$w.error"
    done
    for r in $(seq 1 "$rounds"); do
        if [ "$pt_ok" = 1 ]; then
            log "microbenchmarks round $r/$rounds: paper tables"
            local err="$OUT/logs/paper-tables.round$r.log" f="$TMP/paper-tables.$r.json"
            if taskset -c "$(server_cpus_for "$WORKERS")" "$BIN/microbenches" paper-tables --workers "$WORKERS" \
                --seconds "$PT_SECONDS" --repeat 1 --json-out "$f" \
                --markdown-out "$OUT/logs/paper-tables.round$r.md" 2>"$err" >"$OUT/logs/paper-tables.round$r.out" \
                && [ -s "$f" ]; then
                keep_sample "$pt" "$r" "$f"
                pt_files+=("$f")
            else
                pt_ok=0
                record_missing "$pt" "microbenches paper-tables failed in round $r: $(tail -n 3 "$err" | tr '\n' ' ')"
            fi
        fi
        [ "$r" -le "$RUNS" ] || continue
        for w in $SCALING_STEPS; do
            [ "${disp_ok[$w]}" = 1 ] || continue
            d=microbench/dispatch-w$w
            log "microbenchmarks round $r/$rounds: dispatch, $w worker(s), libasync/mely/tokio"
            if taskset -c "$(server_cpus_for "$w")" "$BIN/microbenches" dispatch --runtime all --workers "$w" --seconds "$DISPATCH_SECONDS" \
                --json-out "$TMP/dispatch-w$w.$r.json" >"$OUT/logs/dispatch-w$w.out" 2>"$OUT/logs/dispatch-w$w.log" \
                && [ -s "$TMP/dispatch-w$w.$r.json" ]; then
                cat "$OUT/logs/dispatch-w$w.out" >&2
                keep_sample "$d" "$r" "$TMP/dispatch-w$w.$r.json"
            else
                disp_ok[$w]=0
                record_missing "$d" "microbenches dispatch failed in round $r: $(tail -n 3 "$OUT/logs/dispatch-w$w.log" | tr '\n' ' ')"
            fi
        done
    done
    # Then, as many rounds again, the rows named as the paper's with the papers' mechanisms
    # (`--fidelity paper`; their results carry fidelity "paper" and have tables of their own in
    # the report), added to round r's sample: the rounds above stay as they were (what the A/A
    # calibration in results/noise.json measured).
    if [ "$pt_ok" = 1 ]; then
        for r in $(seq 1 "$rounds"); do
            log "microbenchmarks round $r/$rounds: paper tables, the paper's rows with --fidelity paper"
            local f="$TMP/paper-tables.$r.json" fp="$TMP/paper-tables-paper.$r.json"
            local errp="$OUT/logs/paper-tables-paper.round$r.log"
            if taskset -c "$(server_cpus_for "$WORKERS")" "$BIN/microbenches" paper-tables --fidelity paper \
                --workers "$WORKERS" --seconds "$PT_SECONDS" --repeat 1 --json-out "$fp" \
                --markdown-out "$OUT/logs/paper-tables-paper.round$r.md" 2>"$errp" \
                >"$OUT/logs/paper-tables-paper.round$r.out" && [ -s "$fp" ]; then
                jq -s 'add' "$f" "$fp" >"$f.both" && mv "$f.both" "$f"
                keep_sample "$pt" "$r" "$f"
            else
                record_missing "$pt-paper" "microbenches paper-tables --fidelity paper failed in round $r: $(tail -n 3 "$errp" | tr '\n' ' ')"
                break
            fi
        done
    fi
    # The top-level files: every repetition of the paper tables (one per round; the report takes
    # their median), and per runtime the dispatch run with the median ns/event.
    if [ "$pt_ok" = 1 ] && ((${#pt_files[@]})); then
        jq -s 'add' "${pt_files[@]}" >"$OUT/$pt.json"
    fi
    for w in $SCALING_STEPS; do
        [ "${disp_ok[$w]}" = 1 ] || continue
        local runs=()
        for r in $(seq 1 "$RUNS"); do runs+=("$TMP/dispatch-w$w.$r.json"); done
        median_by runtime ns_per_event "$OUT/microbench/dispatch-w$w.json" "${runs[@]}"
    done
}

# The report's timeline of a real run: unbalanced with libasync-smp's stealing on the server
# CPUs, traced for TRACE_FOR_S seconds from half-way (the report draws its first milliseconds).
TRACE_FOR_S=0.02
run_micro_trace() {
    local name=traces/unbalanced-libasync-base-w$WORKERS
    mkdir -p "$OUT/traces"
    rm -f "$OUT/$name.error"
    log "microbenchmarks: unbalanced, libasync base stealing, $WORKERS workers, traced for ${TRACE_FOR_S} s"
    if ! taskset -c "$(server_cpus_for "$WORKERS")" "$BIN/microbenches" unbalanced --runtime libasync --stealing base \
        --workers "$WORKERS" --seconds 1 --trace "$OUT/$name.json" --trace-from 0.5 --trace-for "$TRACE_FOR_S" \
        --trace-records 1000000 --format json >"$OUT/logs/trace-unbalanced.json" 2>"$OUT/logs/trace-unbalanced.log"; then
        record_missing "$name" "traced unbalanced run failed: $(tail -n 3 "$OUT/logs/trace-unbalanced.log" | tr '\n' ' ')"
    fi
}

# ---------------------------------------------------------------------------------------------
# SWS and its peers: one server start per measurement, so the counters belong to it.
# median_round FIELD FILES...: prints the index (from 0) of the file whose jq path FIELD is the
# median (the lower of the two middle ones for an even count).
median_round() {
    local field=$1
    shift
    jq -s "map($field // null) | to_entries | map(select(.value != null)) | sort_by(.value)
           | if length == 0 then empty else .[((length + 1) / 2 | floor) - 1].key end" "$@"
}

# sws_point CFG WORKERS CLIENTS ROUND: sample ROUND of one SWS configuration: its own server
# start, one injector run. A point that failed in an earlier round is not run again.
sws_point() {
    local cfg=$1 workers=$2 clients=$3 r=$4
    local name="sws/$cfg-w$workers-c$clients"
    local logf="$OUT/logs/sws_$cfg-w$workers-c$clients.round$r.server.log"
    local stats="$TMP/sws-stats/$cfg-w$workers-c$clients.round$r.json"
    [ -f "$OUT/$name.error" ] && return
    [ "$r" = 1 ] && rm -f "$OUT/$name.json" "$OUT/$name.stats.json"
    mkdir -p "$TMP/sws-stats"
    rm -f "$stats"
    # Up to three attempts: a peer's port can still be taken between the check and its bind.
    local why=""
    for _ in 1 2 3; do
        if ! start_sws "$cfg" "$workers" "$stats" "$logf"; then
            stop_server
            why="could not start $cfg: $(why_failed "$logf")"
            continue
        fi
        if wait_listen "$PORT"; then
            why=""
            break
        fi
        stop_server
        why="$cfg did not listen on 127.0.0.1:$PORT: $(why_failed "$logf" "$TMP/nginx/logs/stderr.log" "$TMP/nginx/logs/error.log" "$TMP/apache/logs/stderr.log" "$TMP/apache/logs/error.log")"
        rm -f "$TMP"/nginx/logs/*.log "$TMP"/apache/logs/*.log
    done
    if [ -n "$why" ]; then
        record_missing "$name" "round $r: $why"
        return
    fi
    log "SWS $cfg, $workers worker(s), $clients clients (${SECS} s, round $r/$RUNS)"
    if run_json "$name.round$r" on_clients "$BIN/load-injector" run --target "127.0.0.1:$PORT" --clients "$clients" \
        --duration "$SECS" --warmup "$WARMUP" --runs 1 --path /1k.html --format json; then
        stop_server
        jq '{median: .runs[0], runs: [.runs[0]], config, env}' "$OUT/$name.round$r.json" >"$TMP/sample.json" &&
            keep_sample "$name" "$r" "$TMP/sample.json"
        echo "   req/s $(json_get "$OUT/$name.round$r.json" .median.requests_per_sec)" >&2
    else
        stop_server
        record_missing "$name" "round $r: $(cat "$OUT/$name.round$r.error")"
        rm -f "$OUT/$name.round$r.error"
    fi
}

# sws_finish CFG WORKERS CLIENTS: the point's result from its rounds: the injector's merge of
# the rounds' reports (every run, median and spread over them) and the server statistics of
# the median round; the round files go to logs/.
sws_finish() {
    local cfg=$1 workers=$2 clients=$3 r
    local name="sws/$cfg-w$workers-c$clients" files=() stat_files=()
    for r in $(seq 1 "$RUNS"); do
        [ -f "$OUT/$name.round$r.json" ] || continue
        files+=("$OUT/$name.round$r.json")
        stat_files+=("$TMP/sws-stats/$cfg-w$workers-c$clients.round$r.json")
    done
    if [ ! -f "$OUT/$name.error" ] && ((${#files[@]})); then
        if "$BIN/load-injector" merge "${files[@]}" --format json --output "$OUT/$name.json" >/dev/null 2>"$TMP/merge.err"; then
            local m
            m=$(median_round .median.requests_per_sec "${files[@]}") &&
                [ -f "${stat_files[$m]}" ] && cp "${stat_files[$m]}" "$OUT/$name.stats.json"
        else
            record_missing "$name" "merging the rounds failed: $(tr '\n' ' ' <"$TMP/merge.err")"
        fi
    fi
    for r in "${files[@]}"; do mv "$r" "$OUT/logs/sws_$(basename "$r")"; done
}

run_sws() {
    mkdir -p "$TMP/www"
    # 1 KB file (1024 bytes of HTML).
    { printf '<html>'; head -c 1011 /dev/zero | tr '\0' x; printf '</html>'; } | head -c 1024 >"$TMP/www/1k.html"
    chmod -R a+rX "$TMP/www"
    MAX_CLIENTS=0
    local c cfg w r p
    for c in $CLIENTS $SCALE_CLIENTS; do [ "$c" -gt "$MAX_CLIENTS" ] && MAX_CLIENTS=$c; done
    # The points (configuration, workers, clients); scaling: the same configurations on fewer
    # workers (peers on as many CPUs).
    local points=()
    for c in $CLIENTS; do
        for cfg in $SWS_CONFIGS; do points+=("$cfg $WORKERS $c"); done
    done
    for w in $SCALING_STEPS; do
        [ "$w" -lt "$WORKERS" ] || continue
        for cfg in $SWS_CONFIGS; do points+=("$cfg $w $SCALE_CLIENTS"); done
    done
    # Round-robin: round r is sample r of every point, each against its own server start.
    for r in $(seq 1 "$RUNS"); do
        # shellcheck disable=SC2086
        for p in "${points[@]}"; do sws_point $p "$r"; done
    done
    # shellcheck disable=SC2086
    for p in "${points[@]}"; do sws_finish $p; done
}

# ---------------------------------------------------------------------------------------------
# SFS and OpenSSH sftp.
start_sfs() {
    local cfg=$1 workers=$2 stats=$3 logf=$4 args fid
    fid=$(paper_fidelity "$cfg")
    case ${cfg%-paper} in
        colored) args="--runtime mely --stealing all --steal-amount one --coloring per-client" ;;
        colored-half) args="--runtime mely --stealing all --steal-amount half --coloring per-client" ;;
        none) args="--runtime mely --stealing all --coloring none" ;;
        ncopy) args="--runtime mely --stealing off --mode ncopy" ;;
        libasync-off) args="--runtime libasync --stealing off --coloring per-client" ;;
        libasync-base) args="--runtime libasync --stealing base --coloring per-client" ;;
        *) echo "unknown SFS configuration $cfg" >"$logf"; return 1 ;;
    esac
    # shellcheck disable=SC2086
    taskset -c "$(server_cpus_for "$workers")" "$BIN/sfs-server" --export "$TMP/export" --listen 127.0.0.1:0 \
        --keys "$TMP/keys" --workers "$workers" $args $fid --stats-json "$stats" >"$logf.out" 2>"$logf" &
    SERVER_PID=$!
    local i
    SFS_ADDR=""
    for i in $(seq 1 200); do
        SFS_ADDR=$(grep -o '127\.0\.0\.1:[0-9]*' "$logf.out" 2>/dev/null | head -1)
        [ -n "$SFS_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# median_json OUT FILES...: copies the file whose mbytes_per_sec is the median to OUT.
median_json() {
    local out=$1 pick
    shift
    pick=$(median_file mbytes_per_sec "$@") && cp "$pick" "$out"
}

# sfs_point CFG WORKERS ROUND: sample ROUND of one SFS configuration: its own server start,
# one sfs-bench run. A point that failed in an earlier round is not run again.
sfs_point() {
    local cfg=$1 workers=$2 r=$3
    local name="sfs/$cfg-w$workers" logf="$OUT/logs/sfs_$cfg-w$workers.round$r.server.log"
    local stats="$TMP/sfs-stats/$cfg-w$workers.round$r.json"
    [ -f "$OUT/$name.error" ] && return
    [ "$r" = 1 ] && rm -f "$OUT/$name.json" "$OUT/$name.stats.json"
    mkdir -p "$TMP/sfs-stats"
    rm -f "$stats"
    if ! start_sfs "$cfg" "$workers" "$stats" "$logf"; then
        stop_server
        record_missing "$name" "round $r: sfs-server $cfg did not start: $(why_failed "$logf")"
        return
    fi
    log "SFS $cfg, $workers worker(s), $SFS_CLIENTS clients (${SECS} s, round $r/$RUNS)"
    if run_json "$name.round$r" on_clients "$BIN/sfs-bench" --server "$SFS_ADDR" --user bench --key-file "$TMP/bench.key" \
        --clients "$SFS_CLIENTS" --file big --seconds "$SECS" --verify sample --format json --label "$cfg-w$workers"; then
        stop_server
        keep_sample "$name" "$r" "$OUT/$name.round$r.json"
        echo "   MB/s $(json_get "$OUT/$name.round$r.json" .mbytes_per_sec)" >&2
    else
        stop_server
        record_missing "$name" "round $r: $(cat "$OUT/$name.round$r.error")"
        rm -f "$OUT/$name.round$r.error"
    fi
}

# sfs_finish CFG WORKERS: the point's result from its rounds: the median round's sfs-bench
# report and server statistics; the round files go to logs/.
sfs_finish() {
    local cfg=$1 workers=$2 r
    local name="sfs/$cfg-w$workers" files=() stat_files=()
    for r in $(seq 1 "$RUNS"); do
        [ -f "$OUT/$name.round$r.json" ] || continue
        files+=("$OUT/$name.round$r.json")
        stat_files+=("$TMP/sfs-stats/$cfg-w$workers.round$r.json")
    done
    if [ ! -f "$OUT/$name.error" ] && ((${#files[@]})); then
        local m
        m=$(median_round .mbytes_per_sec "${files[@]}") && {
            cp "${files[$m]}" "$OUT/$name.json"
            [ -f "${stat_files[$m]}" ] && cp "${stat_files[$m]}" "$OUT/$name.stats.json"
            echo "   SFS $cfg-w$workers: median MB/s $(json_get "$OUT/$name.json" .mbytes_per_sec)" >&2
        }
    fi
    for r in "${files[@]}"; do mv "$r" "$OUT/logs/sfs_$(basename "$r")"; done
}

sftp_point() {
    local name=sfs/sftp
    rm -f "$OUT/$name.error"
    local port
    port=$(free_port)
    if ! peer_sshd_start "$port" "$(server_cpus_for "$WORKERS")" 2>"$OUT/logs/sshd.start.log"; then
        record_missing "$name" "could not start sshd: $(tail -n 2 "$OUT/logs/sshd.start.log" | tr '\n' ' ')"
        return
    fi
    SERVER_PID=$PEER_PID
    if ! wait_listen "$port"; then
        stop_server
        record_missing "$name" "sshd did not listen: $(tail -n 3 "$TMP/ssh/sshd.log" | tr '\n' ' ')"
        return
    fi
    # One session first: fails fast (and clearly) when login or the cipher does not work.
    if ! peer_sftp_get "$port" "$TMP/export/big" 1 "$CLIENT_CPUS" 2>"$OUT/logs/sftp.log"; then
        stop_server
        record_missing "$name" "sftp failed: $(tail -n 3 "$OUT/logs/sftp.log" | tr '\n' ' ') $(tail -n 2 "$TMP/ssh/sshd.log" | tr '\n' ' ')"
        return
    fi
    log "sftp: $SFTP_CLIENTS sessions each reading the ${SFS_MB} MB file $SFTP_GETS times, chacha20-poly1305 ($RUNS runs)"
    local r i files=() size
    size=$(stat -c %s "$TMP/export/big")
    for r in $(seq 1 "$RUNS"); do
        local t0 t1 pids=() failed=0
        t0=$(date +%s.%N)
        for i in $(seq 1 "$SFTP_CLIENTS"); do
            peer_sftp_get "$port" "$TMP/export/big" "$SFTP_GETS" "$CLIENT_CPUS" 2>>"$OUT/logs/sftp.log" &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i" || failed=1; done
        t1=$(date +%s.%N)
        if [ "$failed" = 1 ]; then
            stop_server
            record_missing "$name" "an sftp session failed: $(tail -n 3 "$OUT/logs/sftp.log" | tr '\n' ' ')"
            return
        fi
        # Wall time of all sessions, SSH handshakes included.
        awk -v b="$size" -v n="$SFTP_CLIENTS" -v g="$SFTP_GETS" -v t0="$t0" -v t1="$t1" -v r="$r" 'BEGIN {
            s = t1 - t0
            printf "{\"tool\":\"sftp\",\"cipher\":\"chacha20-poly1305@openssh.com\",\"run\":%d,\"clients\":%d,\"gets_per_session\":%d,\"bytes\":%.0f,\"seconds\":%.3f,\"mbytes_per_sec\":%.3f,\"errors\":0}\n", r, n, g, b * n * g, s, b * n * g / s / 1e6
        }' >"$OUT/logs/sftp.run$r.json"
        files+=("$OUT/logs/sftp.run$r.json")
        keep_sample "$name" "$r" "$OUT/logs/sftp.run$r.json"
    done
    stop_server
    median_json "$OUT/$name.json" "${files[@]}"
    echo "   MB/s $(json_get "$OUT/$name.json" .mbytes_per_sec)" >&2
}

# ---------------------------------------------------------------------------------------------
# SFS through the kernel (multiio): SFS_CLIENTS reader processes, each on its own mount of the
# server (one connection each, as the paper's client machines), reading the file in the
# server's page cache with the mount's cache dropped before every pass; then SFS_CLIENTS writer
# processes, each writing its own SFS_MB MB file through its own mount and fsyncing it at the
# end; sshfs the same way, and the writers straight into the export directory (its disk).

# mount_name KIND CFG: the experiment name of a read or write point.
mount_name() {
    local kind=$1 cfg=$2 base=mount
    [ "$kind" = write ] && base=mount-write
    case $cfg in
        sshfs | local) echo "sfs/$base-$cfg" ;;
        *) echo "sfs/$base-$cfg-w$WORKERS" ;;
    esac
}

# mount_configs KIND: the configurations of a read or write row; writes also run straight into
# the export directory ("local"), the disk's own rate with the same writers.
mount_configs() {
    if [ "$1" = write ]; then echo "$SFS_MOUNT_CONFIGS local"; else echo "$SFS_MOUNT_CONFIGS"; fi
}

# unmount_all: every mount this script made (lazily if busy); their daemons then exit.
unmount_all() {
    local m
    for m in "${MOUNTS[@]}"; do
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    MOUNTS=()
}

# mount_readers CFG LOG: SFS_CLIENTS mounts of the running server (or of sshd for sshfs); sets
# MOUNT_FILES (the file in each, comma-separated).
mount_readers() {
    local cfg=$1 logf=$2 i m
    MOUNT_FILES=""
    for i in $(seq 1 "$SFS_CLIENTS"); do
        m="$TMP/mnt/$cfg-$i"
        mkdir -p "$m"
        if [ "$cfg" = sshfs ]; then
            on_clients peer_sshfs_mount "$SSH_PORT" "$TMP/export" "$m" 2>>"$logf" || return 1
        else
            on_clients "$BIN/sfs-client" --server "$SFS_ADDR" --user bench --key-file "$TMP/bench.key" mount "$m" \
                --log "$logf.daemons" >>"$logf" 2>&1 || return 1
        fi
        MOUNTS+=("$m")
        MOUNT_FILES="$MOUNT_FILES${MOUNT_FILES:+,}$m/big"
    done
}

# mount_server CFG LOG: starts the server a configuration reads from; sets SERVER_PID.
mount_server() {
    local cfg=$1 logf=$2
    if [ "$cfg" = sshfs ]; then
        SSH_PORT=$(free_port) || return 1
        peer_sshd_start "$SSH_PORT" "$(server_cpus_for "$WORKERS")" 2>"$logf" || return 1
        SERVER_PID=$PEER_PID
        wait_listen "$SSH_PORT"
    else
        start_sfs "$cfg" "$WORKERS" "$OUT/logs/sfs_mount-$cfg.stats.json" "$logf"
    fi
}

# sfs_mount_point KIND CFG RUN: one measurement (server start, mounts, readers or writers,
# unmount, stop); KIND is read or write.
sfs_mount_point() {
    local kind=$1 cfg=$2 r=$3 name logf i wfiles=""
    name=$(mount_name "$kind" "$cfg")
    logf="$OUT/logs/${name//\//_}.run$r.log"
    if [ "$cfg" = local ]; then
        # The writers straight into the export directory: what its disk takes, no mount.
        for i in $(seq 1 "$SFS_CLIENTS"); do wfiles="$wfiles${wfiles:+,}$TMP/export/w-$i"; done
        log "SFS through the kernel: the export's disk, $SFS_CLIENTS local writers of ${SFS_MB} MB each, fsync at the end (run $r of $RUNS)"
        run_json "$name.run$r" on_clients "$BIN/sfs-bench" --write-files "$wfiles" --file-mb "$SFS_MB" --chunk 1048576 \
            --format json --label "mount-write-local"
        rm -f "$TMP"/export/w-*
        return
    fi
    if ! mount_server "$cfg" "$logf"; then
        stop_server
        record_missing "$name.run$r" "$cfg server did not start: $(why_failed "$logf" "$TMP/ssh/sshd.log")"
        return
    fi
    if ! mount_readers "$cfg" "$logf"; then
        unmount_all
        stop_server
        record_missing "$name.run$r" "mounting for $cfg failed: $(tail -n 3 "$logf" | tr '\n' ' ')"
        return
    fi
    if [ "$kind" = read ]; then
        log "SFS through the kernel: $cfg, $SFS_CLIENTS mounts and readers (${SECS} s, run $r of $RUNS)"
        run_json "$name.run$r" on_clients "$BIN/sfs-bench" --read-files "$MOUNT_FILES" --seconds "$SECS" --chunk 1048576 \
            --verify-against "$TMP/export/big" --server-pid "$SERVER_PID" --format json --label "mount-$cfg"
    else
        # The same mounts, each writer its own file w-I in mount I.
        wfiles=$(echo "$MOUNT_FILES" | awk -F, '{ for (i = 1; i <= NF; i++) { sub(/big$/, "w-" i, $i); printf "%s%s", (i > 1 ? "," : ""), $i } }')
        log "SFS through the kernel: $cfg, $SFS_CLIENTS mounts and writers of ${SFS_MB} MB each, fsync at the end (run $r of $RUNS)"
        run_json "$name.run$r" on_clients "$BIN/sfs-bench" --write-files "$wfiles" --file-mb "$SFS_MB" --chunk 1048576 \
            --verify-dir "$TMP/export" --server-pid "$SERVER_PID" --format json --label "mount-write-$cfg"
    fi
    unmount_all
    stop_server
    rm -f "$TMP"/export/w-*
}

# run_sfs_mounts: every configuration once per run, reads then writes, interleaved (read A, read
# B, write A, write B, read A ...); the median run of each becomes its result.
run_sfs_mounts() {
    local cfg r name files kind
    mkdir -p "$TMP/mnt"
    if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
        for kind in read write; do
            for cfg in $(mount_configs "$kind"); do
                record_missing "$(mount_name "$kind" "$cfg")" "no /dev/fuse or no fusermount3 (package fuse3): cannot mount"
            done
        done
        return
    fi
    for r in $(seq 1 "$RUNS"); do
        for kind in read write; do
            for cfg in $(mount_configs "$kind"); do sfs_mount_point "$kind" "$cfg" "$r"; done
        done
    done
    for name in $(for kind in read write; do for cfg in $(mount_configs "$kind"); do mount_name "$kind" "$cfg"; done; done); do
        files=()
        for r in $(seq 1 "$RUNS"); do
            if [ -f "$OUT/$name.run$r.json" ]; then
                files+=("$OUT/$name.run$r.json")
            elif [ -f "$OUT/$name.run$r.error" ]; then
                mv "$OUT/$name.run$r.error" "$OUT/$name.error"
            fi
        done
        if ((${#files[@]})); then
            rm -f "$OUT/$name.error"
            median_json "$OUT/$name.json" "${files[@]}"
        fi
        for r in "${files[@]}"; do mv "$r" "$OUT/logs/$(basename "$r")"; done
    done
}

run_sfs() {
    mkdir -p "$TMP/export"
    if ! "$BIN/sfs-server" keygen --user bench --keys "$TMP/keys" --key-file "$TMP/bench.key" >"$OUT/logs/sfs-keygen.log" 2>&1; then
        local cfg
        for cfg in $SFS_CONFIGS; do record_missing "sfs/$cfg-w$WORKERS" "sfs-server keygen failed: $(tail -n 2 "$OUT/logs/sfs-keygen.log" | tr '\n' ' ')"; done
    else
        head -c $((SFS_MB * 1000 * 1000)) /dev/urandom >"$TMP/export/big"
        cat "$TMP/export/big" >/dev/null # into the page cache
        local cfg w r p points=()
        for cfg in $SFS_CONFIGS; do points+=("$cfg $WORKERS"); done
        # Scaling: the colored server and the uniprocessor original on fewer workers (none on 1
        # worker is libasync-smp's baseline for its 2.5x).
        for w in $SCALING_STEPS; do
            [ "$w" -lt "$WORKERS" ] || continue
            for cfg in colored none; do
                case " $SFS_CONFIGS " in *" $cfg "*) points+=("$cfg $w") ;; esac
            done
        done
        # Round-robin: round r is sample r of every point, each against its own server start.
        for r in $(seq 1 "$RUNS"); do
            # shellcheck disable=SC2086
            for p in "${points[@]}"; do sfs_point $p "$r"; done
        done
        # shellcheck disable=SC2086
        for p in "${points[@]}"; do sfs_finish $p; done
    fi
    if [ -f "$TMP/export/big" ]; then
        sftp_point
        run_sfs_mounts
    fi
}

# ---------------------------------------------------------------------------------------------
# Instruction counts (callgrind) of the single-threaded paths: work per operation, noise-free.
run_instr() {
    local name=instr/counts r runs=()
    mkdir -p "$OUT/instr"
    rm -f "$OUT/$name.error"
    if ! command -v valgrind >/dev/null 2>&1 && [ "${REPRO_NO_INSTALL:-0}" != 1 ]; then
        ensure_packages valgrind || log "could not install valgrind"
    fi
    if ! command -v valgrind >/dev/null 2>&1; then
        record_missing "$name" "valgrind is not installed (apt-get install valgrind)"
        return
    fi
    log "instruction counts under callgrind ($RUNS run(s))"
    for r in $(seq 1 "$RUNS"); do
        if "$BIN/instr-counts" --json-out "$TMP/instr.$r.json" >"$OUT/logs/instr.out" 2>"$OUT/logs/instr.log"; then
            cat "$OUT/logs/instr.out" >&2
            keep_sample "$name" "$r" "$TMP/instr.$r.json"
            runs+=("$TMP/instr.$r.json")
        else
            record_missing "$name" "instr-counts failed: $(tail -n 3 "$OUT/logs/instr.log" | tr '\n' ' ')"
            return
        fi
    done
    median_by op instructions_per_op "$OUT/$name.json" "${runs[@]}"
}

# ---------------------------------------------------------------------------------------------
# The simulator (microbenches simulate): every figure it writes is simulated.
# Table rows as "bench runtime stealing" (stealing time-left-profiled: unbalanced on profiled costs).
SIM_ROWS="unbalanced:libasync:off unbalanced:libasync:base unbalanced:mely:off unbalanced:mely:base
unbalanced:mely:time-left unbalanced:mely:time-left-profiled penalty:libasync:off penalty:libasync:base
penalty:mely:base penalty:mely:penalty cache-efficient:libasync:off cache-efficient:libasync:base
cache-efficient:mely:base cache-efficient:mely:locality"
SIM_ABLATION_ROWS="unbalanced:libasync:off unbalanced:libasync:base unbalanced:mely:base unbalanced:mely:time-left
penalty:libasync:off penalty:libasync:base penalty:mely:base penalty:mely:penalty"
SIM_THIEF_ROWS="unbalanced:libasync:off unbalanced:libasync:base unbalanced:mely:base unbalanced:mely:time-left"
SIM_SCALE_CORES="1 2 4 8 16 32 64"
SIM_SCALE_POLICIES="off base time-left penalty locality all"

# sim_point NAME BENCH RUNTIME STEALING CORES SECONDS: one simulation on e5410, as JSON.
sim_point() {
    local name=$1 bench=$2 runtime=$3 stealing=$4 cores=$5 secs=$6 extra=()
    shift 6
    if [ "$stealing" = time-left-profiled ]; then stealing=time-left extra=(--costs profiled); fi
    run_json "$name" "$BIN/microbenches" simulate "$bench" --runtime "$runtime" --stealing "$stealing" \
        --cores "$cores" --topology e5410 --seconds "$secs" --calibration "$OUT/sim/calibration.json" \
        --format json "${extra[@]}" "$@"
}

# The paper-faithful e5410 (8 cores): each design's per-event overhead fitted to the paper's
# no-stealing rows only (sim/paper-fit.json), every row of Tables III-VI with it and
# --fidelity paper (sim/e5410-paper: the stealing rows are predictions), the ablation (from
# --fidelity ours, one paper mechanism at a time, then all: sim/ablation/<step>) and the thief
# count (sim/thieves/k<K>). Figures are simulated; the report prints the validation beside them.
run_sim_paper() {
    log "simulator: the paper's per-event overhead, fitted to its no-stealing rows (${SIM_PAPER_SECONDS} virtual s per run)"
    if ! run_json sim/paper-fit "$BIN/microbenches" simulate paper-fit --calibration "$OUT/sim/calibration.json" \
        --seconds "$SIM_PAPER_SECONDS" --format json; then
        return
    fi
    local -A over=()
    over[libasync]=$(jq -r '.overhead_cycles.libasync' "$OUT/sim/paper-fit.json")
    over[mely]=$(jq -r '.overhead_cycles.mely' "$OUT/sim/paper-fit.json")
    local row bench runtime stealing step k flags
    # The report's simulated timeline: 2 ms of virtual time of libasync-smp's stealing on
    # unbalanced, paper mode, from 50 ms on.
    mkdir -p "$OUT/traces"
    sim_point sim/trace-unbalanced-libasync-base unbalanced libasync base 8 "$SIM_PAPER_SECONDS" \
        --fidelity paper --event-overhead-cycles "${over[libasync]}" \
        --trace "$OUT/traces/sim-e5410-c8-unbalanced-libasync-base-paper.json" --trace-from 0.05 --trace-for 0.002 \
        --trace-records 1000000 && mv "$OUT/sim/trace-unbalanced-libasync-base.json" "$OUT/logs/"
    mkdir -p "$OUT/sim/e5410-paper"
    log "simulator: Tables III-VI predicted (e5410, 8 cores, --fidelity paper, fitted overhead)"
    for row in $SIM_ROWS; do
        IFS=: read -r bench runtime stealing <<<"$row"
        sim_point "sim/e5410-paper/$bench-$runtime-$stealing" "$bench" "$runtime" "$stealing" 8 "$SIM_PAPER_SECONDS" \
            --fidelity paper --event-overhead-cycles "${over[$runtime]}"
    done
    log "simulator: ablation, one paper mechanism at a time (e5410, 8 cores)"
    for step in ours overhead spin tas post1 walk paper; do
        mkdir -p "$OUT/sim/ablation/$step"
        for row in $SIM_ABLATION_ROWS; do
            IFS=: read -r bench runtime stealing <<<"$row"
            case $step in
                ours) flags=(--fidelity ours) ;;
                overhead) flags=(--fidelity ours --event-overhead-cycles "${over[$runtime]}") ;;
                spin) flags=(--fidelity ours --idle spin) ;;
                tas) flags=(--fidelity ours --lock tas) ;;
                post1) flags=(--fidelity ours --post-batch 1) ;;
                walk) flags=(--fidelity ours --steal-walk from-head) ;;
                paper) flags=(--fidelity paper --event-overhead-cycles "${over[$runtime]}") ;;
            esac
            sim_point "sim/ablation/$step/$bench-$runtime-$stealing" "$bench" "$runtime" "$stealing" 8 \
                "$SIM_PAPER_SECONDS" "${flags[@]}"
        done
    done
    # K thieves: cores 0 to K may steal, core 0 being unbalanced's one victim (--thieves K+1).
    log "simulator: thief count 1 to 7, everything paper (e5410, 8 cores)"
    for k in 1 2 3 4 5 6 7; do
        mkdir -p "$OUT/sim/thieves/k$k"
        for row in $SIM_THIEF_ROWS; do
            IFS=: read -r bench runtime stealing <<<"$row"
            sim_point "sim/thieves/k$k/$bench-$runtime-$stealing" "$bench" "$runtime" "$stealing" 8 \
                "$SIM_PAPER_SECONDS" --fidelity paper --event-overhead-cycles "${over[$runtime]}" --thieves "$((k + 1))"
        done
    done
}

run_sim() {
    mkdir -p "$OUT/sim/e5410-c8" "$OUT/sim/scaling"
    log "simulator: calibrating this machine"
    rm -f "$OUT/sim/calibration.error"
    if ! "$BIN/microbenches" simulate calibrate --out "$OUT/sim/calibration.json" 2>"$OUT/logs/sim-calibrate.log"; then
        record_missing sim/calibration "microbenches simulate calibrate failed: $(tail -n 3 "$OUT/logs/sim-calibrate.log" | tr '\n' ' ')"
        return
    fi
    log "simulator: validation against real runs on 1 and 2 cores (${SIM_VALIDATE_SECONDS} s each)"
    run_json sim/validate "$BIN/microbenches" simulate validate --calibration "$OUT/sim/calibration.json" \
        --seconds "$SIM_VALIDATE_SECONDS" --format json
    local row bench runtime stealing cores p
    log "simulator: Tables III-VI on 8 simulated cores (e5410, ${SIM_SECONDS} virtual s)"
    for row in $SIM_ROWS; do
        IFS=: read -r bench runtime stealing <<<"$row"
        sim_point "sim/e5410-c8/$bench-$runtime-$stealing" "$bench" "$runtime" "$stealing" 8 "$SIM_SECONDS"
    done
    log "simulator: scaling, 1 to 64 simulated cores (${SIM_SCALE_SECONDS} virtual s per point)"
    for bench in unbalanced penalty; do
        for cores in $SIM_SCALE_CORES; do
            for p in $SIM_SCALE_POLICIES; do
                sim_point "sim/scaling/$bench-mely-$p-c$cores" "$bench" mely "$p" "$cores" "$SIM_SCALE_SECONDS"
            done
        done
    done
    run_sim_paper
}

START=$(date +%s)
case " $ONLY " in *" micro "*) run_micro; run_micro_trace ;; esac
case " $ONLY " in *" sws "*) run_sws ;; esac
case " $ONLY " in *" sfs "*) run_sfs ;; esac
case " $ONLY " in *" instr "*) run_instr ;; esac
case " $ONLY " in *" sim "*) run_sim ;; esac
log "experiments took $(( $(date +%s) - START )) s"

# ---------------------------------------------------------------------------------------------
# Report.
if "$BIN/colored-report" report "$OUT" 2>"$OUT/logs/colored-report.log"; then
    cat "$OUT/logs/colored-report.log" >&2
    echo
    cat "$OUT/report.md"
else
    cat "$OUT/logs/colored-report.log" >&2
    echo "error: colored-report failed; the raw results are in $OUT" >&2
    exit 1
fi
n_missing=$(find "$OUT" -name '*.error' | wc -l)
echo
echo "results: $OUT ($n_missing experiment(s) missing; see report.md)"
