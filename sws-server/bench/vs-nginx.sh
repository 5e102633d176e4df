#!/usr/bin/env bash
# SWS against nginx on the same machine, same client, 1 KB file, in one run.
#
#   sws-server/bench/vs-nginx.sh [SECONDS_PER_RUN] [CONNECTIONS] [REPEATS]
#   (defaults: 5 s, 200 connections, 3 repeats; environment: WORKERS=2, CLIENT=injector,
#    CLIENT_THREADS=2, REQUESTS_PER_CONN=150,
#    CONFIGS="nginx sws-mely-all sws-libasync-off sws-mely-off sws-ncopy")
#
# Clients (CLIENT):
#   injector   the project's load-injector (target/release/load-injector): closed loop, each of
#              CONNECTIONS virtual clients sends REQUESTS_PER_CONN requests on a connection, then
#              reconnects (the Mely paper's workload: 150 requests per connection)
#   wrk        wrk -tCLIENT_THREADS -cCONNECTIONS: keep-alive connections that never close
#
# Configurations, 2 workers each (WORKERS):
#   nginx              nginx, worker_processes 2, access log off, open_file_cache, keep-alive
#                      without a request limit, workers pinned (worker_cpu_affinity auto)
#   sws-mely-all       sws-server --mode colored --runtime mely --stealing all
#   sws-libasync-off   sws-server --mode colored --runtime libasync --stealing off
#   sws-mely-off       sws-server --mode colored --runtime mely --stealing off
#   sws-ncopy          sws-server --mode ncopy --runtime mely --stealing off (N single-worker copies)
#   sws-R-P            any other runtime R and policy P, e.g. sws-mely-time-left, sws-mely-locality
#   sws-R-P-penN       the same with --conn-penalty N (e.g. sws-mely-all-pen1: no penalties)
#
# Every repeat runs every configuration once (interleaved, so drift in a shared VM hits all
# alike); after a 1 s warm-up, the client runs SECONDS_PER_RUN. Reported per configuration: median
# requests/s (min-max), and the server's CPU time per 1,000 requests (user+system of all the
# server's processes over the measured run, from /proc), because the client shares the cores with
# the server: a server that needs less CPU per request leaves more to the client. When both
# sws-mely-all and sws-libasync-off ran, the ratio of their requests/s within each repeat is given
# too (paired, so drift between repeats cancels). Everything binds 127.0.0.1 only; the nginx
# configuration is generated into a temporary directory.
set -euo pipefail

DUR=${1:-5}
CONNS=${2:-200}
REPEATS=${3:-3}
WORKERS=${WORKERS:-2}
CLIENT=${CLIENT:-injector}
CLIENT_THREADS=${CLIENT_THREADS:-${WRK_THREADS:-2}}
REQUESTS_PER_CONN=${REQUESTS_PER_CONN:-150}
CONFIGS=${CONFIGS:-"nginx sws-mely-all sws-libasync-off sws-mely-off sws-ncopy"}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
# The nginx peer is configured exactly as scripts/reproduce.sh configures it.
# shellcheck source=scripts/peers/nginx.sh
source "$REPO/scripts/peers/nginx.sh"
case $CLIENT in
    injector) CLIENT_TOOLS=() ;;
    wrk) CLIENT_TOOLS=(wrk) ;;
    *) echo "vs-nginx: CLIENT must be injector or wrk, not $CLIENT" >&2; exit 2 ;;
esac
# Every tool this script runs (nginx is often in /usr/sbin, outside a user's PATH).
PATH=$PATH:/usr/sbin
require_tools nginx python3 cargo git awk sed getconf nproc cut grep seq mktemp uname date head \
    tail tr chmod rm sleep cat pkill mkdir "${CLIENT_TOOLS[@]}" || exit 2
NGINX=$(command -v nginx)

(cd "$REPO" && cargo build --release -q -p sws-server -p load-injector)
SWS="$REPO/target/release/sws-server"
INJECTOR="$REPO/target/release/load-injector"

TMP=$(mktemp -d /tmp/sws-vs-nginx.XXXXXX)
chmod 755 "$TMP"
# The server running now (only that one: a stopped server's pid may be reused).
SERVER_PID=
cleanup() {
    stop_server
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
    # The children files hold space-separated pids (words, not lines).
    # shellcheck disable=SC2013
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
        descendants "$c"
    done
}

wait_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "vs-nginx: nothing listens on $port" >&2
    return 1
}

start_nginx() {
    peer_nginx_start "$1" "$WORKERS" "$TMP/www"
    STARTED=$PEER_PID
}

start_sws() {
    local mode=$1 runtime=$2 stealing=$3 port=$4
    shift 4
    "$SWS" --root "$TMP/www" --listen "127.0.0.1:$port" --workers "$WORKERS" --runtime "$runtime" \
        --stealing "$stealing" --mode "$mode" --max-clients 20000 "$@" >/dev/null 2>>"$TMP/sws.log" &
    STARTED=$!
}

