//! SFS-like encrypted NFS-style file server on the colored runtime.
//!
//! The coarse-grained half of libasync-smp's evaluation: a file server whose CPU time
//! goes mostly to cryptography. Each connection's decrypt and encrypt run in that
//! connection's color, so different clients' crypto runs in parallel, while the file
//! system, the lease table and the uid mapping stay serial in color 0 ([`server`]).
//! The protocol (messages, codec, framing, session crypto, user keys, file handles) is
//! the `sfs_proto` crate's; the clients are the `sfs_client` crate's.
//!
//! Modules, one concept each, bottom-up:
//! - [`keytable`]: the server's key table (user name to key and local identity) and
//!   `keygen`.
//! - [`perm`]: POSIX permission checks for the identity a connection acts as.
//! - [`fs`]: export operations confined to the export directory, with durable writes.
//! - [`lease`]: attribute leases and INVALIDATE bookkeeping.
//! - [`dispatch`]: the serial request dispatch (export, leases, sessions), free of sockets.
//! - [`server`]: the server on the colored runtime (colored or uncolored): its
//!   configuration, connections, admission and start-up.
//! - [`serve`]: what the `sfs-server` program runs: one server until a stop signal, or
//!   N single-worker copies on one port, and the statistics file of either.
//!
//! Threat model of trusted keys (`sfs-server keygen --trusted`): a client holding one
//! may act for any uid, gid and groups it names per call
//! ([`sfs_proto::messages::ClientMsg::CallAs`]), like an NFS client host under
//! `AUTH_SYS` with root squashing off; the server checks each call as that identity and
//! refuses such calls from every other key.
//!
//! Binary: `sfs-server` (also `keygen` and `--mode ncopy`).

pub mod dispatch;
pub mod fs;
pub mod keytable;
pub mod lease;
pub mod perm;
pub mod serve;
pub mod server;
