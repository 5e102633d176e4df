//! SFS-like encrypted NFS-style file service on the colored runtime