start_config() {
    local cfg=$1 port=$2
    case $cfg in
        nginx) start_nginx "$port" ;;
        sws-ncopy) start_sws ncopy mely off "$port" ;;
        sws-mely-* | sws-libasync-*)
            # sws-RUNTIME-POLICY[-penN], any policy sws-server accepts (e.g. sws-mely-time-left).
            local rest=${cfg#sws-} extra=()
            if [[ $rest =~ ^(.*)-pen([0-9]+)$ ]]; then
                rest=${BASH_REMATCH[1]}
                extra=(--conn-penalty "${BASH_REMATCH[2]}")
            fi
            start_sws colored "${rest%%-*}" "${rest#*-}" "$port" "${extra[@]}"
            ;;
        *) echo "unknown configuration $cfg" >&2; exit 2 ;;
    esac
}

CLK=$(getconf CLK_TCK)
RESULTS="$TMP/results.txt"
: >"$RESULTS"

if [ "$CLIENT" = wrk ]; then
    CLIENT_DESC="wrk -t${CLIENT_THREADS} (keep-alive, connections never close)"
    CLIENT_VERSION=$(wrk -v 2>&1 | head -1 | cut -c1-40 || true)
else
    CLIENT_DESC="load-injector, ${CLIENT_THREADS} threads, ${REQUESTS_PER_CONN} requests per connection"
    CLIENT_VERSION=$("$INJECTOR" --version)
fi
echo "# vs-nginx: ${DUR}s x ${REPEATS} per configuration, ${CONNS} connections, ${CLIENT_DESC}, ${WORKERS} server workers, 1 KB file"
echo "# $(date -u +%FT%TZ) commit $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "cpu \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\" cores $(nproc) kernel $(uname -r)"
echo "# $("$NGINX" -v 2>&1) / ${CLIENT_VERSION} / load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# One client run of $2 seconds against port $1; prints "REQUESTS REQ_PER_S [ERRORS]".
client_run() {
    local port=$1 secs=$2
    if [ "$CLIENT" = wrk ]; then
        local out
        out=$(wrk -t"$CLIENT_THREADS" -c"$CONNS" -d"${secs}s" "http://127.0.0.1:$port/1k.html")
        echo "$(echo "$out" | awk '/requests in/ {print $1}') $(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
            "$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr ' \n' '_ ')"
    else
        "$INJECTOR" run --target "127.0.0.1:$port" --clients "$CONNS" --duration "$secs" --warmup 0 \
            --runs 1 --path /1k.html --threads "$CLIENT_THREADS" \
            --requests-per-conn "$REQUESTS_PER_CONN" --format json 2>/dev/null |
            python3 -c '
import json, sys
r = json.load(sys.stdin)["runs"][0]
errs = sum(v for v in r["errors"].values() if isinstance(v, int))
print(r["requests"], round(r["requests_per_sec"]), f"errors={errs}" if errs else "")'
    fi
}

for rep in $(seq 1 "$REPEATS"); do
    for cfg in $CONFIGS; do
        port=$(free_port)
        start_config "$cfg" "$port"
        pid=$STARTED
        SERVER_PID=$pid
        wait_port "$port"
        client_run "$port" 1 >/dev/null 2>&1 || true
        before=$(cpu_ticks "$pid")
        reqs='' rps='' errs=''
        read -r reqs rps errs < <(client_run "$port" "$DUR") || true
        after=$(cpu_ticks "$pid")
        stop_server
        if [ -z "$rps" ]; then
            echo "  run $rep $cfg: the client reported nothing; skipped. Last server log lines:" >&2
            tail -n 3 "$TMP/sws.log" >&2 2>/dev/null || true
            continue
        fi
        cpu_ms=$(( (after - before) * 1000 / CLK ))
        per_k=$(awk -v c="$cpu_ms" -v r="$reqs" 'BEGIN { if (r > 0) printf "%.3f", c * 1000 / r; else print "nan" }')
        echo "$cfg $rps $per_k $rep" >>"$RESULTS"
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
runs = {}
for cfg, rps, cpu, rep in rows:
    by.setdefault(cfg, []).append((float(rps), float(cpu)))
    runs[(cfg, rep)] = (float(rps), float(cpu))
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
a, b = "sws-mely-all", "sws-libasync-off"
pairs = [(runs[(a, rep)], runs[(b, rep)]) for (cfg, rep) in runs if cfg == a and (b, rep) in runs]
if pairs:
    r = [x[0] / y[0] for x, y in pairs]
    c = [x[1] / y[1] for x, y in pairs]
    print()
    print(f"paired, {a} / {b} in each repeat: req/s {statistics.median(r):.3f} "
          f"(min {min(r):.3f}, max {max(r):.3f}, >= 1 in {sum(x >= 1 for x in r)} of {len(r)}); "
          f"server CPU per request {statistics.median(c):.3f}")
EOF
