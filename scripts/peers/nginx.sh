# shellcheck shell=bash
# nginx as the SWS peer; source it, do not run it. Needs TMP (a private temporary directory).
#
# peer_nginx_start PORT WORKERS WWW [CPUS]: writes $TMP/nginx/nginx.conf (127.0.0.1 only, access
# log off, keep-alive without a request limit, open_file_cache, sendfile) and starts nginx in the
# foreground (daemon off) with WORKERS worker processes, worker i pinned to the i-th CPU of the
# comma-separated CPUS (round robin; default 0..WORKERS-1); its pid is left in PEER_PID. Stop it
# with kill -TERM.
peer_nginx_start() {
    local port=$1 workers=$2 www=$3 cpus=${4:-} dir="$TMP/nginx"
    local bin
    bin=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$bin" ] || { echo "nginx is not installed" >&2; return 1; }
    [ -n "$cpus" ] || cpus=$(seq -s, 0 $(( workers - 1 )))
    local masks
    masks=$(nginx_cpu_masks "$workers" "$cpus")
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
worker_processes $workers;
worker_cpu_affinity $masks;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
daemon off;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    types { text/html html; }
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        root $www;
    }
}
CONF
    taskset -c "$cpus" "$bin" -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>"$dir/logs/stderr.log" &
    # shellcheck disable=SC2034 # read by the script that sourced this file
    PEER_PID=$!
}

# nginx_cpu_masks WORKERS CPUS: the worker_cpu_affinity bit masks (rightmost bit CPU 0), worker i
# on the i-th of the comma-separated CPUS, round robin.
nginx_cpu_masks() {
    local workers=$1 list i cpu out="" ids
    IFS=, read -r -a ids <<<"$2"
    for (( i = 0; i < workers; i++ )); do
        cpu=${ids[i % ${#ids[@]}]}
        out+="1$(printf '%*s' "$cpu" '' | tr ' ' 0) "
    done
    list=${out% }
    echo "$list"
}
