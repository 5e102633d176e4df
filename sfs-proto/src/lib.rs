//! The SFS protocol, as both the server (`sfs-server`) and the clients (`sfs-client`)
//! speak it: no runtime, no sockets of its own, no FUSE.
//!
//! Modules, one concept each, in the order a connection uses them:
//! - [`key`]: a user's 256-bit key, its key file (mode 0600) and the user names keys
//!   belong to.
//! - [`frame`]: length-prefixed framing with a size limit, fed by partial reads.
//! - [`session`]: mutual authentication, HKDF-SHA256 session keys, ChaCha20-Poly1305
//!   with per-direction counter nonces (replays, reorders and tampering fail).
//! - [`messages`]: the NFSv3-like requests, replies, statuses and the protocol's limits.
//! - [`codec`]: the messages' strict, versioned binary encoding.
//! - [`fh`]: the opaque file handles the server seals with a MAC (a client only carries
//!   them).
//!
//! Threat model of trusted keys (`sfs-server keygen --trusted`): a client holding one
//! may act for any uid, gid and groups it names per call ([`messages::ClientMsg::CallAs`]),
//! like an NFS client host under `AUTH_SYS` with root squashing off; the server checks
//! each call as that identity and refuses such calls from every other key.

pub mod codec;
pub mod fh;
pub mod frame;
pub mod key;
pub mod messages;
pub mod session;
