# shellcheck shell=bash
# Apache httpd with the worker MPM (threads) as the SWS peer; source it, do not run it.
# Needs TMP (a private temporary directory).
#
# peer_apache_start PORT WORKERS WWW MAX_CLIENTS [CPUS]: writes $TMP/apache/httpd.conf (127.0.0.1
# only, no access log, keep-alive without a request limit, enough threads for MAX_CLIENTS
# kept-alive connections) and starts apache2 in the foreground, pinned with taskset to the
# comma-separated CPUS (default: the first WORKERS cores): as many CPUs as SWS has workers. The
# worker MPM needs a thread per kept-alive connection, so its process count follows MAX_CLIENTS,
# not WORKERS. Its pid is left in PEER_PID. Stop it with kill -TERM (the parent stops its
# children).
peer_apache_start() {
    local port=$1 workers=$2 www=$3 max_clients=$4 cpus=${5:-} dir="$TMP/apache"
    local bin mods=/usr/lib/apache2/modules
    bin=$(command -v apache2 || echo /usr/sbin/apache2)
    [ -x "$bin" ] || { echo "apache2 is not installed" >&2; return 1; }
    [ -f "$mods/mod_mpm_worker.so" ] || { echo "apache2 has no worker MPM in $mods" >&2; return 1; }
    mkdir -p "$dir/logs"
    chmod 755 "$dir"
    local threads=64
    # One thread per kept-alive connection, plus a process of spare threads.
    local servers=$(( (max_clients + threads - 1) / threads + 1 ))
    local load=""
    for m in authz_core unixd; do
        if ! "$bin" -l 2>/dev/null | grep -q "mod_$m.c" && [ -f "$mods/mod_$m.so" ]; then
            load+="LoadModule ${m}_module $mods/mod_$m.so"$'\n'
        fi
    done
    cat >"$dir/httpd.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $dir/httpd.pid
ErrorLog $dir/logs/error.log
LogLevel warn
Mutex file:$dir default
LoadModule mpm_worker_module $mods/mod_mpm_worker.so
$load
User www-data
Group www-data
DocumentRoot "$www"
<Directory "$www">
    Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 75
EnableSendfile On
StartServers $servers
ServerLimit $servers
ThreadLimit $threads
ThreadsPerChild $threads
MaxRequestWorkers $(( servers * threads ))
MinSpareThreads $threads
MaxSpareThreads $(( servers * threads ))
MaxConnectionsPerChild 0
CONF
    [ -n "$cpus" ] || cpus="0-$(( workers - 1 ))"
    taskset -c "$cpus" "$bin" -f "$dir/httpd.conf" -DFOREGROUND >"$dir/logs/stdout.log" 2>"$dir/logs/stderr.log" &
    # shellcheck disable=SC2034 # read by the script that sourced this file
    PEER_PID=$!
}
