# shellcheck shell=bash
# Shared helpers for the scripts; source it, do not run it.

# Install the system packages the build needs (Debian), only when they are missing.
ensure_build_deps() {
    local missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if ! pkg-config --exists hwloc 2>/dev/null; then missing+=(libhwloc-dev); fi
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if ((${#missing[@]})); then
        echo ">> installing ${missing[*]}" >&2
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: need root to apt-get install ${missing[*]} (or install them yourself)" >&2
            return 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
        return 1
    fi
}

# Install extra Debian packages (peers for the evaluation) when missing.
ensure_packages() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if ((${#missing[@]})); then
        echo ">> installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# ---------------------------------------------------------------------------------------------
# Regression tracking (scripts/compare.sh --ab, scripts/track.sh): revisions built in detached
# git worktrees under target/, each sample one run of that revision's own scripts/reproduce.sh.

# The colored-report of this checkout (built when missing or older than its sources): sets
# REPORT_BIN. COLORED_REPORT overrides it (tests point it at their build).
tracker_report_bin() {
    if [ -n "${COLORED_REPORT:-}" ]; then REPORT_BIN=$COLORED_REPORT; return 0; fi
    REPORT_BIN=target/release/colored-report
    if [ ! -x "$REPORT_BIN" ] || [ -n "$(find colored-report/src microbench-defs/src simulator/src load-injector/src -newer "$REPORT_BIN" -name '*.rs' 2>/dev/null | head -1)" ]; then
        cargo build --release -q -p colored-report --bin colored-report || return 2
    fi
    REPORT_BIN=$PWD/$REPORT_BIN
}

# tracker_only LIST: the comma-separated experiment groups (micro, sws, sfs, instr) as
# reproduce.sh's REPRO_ONLY; sets TRACK_ONLY. Fails on an unknown group.
tracker_only() {
    local g
    TRACK_ONLY=""
    for g in ${1//,/ }; do
        case $g in
            micro|sws|sfs|instr) TRACK_ONLY="$TRACK_ONLY $g" ;;
            *) echo "error: unknown experiment group '$g' (expected micro, sws, sfs, instr)" >&2; return 2 ;;
        esac
    done
    TRACK_ONLY=${TRACK_ONLY# }
    [ -n "$TRACK_ONLY" ] || { echo "error: no experiment group given" >&2; return 2; }
}

# tracker_checkout DIR REV: a detached worktree of this repository at REV in DIR (created, or
# moved to REV with local changes dropped; ignored files such as its target/ are kept). A new
# worktree's target/ starts as a copy of this checkout's target/release, so registry crates
# are not compiled again.
tracker_checkout() {
    local dir=$1 rev=$2
    if [ -e "$dir/.git" ]; then
        git -C "$dir" checkout -q --detach --force "$rev" && git -C "$dir" clean -q -fd
    else
        mkdir -p "$(dirname "$dir")"
        git worktree add -q --detach "$dir" "$rev" || return 1
        if [ -d target/release ] && [ ! -e "$dir/target" ]; then
            mkdir -p "$dir/target"
            cp -a --reflink=auto target/release "$dir/target/" 2>/dev/null || rm -rf "$dir/target/release"
        fi
    fi
}

# tracker_sample WORKTREE OUT LOG: one sample, the worktree's reproduce.sh (quick mode, one
# run per configuration) of the groups in TRACK_ONLY, written to OUT. Other REPRO_* settings
# of the caller's environment pass through.
tracker_sample() {
    local wt=$1 out=$2 logf=$3
    mkdir -p "$(dirname "$out")" "$(dirname "$logf")"
    REPRO_OUT=$out REPRO_RUNS=1 REPRO_ONLY=$TRACK_ONLY bash "$wt/scripts/reproduce.sh" quick >"$logf" 2>&1
}

# tracker_env SAMPLES_DIR NOTE: writes SAMPLES_DIR/env.json, the first sample's environment
# with "interleaving" set to NOTE.
tracker_env() {
    local dir=$1 note=$2 first
    first=$(find "$dir/samples" -mindepth 2 -maxdepth 2 -name env.json 2>/dev/null | sort -V | head -1)
    [ -n "$first" ] || { echo "error: no sample of $dir has an env.json" >&2; return 1; }
    jq --arg n "$note" '.interleaving = $n' "$first" >"$dir/env.json"
}

# require_tools TOOL...: fails (naming every one) when a tool is not on the PATH. Call it before
# the script starts work, with every tool the script runs.
require_tools() {
    local missing=() t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "error: missing tools: ${missing[*]} (on Debian: apt-get install the packages that hold them)" >&2
        return 1
    fi
}

# ensure_jq: jq (the JSON tool the scripts read results with), installed when missing.
ensure_jq() {
    command -v jq >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: jq is missing and installing it needs root (apt-get install jq)" >&2
        return 1
    fi
    ensure_packages jq
}

# json_get FILE FILTER: prints the value jq's FILTER selects in FILE (nothing when absent).
json_get() {
    jq -r "($2) // empty" "$1"
}

# median_file FIELD FILES...: prints the file whose numeric FIELD is the median (the lower of
# the two middle ones for an even count), read with jq.
median_file() {
    local field=$1 i
    shift
    i=$(jq -s --arg f "$field" \
        'map(.[$f] // null) | to_entries | map(select(.value != null)) | sort_by(.value)
         | if length == 0 then empty else .[((length + 1) / 2 | floor) - 1].key end' "$@") || return 1
    [ -n "$i" ] || return 1
    local files=("$@")
    printf '%s\n' "${files[$i]}"
}

# free_port: prints a port nobody listens on on 127.0.0.1, below the kernel's ephemeral range
# (client sockets of load generators and other programs take ports from that range and could
# grab ours between this check and the server's bind).
free_port() {
    local p low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 12000 ] 2>/dev/null || low=32768
    for _ in $(seq 1 200); do
        p=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# stop_process PID: SIGTERM, then SIGKILL (the process and its direct children) after 10 s;
# waits for it when it is a child of this shell.
stop_process() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo ">> process $pid ignored SIGTERM; killing it" >&2
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# stop_server: stop_process on $SERVER_PID (the server a script started last), then clear it.
stop_server() {
    local pid=${SERVER_PID:-}
    SERVER_PID=""
    stop_process "$pid"
}

# The CPUs this shell may run on (its affinity, /proc/self/status), one per line.
allowed_cpus() {
    local list part
    list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status 2>/dev/null)
    if [ -z "$list" ]; then
        seq 0 $(( $(nproc) - 1 ))
        return
    fi
    local IFS=,
    for part in $list; do
        case $part in
            *-*) seq "${part%-*}" "${part#*-}" ;;
            *) echo "$part" ;;
        esac
    done
}

# The worker counts of a scaling study up to N: 1, 2, 4, ... and N itself.
scaling_steps() {
    local n=$1 s=1 out=""
    while [ "$s" -lt "$n" ]; do
        out+="$s "
        s=$(( s * 2 ))
    done
    echo "$out$n"
}
