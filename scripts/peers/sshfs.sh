# shellcheck shell=bash
# sshfs, the mount a user would pick instead of SFS; source it, do not run it.
# Needs TMP and a running peer_sshd_start (scripts/peers/sshd.sh), whose client key it uses.
#
# peer_sshfs_mount PORT REMOTE_DIR MOUNTPOINT: mounts REMOTE_DIR of the sshd on 127.0.0.1:PORT
# at MOUNTPOINT as the current user, cipher chacha20-poly1305@openssh.com only, no
# compression; returns once mounted (sshfs detaches), non-zero with sshfs's message otherwise.
# peer_sshfs_unmount MOUNTPOINT: unmounts (lazily if busy); the sshfs process then exits.
peer_sshfs_mount() {
    local port=$1 remote=$2 mnt=$3 dir="$TMP/ssh"
    command -v sshfs >/dev/null || { echo "sshfs is not installed (sshfs)" >&2; return 1; }
    [ -f "$dir/client_key" ] || { echo "no client key: start the sshd peer first" >&2; return 1; }
    mkdir -p "$mnt"
    sshfs "$(id -un)@127.0.0.1:$remote" "$mnt" \
        -o "Port=$port,IdentityFile=$dir/client_key,Ciphers=chacha20-poly1305@openssh.com" \
        -o "Compression=no,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null" \
        -o "BatchMode=yes,LogLevel=ERROR,GSSAPIAuthentication=no"
}

peer_sshfs_unmount() {
    local mnt=$1
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
}
