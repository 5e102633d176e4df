//! Integration tests: real servers (in-process library or the `sfs-server` binary) on
//! 127.0.0.1 with ephemeral ports and temporary export directories.

mod util;

mod cli;
mod cli_errors;
mod durability;
mod edges;
mod fsx;
mod leases;
mod mount;
mod posix;
mod programs;
mod roundtrip;
mod security;
mod unmount;
