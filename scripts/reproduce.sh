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
# loopback; scaling over 1, 2, 4, ... workers up to the worker count. Then `colored-report
# report` writes report.md, csv/ and plots/ (SVG and PNG).
#
# Workers and CPUs: every server (sws-server, sfs-server, nginx, Apache, sshd) and every
# microbenchmark runs REPRO_WORKERS workers (default: what the machine allows: all the CPUs this
# shell may use, or half of them when it has 4 or more, the other half going to the clients).
# With 4 or more CPUs and fewer workers than CPUs, the servers run on the first REPRO_WORKERS
# CPUs and the load injector, sfs-bench and the sftp clients on the others (taskset); with fewer
# CPUs they share them. More workers than server CPUs oversubscribes them; the report says so.
# env.json records workers, server_cpus, client_cpus, cpu_split, oversubscribed.
#
# Output: results/<date>-<commit>/ (raw JSON per experiment, logs/, csv/, plots/, report.md).
# An experiment that cannot run or fails leaves <name>.error with the reason instead of its
# JSON, and the script goes on; nothing is ever estimated. Every server it starts listens on
# 127.0.0.1 only and is stopped on exit, failure or interrupt (trap).
#
# Environment overrides (for development; the defaults are the modes above):
#   REPRO_WORKERS   server workers (and the top of the scaling steps)
#   REPRO_SECONDS   measured seconds per run           REPRO_RUNS      runs per configuration
#   REPRO_WARMUP    warm-up seconds per run            REPRO_CLIENTS   client counts, e.g. "50 200"
#   REPRO_SCALE_CLIENTS  client count of the scaling runs (fewer workers than REPRO_WORKERS)
#   REPRO_SFS_MB    size of the SFS file (MB)
#   REPRO_SFTP_GETS reads of the file per sftp session (amortises the SSH handshake)
#   REPRO_ONLY      subset of "micro sws sfs" to run   REPRO_SWS_CONFIGS / REPRO_SFS_CONFIGS
#   REPRO_OUT       output directory                   REPRO_NO_INSTALL=1  never apt-get
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
    -h|--help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
if [ -n "${REPRO_RUNS:-}" ]; then PT_REPEAT=$RUNS; fi
ONLY=${REPRO_ONLY:-"micro sws sfs"}
SWS_CONFIGS=${REPRO_SWS_CONFIGS:-"libasync-off libasync-base mely-off mely-all-p1 mely-all-p1000 mely-all-p1000-half ncopy nginx apache"}
SFS_CONFIGS=${REPRO_SFS_CONFIGS:-"colored colored-half none ncopy libasync-off libasync-base"}
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

log() { echo ">> $*" >&2; }

for tool in taskset awk; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (util-linux, gawk/mawk)" >&2; exit 2; }
done

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
# on_clients CMD...: runs a client (injector, sfs-bench, sftp) on the client CPUs.
on_clients() { taskset -c "$CLIENT_CPUS" "$@"; }
log "$WORKERS workers; server CPUs $SERVER_CPUS, client CPUs $CLIENT_CPUS ($CPU_SPLIT$([ "$OVERSUBSCRIBED" = true ] && echo ', oversubscribed')); scaling steps $SCALING_STEPS"

# ---------------------------------------------------------------------------------------------
# Build and install what is missing.
ensure_build_deps || exit 1
if [ "${REPRO_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
    # Peers and the plots' font; a failure here only makes those experiments missing.
    for p in nginx apache2 openssh-server openssh-client fonts-dejavu-core; do
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
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ]; then stop_server; fi
    # Anything else this script started and left behind (its children only).
    local p
    for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n\r\t')"; }

# Environment of this run.
{
    printf '{\n'
    printf '  "commit": %s,\n' "$(json_str "$COMMIT")"
    printf '  "date": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
    printf '  "mode": %s,\n' "$(json_str "$MODE")"
    printf '  "cpu_model": %s,\n' "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')")"
    printf '  "cores": %s,\n' "$(nproc)"
    printf '  "kernel": %s,\n' "$(json_str "$(uname -r)")"
    printf '  "rustc": %s,\n' "$(json_str "$(rustc --version 2>/dev/null || echo unknown)")"
    printf '  "seconds": %s,\n' "$SECS"
    printf '  "runs": %s,\n' "$RUNS"
    printf '  "warmup": %s,\n' "$WARMUP"
    printf '  "clients": %s,\n' "$(json_str "$CLIENTS")"
    printf '  "paper_tables_seconds": %s,\n' "$PT_SECONDS"
    printf '  "paper_tables_repeat": %s,\n' "$PT_REPEAT"
    printf '  "workers": %s,\n' "$WORKERS"
    printf '  "server_cpus": %s,\n' "$(json_str "$SERVER_CPUS")"
    printf '  "client_cpus": %s,\n' "$(json_str "$CLIENT_CPUS")"
    printf '  "cpu_split": %s,\n' "$(json_str "$CPU_SPLIT")"
    printf '  "oversubscribed": %s,\n' "$OVERSUBSCRIBED"
    printf '  "scaling_workers": %s,\n' "$(json_str "$SCALING_STEPS")"
    printf '  "sfs_clients": %s,\n' "$SFS_CLIENTS"
    printf '  "sfs_file_mb": %s,\n' "$SFS_MB"
    printf '  "sftp_clients": %s,\n' "$SFTP_CLIENTS"
    printf '  "sftp_gets_per_session": %s,\n' "$SFTP_GETS"
    printf '  "nginx": %s,\n' "$(json_str "$( (nginx -v || /usr/sbin/nginx -v) 2>&1 | head -1)")"
    printf '  "apache": %s,\n' "$(json_str "$( (apache2 -v || /usr/sbin/apache2 -v) 2>/dev/null | head -1)")"
    printf '  "openssh": %s\n' "$(json_str "$(ssh -V 2>&1 | head -1)")"
    printf '}\n'
} >"$OUT/env.json"

