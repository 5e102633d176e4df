#!/usr/bin/env bash
# SFS experiment in one run: 16 clients reading a cached file, for each server configuration,
# repeated; prints a table of median MB/s and speedups over `--coloring none`, and writes
# JSON lines to $OUT (default: sfs-compare.jsonl in the working directory).
#
# Usage: sfs-server/bench/compare.sh [SIZE_MB=200] [SECONDS=5] [RUNS=3] [CLIENTS=16]
# Needs `cargo build --release` first. Client and server share this machine's cores: the
# client uses --verify sample and its CPU time is reported beside MB/s.
set -euo pipefail
SIZE_MB=${1:-200}
SECONDS_PER_RUN=${2:-5}
RUNS=${3:-3}
CLIENTS=${4:-16}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/target/release"
OUT=${OUT:-$PWD/sfs-compare.jsonl}
WORK=$(mktemp -d)
SRV_PID=""
cleanup() {
  if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/export"
"$BIN/sfs-server" keygen --user bench --keys "$WORK/keys" --key-file "$WORK/bench.key" >/dev/null
head -c $((SIZE_MB * 1000 * 1000)) /dev/urandom > "$WORK/export/big"
cat "$WORK/export/big" > /dev/null   # into the page cache
: > "$OUT"

start_server() { # args...; retried: a shared target dir may be relinking the binary
  local attempt
  ADDR=""
  for attempt in 1 2 3; do
    "$BIN/sfs-server" --export "$WORK/export" --listen 127.0.0.1:0 --keys "$WORK/keys" "$@" \
        > "$WORK/srv.out" 2> "$WORK/srv.err" &
    SRV_PID=$!
    for _ in $(seq 1 400); do
      grep -q "listening on" "$WORK/srv.out" 2>/dev/null && break
      sleep 0.05
    done
    ADDR=$(grep -o '127\.0\.0\.1:[0-9]*' "$WORK/srv.out" | head -1 || true)
    [ -n "$ADDR" ] && return 0
    echo "server did not start (attempt $attempt: $*):" >&2; cat "$WORK/srv.err" >&2
    kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
  done
  exit 1
}
stop_server() {
  kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
}

TICK=$(getconf CLK_TCK)
server_cpu() { # CPU seconds (user+system) of the server and its N-copy children
  local t=0 p
  for p in $SRV_PID $(pgrep -P "$SRV_PID" || true); do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  awk -v t="$t" -v k="$TICK" 'BEGIN{printf "%.2f", t/k}'
}

declare -A CFG
# CONFIGS="a b" selects a subset.
NAMES=(${CONFIGS:-none none-w1 mely-all mely-off libasync-base libasync-off ncopy})
CFG[none]="--workers 2 --runtime mely --stealing all --coloring none"
CFG[none-w1]="--workers 1 --runtime mely --stealing off --coloring none"
CFG[mely-all]="--workers 2 --runtime mely --stealing all --coloring per-client"
CFG[mely-off]="--workers 2 --runtime mely --stealing off --coloring per-client"
CFG[libasync-base]="--workers 2 --runtime libasync --stealing base --coloring per-client"
CFG[libasync-off]="--workers 2 --runtime libasync --stealing off --coloring per-client"
CFG[ncopy]="--workers 2 --runtime mely --stealing off --mode ncopy"
# Unpinned variants (not in the default set): is the baseline handicapped by pinning?
CFG[none-nopin]="${CFG[none]} --no-pin"
CFG[none-w1-nopin]="${CFG[none-w1]} --no-pin"
CFG[mely-all-nopin]="${CFG[mely-all]} --no-pin"
CFG[ncopy-nopin]="${CFG[ncopy]} --no-pin"

declare -A RES CORES MSMB
for run in $(seq 1 "$RUNS"); do
  for name in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    start_server ${CFG[$name]}
    cpu0=$(server_cpu)
    json=$("$BIN/sfs-bench" --server "$ADDR" --user bench --key-file "$WORK/bench.key" --clients "$CLIENTS" \
        --file big --seconds "$SECONDS_PER_RUN" --verify sample --format json --label "$name")
    cpu1=$(server_cpu)
    stop_server
    scpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.2f", b-a}')
    json="${json%\}},\"server_cpu_secs\":$scpu}"
    echo "$json" >> "$OUT"
    mbs=$(echo "$json" | sed -E 's/.*"mbytes_per_sec":([0-9.eE+-]+).*/\1/')
    RES[$name]="${RES[$name]:-} $mbs"
    # Server CPU over warm-up + measurement, as cores and as ms per MB served.
    span=$(awk -v s="$SECONDS_PER_RUN" 'BEGIN{w=s*0.1; if (w>2) w=2; print s+w}')
    CORES[$name]="${CORES[$name]:-} $(awk -v c="$scpu" -v t="$span" 'BEGIN{printf "%.2f", c/t}')"
    MSMB[$name]="${MSMB[$name]:-} $(awk -v c="$scpu" -v t="$span" -v m="$mbs" 'BEGIN{printf "%.3f", 1000*c/(m*t)}')"
    echo "run $run $name: $mbs MB/s (server CPU ${scpu}s incl. warm-up)" >&2
  done
done
limit=$("$BIN/sfs-bench" --crypto-limit --seconds 2 --format json)
echo "$limit" >> "$OUT"
limit_mbs=$(echo "$limit" | sed -E 's/.*"mbytes_per_sec":([0-9.eE+-]+).*/\1/')

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${RES[none]:-}" | median)
[ -n "$base" ] && [ "$base" != "0" ] || base=1   # without `none`, speedups are plain MB/s
echo
echo "# SFS: $CLIENTS clients reading a ${SIZE_MB} MB cached file, --verify sample, ${SECONDS_PER_RUN}s x $RUNS runs"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "# commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); client and server share the cores"
printf "%-16s %11s %8s %13s %13s   %s\n" config "median MB/s" speedup "server cores" "server ms/MB" "runs (MB/s)"
for name in "${NAMES[@]}"; do
  m=$(echo "${RES[$name]}" | median)
  printf "%-16s %11.1f %7.2fx %13.2f %13.3f   %s\n" "$name" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN{print a/b}')" \
    "$(echo "${CORES[$name]}" | median)" "$(echo "${MSMB[$name]}" | median)" \
    "$(echo "${RES[$name]}" | awk '{for (i=1;i<=NF;i++) printf "%.0f ", $i}')"
done
printf "%-16s %11.1f %7.2fx   (single-core ChaCha20-Poly1305 seal, 128 KiB)\n" crypto-limit "$limit_mbs" "$(awk -v a="$limit_mbs" -v b="$base" 'BEGIN{print a/b}')"
