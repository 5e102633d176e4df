#!/usr/bin/env bash
# SWS against nginx on the same machine, same client (wrk), 1 KB file, in one run.
#
#   sws-server/bench/vs-nginx.sh [SECONDS_PER_RUN] [CONNECTIONS] [REPEATS]
#   (defaults: 5 s, 200 connections, 3 repeats; environment: WORKERS=2, WRK_THREADS=2,
#    CONFIGS="nginx sws-mely-all sws-libasync-off sws-mely-off sws-ncopy")
#
# Configurations, 2 workers each (WORKERS):
#   nginx              nginx, worker_processes 2, access log off, open_file_cache, keep-alive
#                      without a request limit, workers pinned (worker_cpu_affinity auto)
#   sws-mely-all       sws-server --mode colored --runtime mely --stealing all
#   sws-libasync-off   sws-server --mode colored --runtime libasync --stealing off
#   sws-mely-off       sws-server --mode colored --runtime mely --stealing off
#   sws-ncopy          sws-server --mode ncopy --runtime mely --stealing off (N single-worker copies)
#   sws-R-P            any other runtime R and policy P, e.g. sws-mely-time-left, sws-mely-locality
#
# Every repeat runs every configuration once (interleaved, so drift in a shared VM hits all
# alike); after a 1 s warm-up, wrk runs SECONDS_PER_RUN. Reported per configuration: median
# requests/s (min-max), and the server's CPU time per 1,000 requests (user+system of all the
# server's processes over the measured run, from /proc), because wrk shares the cores with the
# server: a server that needs less CPU per request leaves more to the client. Everything binds
# 127.0.0.1 only; the nginx configuration is generated into a temporary directory.
set -euo pipefail

DUR=${1:-5}
CONNS=${2:-200}
REPEATS=${3:-3}
WORKERS=${WORKERS:-2}
WRK_THREADS=${WRK_THREADS:-2}
CONFIGS=${CONFIGS:-"nginx sws-mely-all sws-libasync-off sws-mely-off sws-ncopy"}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
for tool in wrk nginx; do
    if ! command -v "$tool" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$tool" ]; then
        echo "vs-nginx: $tool is missing (apt-get install -y wrk nginx)" >&2
        exit 2
    fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

(cd "$REPO" && cargo build --release -q -p sws-server)
SWS="$REPO/target/release/sws-server"

TMP=$(mktemp -d /tmp/sws-vs-nginx.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/www"
python3 - "$TMP/www/1k.html" <<'EOF'
import sys
body = ("<html>" + "x" * 1011 + "</html>")[:1024]
open(sys.argv[1], "w").write(body)
EOF
chmod -R a+rX "$TMP/www"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Servers are started in this shell (not in a command substitution) and their pid is left in
# STARTED, so the EXIT trap and the pid list stay in one place.
STARTED=

# Sum of utime+stime (clock ticks) of a process and all its descendants.
cpu_ticks() {
    local total=0 p
    for p in $(descendants "$1"); do
        if [ -r "/proc/$p/stat" ]; then
            # Fields after the ")" of the command: utime is 12th, stime 13th.
            local t
            t=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
            total=$((total + t))
        fi
    done
    echo "$total"
}

descendants() {
    local p=$1 c
    echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
        descendants "$c"
    done
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "vs-nginx: nothing listens on $port" >&2
    return 1
}

# The nginx peer is configured exactly as scripts/reproduce.sh configures it.
source "$REPO/scripts/peers/nginx.sh"

start_nginx() {
    peer_nginx_start "$1" "$WORKERS" "$TMP/www"
    STARTED=$PEER_PID
}

start_sws() {
    local mode=$1 runtime=$2 stealing=$3 port=$4
    "$SWS" --root "$TMP/www" --listen "127.0.0.1:$port" --workers "$WORKERS" --runtime "$runtime" \
        --stealing "$stealing" --mode "$mode" --max-clients 20000 >/dev/null 2>>"$TMP/sws.log" &
    STARTED=$!
}

start_config() {
    local cfg=$1 port=$2
    case $cfg in
        nginx) start_nginx "$port" ;;
        sws-ncopy) start_sws ncopy mely off "$port" ;;
        sws-mely-* | sws-libasync-*)
            # sws-RUNTIME-POLICY, any policy sws-server accepts (e.g. sws-mely-time-left).
            local rest=${cfg#sws-}
            start_sws colored "${rest%%-*}" "${rest#*-}" "$port"
            ;;
        *) echo "unknown configuration $cfg" >&2; exit 2 ;;
    esac
}

CLK=$(getconf CLK_TCK)
RESULTS="$TMP/results.txt"
: >"$RESULTS"

echo "# vs-nginx: ${DUR}s x ${REPEATS} per configuration, ${CONNS} connections, wrk -t${WRK_THREADS}, ${WORKERS} server workers, 1 KB file"
echo "# $(date -u +%FT%TZ) commit $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "cpu \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\" cores $(nproc) kernel $(uname -r)"
echo "# $("$NGINX" -v 2>&1) / $(wrk -v 2>&1 | head -1 | cut -c1-40) / load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

for rep in $(seq 1 "$REPEATS"); do
    for cfg in $CONFIGS; do
        port=$(free_port)
        start_config "$cfg" "$port"
        pid=$STARTED
        PIDS+=("$pid")
        wait_port "$port"
        wrk -t"$WRK_THREADS" -c"$CONNS" -d1s "http://127.0.0.1:$port/1k.html" >/dev/null 2>&1 || true
        before=$(cpu_ticks "$pid")
        out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$port/1k.html")
        after=$(cpu_ticks "$pid")
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
        cpu_ms=$(( (after - before) * 1000 / CLK ))
        per_k=$(awk -v c="$cpu_ms" -v r="$reqs" 'BEGIN { if (r > 0) printf "%.3f", c * 1000 / r; else print "nan" }')
        echo "$cfg $rps $per_k" >>"$RESULTS"
        printf '  run %d %-18s %10s req/s  %8s ms CPU/1k req  %s\n' "$rep" "$cfg" "$rps" "$per_k" "$errs"
    done
done

echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$RESULTS" "$CONFIGS" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
order = sys.argv[2].split()
by = {}
for cfg, rps, cpu in rows:
    by.setdefault(cfg, []).append((float(rps), float(cpu)))
med = {c: statistics.median(r for r, _ in v) for c, v in by.items()}
base = med.get("nginx")
print(f"| configuration | req/s median | min-max | server CPU ms per 1k req (median) | vs nginx |")
print(f"|---|---:|---:|---:|---:|")
for c in order:
    if c not in by:
        continue
    v = by[c]
    rs = [r for r, _ in v]
    cpu = statistics.median(x for _, x in v)
    ratio = f"{med[c] / base:.2f}x" if base else "n/a"
    print(f"| {c} | {med[c]:.0f} | {min(rs):.0f}-{max(rs):.0f} | {cpu:.3f} | {ratio} |")
EOF
