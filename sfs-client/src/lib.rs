//! The SFS clients: a blocking client library over the protocol ([`sfs_proto`]), the
//! programs built on it, and the FUSE mount.
//!
//! Modules, one concept each:
//! - [`client`]: a blocking client library with a lease-validated cache.
//! - [`listing`]: what `sfs-client ls`, `ls --long` and `stat` print.
//! - [`fuse`]: the FUSE client behind `sfs-client mount`.
//! - [`mount_process`]: that mount as a process, in the foreground or detached.
//! - [`bench`](mod@bench): the multi-client reader behind `sfs-bench`.
//! - [`multiio`]: the same through the kernel, one reader process per mounted file
//!   (`sfs-bench --read-files`).
//!
//! Binaries: `sfs-client` (`ls`, `get`, `put`, `rm`, `stat`, ..., and `mount`) and
//! `sfs-bench` (also `--read-files`). This is the only SFS package that needs fuser, and
//! with it Rust 1.85; the protocol and the server build with the workspace's version.

pub mod bench;
pub mod client;
pub mod fuse;
pub mod listing;
pub mod mount_process;
pub mod multiio;