# Record an experiment as missing: record_missing NAME MESSAGE...
record_missing() {
    local name=$1
    shift
    rm -f "$OUT/$name.json"
    printf '%s\n' "$*" >"$OUT/$name.error"
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

# ---------------------------------------------------------------------------------------------
# Servers.
# A port nobody listens on, below the kernel's ephemeral range (client sockets of the injector
# and of other programs take ports from that range and could grab ours in between).
free_port() {
    local p i low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 12000 ] 2>/dev/null || low=32768
    for i in $(seq 1 200); do
        p=$(( 10000 + RANDOM % (low - 10000) ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

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

# stop_server: SIGTERM, then SIGKILL after 10 s; waits for it.
stop_server() {
    local pid=$SERVER_PID i
    SERVER_PID=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid ignored SIGTERM; killing it"
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# start_sws CONFIG WORKERS STATS_FILE LOG: starts one configuration on the first WORKERS server
# CPUs; sets SERVER_PID and PORT.
start_sws() {
    local cfg=$1 workers=$2 stats=$3 logf=$4 args cpus
    cpus=$(server_cpus_for "$workers")
    PORT=$(free_port) || { echo "no free port" >"$logf"; return 1; }
    : >"$logf"
    case $cfg in
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
    taskset -c "$cpus" "$BIN/sws-server" --root "$TMP/www" --listen "127.0.0.1:0" --workers "$workers" $args \
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
# Microbenchmarks.
run_micro() {
    log "microbenchmarks: paper tables (${PT_SECONDS} s x ${PT_REPEAT}), $WORKERS workers"
    local name=microbench/paper-tables err="$OUT/logs/paper-tables.log"
    rm -f "$OUT/$name.error"
    if taskset -c "$(server_cpus_for "$WORKERS")" "$BIN/microbenches" paper-tables --workers "$WORKERS" \
        --seconds "$PT_SECONDS" --repeat "$PT_REPEAT" \
        --json-out "$OUT/$name.json" --markdown-out "$OUT/microbench/paper-tables.md" 2>"$err" | tee "$OUT/logs/paper-tables.out" >&2 \
        && [ -s "$OUT/$name.json" ]; then
        :
    else
        record_missing "$name" "microbenches paper-tables failed: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    local w
    for w in $SCALING_STEPS; do
        log "microbenchmarks: dispatch, $w worker(s), libasync/mely/tokio (${DISPATCH_SECONDS} s each)"
        local d=microbench/dispatch-w$w
        rm -f "$OUT/$d.error"
        if taskset -c "$(server_cpus_for "$w")" "$BIN/microbenches" dispatch --runtime all --workers "$w" --seconds "$DISPATCH_SECONDS" \
            --json-out "$OUT/$d.json" >"$OUT/logs/dispatch-w$w.out" 2>"$OUT/logs/dispatch-w$w.log" && [ -s "$OUT/$d.json" ]; then
            cat "$OUT/logs/dispatch-w$w.out" >&2
        else
            record_missing "$d" "microbenches dispatch failed: $(tail -n 3 "$OUT/logs/dispatch-w$w.log" | tr '\n' ' ')"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# SWS and its peers: one server start per measurement, so the counters belong to it.
sws_point() {
    local cfg=$1 workers=$2 clients=$3
    local name="sws/$cfg-w$workers-c$clients" logf="$OUT/logs/sws_$cfg-w$workers-c$clients.server.log"
    local stats="$OUT/$name.stats.json"
    rm -f "$stats" "$OUT/$name.error"
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
        record_missing "$name" "$why"
        return
    fi
    log "SWS $cfg, $workers worker(s), $clients clients (${SECS} s x $RUNS)"
    run_json "$name" on_clients "$BIN/load-injector" run --target "127.0.0.1:$PORT" --clients "$clients" \
        --duration "$SECS" --warmup "$WARMUP" --runs "$RUNS" --path /1k.html --format json
    stop_server
    if [ -f "$OUT/$name.json" ]; then
        sed -n 's/.*"requests_per_sec": *\([0-9.]*\).*/   req\/s \1/p' "$OUT/$name.json" | tail -1 >&2
    fi
}

run_sws() {
    mkdir -p "$TMP/www"
    # 1 KB file (1024 bytes of HTML).
    { printf '<html>'; head -c 1011 /dev/zero | tr '\0' x; printf '</html>'; } | head -c 1024 >"$TMP/www/1k.html"
    chmod -R a+rX "$TMP/www"
    MAX_CLIENTS=0
    local c cfg
    for c in $CLIENTS $SCALE_CLIENTS; do [ "$c" -gt "$MAX_CLIENTS" ] && MAX_CLIENTS=$c; done
    for c in $CLIENTS; do
        for cfg in $SWS_CONFIGS; do sws_point "$cfg" "$WORKERS" "$c"; done
    done
    # Scaling: the same configurations on fewer workers (peers on as many CPUs).
    local w
    for w in $SCALING_STEPS; do
        [ "$w" -lt "$WORKERS" ] || continue
        for cfg in $SWS_CONFIGS; do sws_point "$cfg" "$w" "$SCALE_CLIENTS"; done
    done
}

# ---------------------------------------------------------------------------------------------
# SFS and OpenSSH sftp.
start_sfs() {
    local cfg=$1 workers=$2 stats=$3 logf=$4 args
    case $cfg in
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
        --keys "$TMP/keys" --workers "$workers" $args --stats-json "$stats" >"$logf.out" 2>"$logf" &
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
    local out=$1
    shift
    local f pick
    pick=$(for f in "$@"; do
        printf '%s %s\n' "$(sed -n 's/.*"mbytes_per_sec": *\([0-9.eE+-]*\).*/\1/p' "$f" | head -1)" "$f"
    done | sort -g | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}')
    [ -n "$pick" ] && cp "$pick" "$out"
}

sfs_point() {
    local cfg=$1 workers=$2
    local name="sfs/$cfg-w$workers" logf="$OUT/logs/sfs_$cfg-w$workers.server.log"
    rm -f "$OUT/$name.error" "$OUT/$name.stats.json"
    if ! start_sfs "$cfg" "$workers" "$OUT/$name.stats.json" "$logf"; then
        stop_server
        record_missing "$name" "sfs-server $cfg did not start: $(why_failed "$logf")"
        return
    fi
    log "SFS $cfg, $workers worker(s), $SFS_CLIENTS clients (${SECS} s x $RUNS)"
    local r files=() ok=1
    for r in $(seq 1 "$RUNS"); do
        if run_json "$name.run$r" on_clients "$BIN/sfs-bench" --server "$SFS_ADDR" --user bench --key-file "$TMP/bench.key" \
            --clients "$SFS_CLIENTS" --file big --seconds "$SECS" --verify sample --format json --label "$cfg-w$workers"; then
            files+=("$OUT/$name.run$r.json")
        else
            ok=0
            mv "$OUT/$name.run$r.error" "$OUT/$name.error" 2>/dev/null
            break
        fi
    done
    stop_server
    if [ "$ok" = 1 ] && ((${#files[@]})); then
        median_json "$OUT/$name.json" "${files[@]}"
        sed -n 's/.*"mbytes_per_sec": *\([0-9.]*\).*/   MB\/s \1/p' "$OUT/$name.json" >&2
    fi
    for r in "${files[@]}"; do mv "$r" "$OUT/logs/$(basename "$r")"; done
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
    done
    stop_server
    median_json "$OUT/$name.json" "${files[@]}"
    sed -n 's/.*"mbytes_per_sec": *\([0-9.]*\).*/   MB\/s \1/p' "$OUT/$name.json" >&2
}

run_sfs() {
    mkdir -p "$TMP/export"
    if ! "$BIN/sfs-server" keygen --user bench --keys "$TMP/keys" --key-file "$TMP/bench.key" >"$OUT/logs/sfs-keygen.log" 2>&1; then
        local cfg
        for cfg in $SFS_CONFIGS; do record_missing "sfs/$cfg-w$WORKERS" "sfs-server keygen failed: $(tail -n 2 "$OUT/logs/sfs-keygen.log" | tr '\n' ' ')"; done
    else
        head -c $((SFS_MB * 1000 * 1000)) /dev/urandom >"$TMP/export/big"
        cat "$TMP/export/big" >/dev/null # into the page cache
        local cfg w
        for cfg in $SFS_CONFIGS; do sfs_point "$cfg" "$WORKERS"; done
        # Scaling: the colored server and the uniprocessor original on fewer workers (none on 1
        # worker is libasync-smp's baseline for its 2.5x).
        for w in $SCALING_STEPS; do
            [ "$w" -lt "$WORKERS" ] || continue
            for cfg in colored none; do
                case " $SFS_CONFIGS " in *" $cfg "*) sfs_point "$cfg" "$w" ;; esac
            done
        done
    fi
    if [ -f "$TMP/export/big" ]; then sftp_point; fi
}

START=$(date +%s)
case " $ONLY " in *" micro "*) run_micro ;; esac
case " $ONLY " in *" sws "*) run_sws ;; esac
case " $ONLY " in *" sfs "*) run_sfs ;; esac
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
