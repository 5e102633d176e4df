# shellcheck shell=bash
# A temporary OpenSSH server for the sftp peer of SFS; source it, do not run it.
# Needs TMP (a private temporary directory).
#
# peer_sshd_start PORT [CPUS]: generates a host key and a client key into $TMP/ssh, writes an
# sshd_config (127.0.0.1 only, public-key login for the current user with the generated key,
# internal sftp, cipher chacha20-poly1305@openssh.com only) and starts sshd in the
# foreground, on the comma-separated CPUS (taskset; default: wherever it may run); its pid is
# left in PEER_PID.
# peer_sftp_get PORT REMOTE COUNT [CPUS]: one sftp session (cipher chacha20-poly1305@openssh.com)
# that reads REMOTE COUNT times into /dev/null, on CPUS. In batch mode sftp stops at the first
# failed command and exits non-zero, so success means every byte was read.
peer_sshd_start() {
    local port=$1 cpus=${2:-} dir="$TMP/ssh"
    local bin=/usr/sbin/sshd
    [ -x "$bin" ] || { echo "sshd is not installed (openssh-server)" >&2; return 1; }
    command -v sftp >/dev/null || { echo "sftp is not installed (openssh-client)" >&2; return 1; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    rm -f "$dir/host_key" "$dir/host_key.pub" "$dir/client_key" "$dir/client_key.pub"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" || return 1
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    # Privilege separation directory that sshd insists on.
    mkdir -p /run/sshd 2>/dev/null || true
    cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Ciphers chacha20-poly1305@openssh.com
# The default (10:30:100) drops some of 16 sessions that start together.
MaxStartups 64
Subsystem sftp internal-sftp
CONF
    [ -n "$cpus" ] || cpus=$(taskset -pc $$ | awk -F': ' '{print $2}')
    taskset -c "$cpus" "$bin" -D -e -f "$dir/sshd_config" >"$dir/sshd.log" 2>&1 &
    # shellcheck disable=SC2034 # read by the script that sourced this file
    PEER_PID=$!
}

peer_sftp_get() {
    local port=$1 remote=$2 count=$3 cpus=${4:-} dir="$TMP/ssh" batch
    [ -n "$cpus" ] || cpus=$(taskset -pc $$ | awk -F': ' '{print $2}')
    batch=$(mktemp "$dir/batch.XXXXXX")
    for _ in $(seq 1 "$count"); do printf 'get %s /dev/null\n' "$remote"; done >"$batch"
    taskset -c "$cpus" sftp -q -b "$batch" -i "$dir/client_key" -P "$port" \
        -o Ciphers=chacha20-poly1305@openssh.com -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
        -o GSSAPIAuthentication=no "$(id -un)@127.0.0.1" >/dev/null
    local rc=$?
    rm -f "$batch"
    return "$rc"
}
