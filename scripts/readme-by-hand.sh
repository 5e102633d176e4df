#!/usr/bin/env bash
# Runs the "By hand" section of README.md as written: every ```sh block between the
# by-hand:begin and by-hand:end markers, in order, in one bash (so variables carry over), from
# the repository's root (the first block builds, puts target/release on PATH and moves to a
# fresh temporary directory). A block that mounts through FUSE is skipped with SKIPPED when the
# machine has no /dev/fuse (under CI=true that is a failure). Background servers are stopped,
# the mount undone and the temporary directory removed on exit, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_packages curl fuse3

in_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

fuse_ok=true
if [ ! -c /dev/fuse ]; then
    if in_ci; then
        echo "readme-by-hand: error: no /dev/fuse: the README's mount cannot be followed" >&2
        exit 1
    fi
    fuse_ok=false
fi

script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
    cat <<'PROLOGUE'
set -euo pipefail
REPO_ROOT=$PWD
cleanup() {
    if [ "$PWD" != "$REPO_ROOT" ]; then
        if [ -d mnt ] && mountpoint -q mnt; then fusermount3 -u mnt || umount -l mnt || true; fi
        for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
        wait || true
        case $PWD in /tmp/*) rm -rf "$PWD" ;; esac
    fi
}
trap cleanup EXIT
PROLOGUE
    awk -v fuse_ok="$fuse_ok" '
        /<!-- by-hand:begin -->/ { on = 1; next }
        /<!-- by-hand:end -->/ { on = 0; next }
        on && /^```sh$/ { inblock = 1; block = ""; next }
        on && inblock && /^```$/ {
            inblock = 0
            if (fuse_ok != "true" && block ~ / mount mnt/) {
                print "echo \"SKIPPED README mount block: no /dev/fuse on this machine\" >&2"
            } else {
                printf "%s", block
            }
            next
        }
        inblock { block = block $0 "\n" }
    ' README.md
} >"$script"

blocks=$(grep -c '^```sh$' <(sed -n '/<!-- by-hand:begin -->/,/<!-- by-hand:end -->/p' README.md))
if [ "$blocks" -lt 5 ]; then
    echo "readme-by-hand: error: found $blocks sh blocks in README.md's By hand section" >&2
    exit 1
fi
echo ">> README By hand: $blocks blocks"
timeout 600 bash "$script"
echo ">> README By hand: every command ran"
