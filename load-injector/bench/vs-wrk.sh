#!/usr/bin/env bash
# Accuracy check of load-injector against wrk, on nginx serving a 1 KiB file
# on 127.0.0.1 (config generated into a temp dir; nothing else is touched).
#
#   load-injector/bench/vs-wrk.sh [CONNS=100] [DURATION_S=10] [REPEATS=1]
#
# Environment: THREADS (load generator threads, default 1), NGINX_WORKERS
# (default 1), PIN=1 (default) pins nginx to CPU 0 and the load generator to
# CPU 1 with taskset when the machine has 2+ CPUs. Needs nginx, wrk, python3
# (apt-get install -y nginx wrk python3).
#
# Both tools get the same connection count, thread count and duration and run
# one after the other. wrk keeps its connections open, so load-injector is run
# the same way (--requests-per-conn huge) and, as a second row, with its
# default of 150 requests per connection. Latency: wrk measures from the
# actual send, load-injector from the intended send (closed loop: the same
# instant unless the socket was not writable).
set -euo pipefail

CONNS=${1:-100}
DURATION=${2:-10}
REPEATS=${3:-1}
THREADS=${THREADS:-1}
NGINX_WORKERS=${NGINX_WORKERS:-1}
PIN=${PIN:-1}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in nginx wrk python3; do
  command -v "$tool" >/dev/null || { echo "vs-wrk: $tool not found (apt-get install -y nginx wrk python3)" >&2; exit 1; }
done

(cd "$root" && cargo build --release -p load-injector >&2)
li="$root/target/release/load-injector"

tmp=$(mktemp -d /tmp/vs-wrk.XXXXXX)
chmod 755 "$tmp"
nginx_pid=
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/www" "$tmp/logs"
head -c 1024 /dev/zero | tr '\0' 'x' > "$tmp/www/1k.html"
chmod -R a+rX "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
  }
}
CONF

ncpu=$(nproc)
srv_pin=(); gen_pin=()
if [ "$PIN" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
  srv_pin=(taskset -c 0); gen_pin=(taskset -c 1-$((ncpu - 1)))
fi
"${srv_pin[@]}" nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/1k.html" -o /dev/null 2>/dev/null && break
  python3 - "$port" <<'PY' 2>/dev/null && break || sleep 0.1
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
PY
done

url="http://127.0.0.1:$port/1k.html"
echo "vs-wrk: nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port, 1 KiB file, $CONNS connections, $THREADS thread(s), ${DURATION}s, $REPEATS repeat(s), pin=${srv_pin[*]:-none}/${gen_pin[*]:-none}" >&2
echo "vs-wrk: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $ncpu cores, kernel $(uname -r), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2

run_wrk() {
  "${gen_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" > "$tmp/wrk.$1.txt"
}
run_li() { # $1 = repeat, $2 = file prefix, $3 = requests per connection
  "${gen_pin[@]}" "$li" run --target "127.0.0.1:$port" --path /1k.html --clients "$CONNS" --threads "$THREADS" \
      --duration "$DURATION" --warmup 1 --runs 1 --requests-per-conn "$3" --format json > "$tmp/$2.$1.json"
}
# Warm the server once, then alternate the order every repeat so that drift
# (other processes on the machine) hits both tools alike.
"${gen_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d1s "$url" >/dev/null
for rep in $(seq "$REPEATS"); do
  if [ $((rep % 2)) = 1 ]; then
    run_wrk "$rep"; run_li "$rep" li 1000000000; run_li "$rep" li150 150
  else
    run_li "$rep" li150 150; run_li "$rep" li 1000000000; run_wrk "$rep"
  fi
done

python3 - "$tmp" "$REPEATS" "$CONNS" <<'PY'
import json, re, sys
tmp, repeats, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
unit = {"us": 1.0, "ms": 1e3, "s": 1e6}
def wrk(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    lat = {}
    for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", t, re.M):
        lat[p] = float(v) * unit[u]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    return rps, lat, (errs.group(1) if errs else "0") + (" " + sock.group(1) if sock else "")
def li(path):
    j = json.load(open(path))
    r = j["runs"][0]
    e = sum(r["errors"].values())
    return r["requests_per_sec"], r["latency_us"], str(e)
print(f"{'tool':<30}{'req/s':>10}{'p50 us':>9}{'p90 us':>9}{'p99 us':>9}{'p99.9 us':>10}  errors")
rows = {"wrk": [], "li": [], "li150": []}
def show(name, rps, lat, err, ref=None):
    d = f"   ({(rps / ref - 1) * 100:+.1f}% vs wrk)" if ref else ""
    print(f"{name:<30}{rps:>10.0f}{lat.get('p50',0):>9.0f}{lat.get('p90',0):>9.0f}{lat.get('p99',0):>9.0f}{str(lat.get('p999','n/a')):>10}  {err}{d}")
for rep in range(1, repeats + 1):
    w_rps, w_lat, w_err = wrk(f"{tmp}/wrk.{rep}.txt")
    w = {"p50": w_lat.get("50", 0), "p90": w_lat.get("90", 0), "p99": w_lat.get("99", 0)}
    rows["wrk"].append((w_rps, w))
    show(f"wrk #{rep}", w_rps, w, w_err)
    for name, f in (("load-injector keep-alive", "li"), ("load-injector 150 req/conn", "li150")):
        rps, lat, err = li(f"{tmp}/{f}.{rep}.json")
        rows[f].append((rps, lat))
        show(f"{name} #{rep}", rps, lat, err, w_rps)
def med(v):
    v = sorted(v); n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
print(f"median over {repeats} repeat(s):")
ref = med([r for r, _ in rows["wrk"]])
for key, name in (("wrk", "wrk"), ("li", "load-injector keep-alive"), ("li150", "load-injector 150 req/conn")):
    lat = {p: med([l[p] for _, l in rows[key]]) for p in ("p50", "p90", "p99")}
    if key != "wrk":
        lat["p999"] = int(med([l["p999"] for _, l in rows[key]]))
    show(name, med([r for r, _ in rows[key]]), lat, "", None if key == "wrk" else ref)
PY
