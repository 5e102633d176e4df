//! SFS-like encrypted NFS-style file service on the colored runtime.

pub mod frame;
pub mod keys;
pub mod proto;
pub mod session;
