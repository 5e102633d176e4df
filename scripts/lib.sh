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
    if [ ! -x "$REPORT_BIN" ] || [ -n "$(find microbenches/src -newer "$REPORT_BIN" -name '*.rs' 2>/dev/null | head -1)" ]; then
        cargo build --release -q -p microbenches --bin colored-report || return 2
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
