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
