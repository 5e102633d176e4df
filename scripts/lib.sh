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
