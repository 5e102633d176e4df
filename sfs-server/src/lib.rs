//! SFS-like encrypted NFS-style file service on the colored runtime.

pub mod bench;
pub mod client;
pub mod fh;
pub mod frame;
pub mod fs;
pub mod keys;
pub mod lease;
pub mod proto;
pub mod server;
pub mod session;
