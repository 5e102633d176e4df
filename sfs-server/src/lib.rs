//! SFS-like encrypted NFS-style file service on the colored runtime.
//!
//! The coarse-grained half of libasync-smp's evaluation: a file server whose CPU time
//! goes mostly to cryptography. Each connection's decrypt and encrypt run in that
//! connection's color, so different clients' crypto runs in parallel, while the file
//! system, the lease table and the uid mapping stay serial in color 0 ([`server`]).
//!
//! Modules, one concept each:
//! - [`keys`]: the per-user 256-bit key file and the server's key / uid mapping table.
//! - [`frame`]: length-prefixed framing with a size limit, fed by partial reads.
//! - [`session`]: mutual authentication, HKDF-SHA256 session keys, ChaCha20-Poly1305
//!   with per-direction counter nonces (replays, reorders and tampering fail).
//! - [`proto`]: the NFSv3-like messages and their strict, versioned binary encoding.
//! - [`fh`]: opaque file handles carrying a MAC.
//! - [`fs`]: export operations confined to the export directory, with durable writes.
//! - [`perm`]: POSIX permission checks for the identity a connection acts as.
//! - [`lease`]: attribute leases and INVALIDATE bookkeeping.
//! - [`dispatch`]: the serial request dispatch (export, leases, sessions), free of sockets.
//! - [`server`]: the server on the colored runtime (colored or uncolored).
//! - [`client`]: a blocking client library with a lease-validated cache.
//! - [`listing`]: what `sfs-client ls` and `ls --long` print.
//! - [`bench`]: the multi-client reader behind `sfs-bench`.
//! - [`multiio`]: the same through the kernel, one reader process per mounted file.
//! - [`fuse`]: the FUSE client behind `sfs-client mount`.
//!
//! Threat model of trusted keys (`sfs-server keygen --trusted`): a client holding one
//! may act for any uid, gid and groups it names per call ([`proto::ClientMsg::CallAs`]),
//! like an NFS client host under `AUTH_SYS` with root squashing off; the server checks
//! each call as that identity and refuses such calls from every other key.
//!
//! Binaries: `sfs-server` (also `keygen` and `--mode ncopy`), `sfs-client` (also
//! `mount`), `sfs-bench` (also `--read-files`).

pub mod bench;
pub mod client;
pub mod dispatch;
pub mod fh;
pub mod frame;
pub mod fs;
pub mod fuse;
pub mod keys;
pub mod lease;
pub mod listing;
pub mod multiio;
pub mod perm;
pub mod proto;
pub mod server;
pub mod session;
