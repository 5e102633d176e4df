//! The listening socket, set up the same way by both servers.
//!
//! `SO_REUSEADDR` (a restarted server binds at once, past connections in TIME_WAIT),
//! `SO_REUSEPORT` only for N-copy children (they share the port the supervisor reserved, see
//! [`crate::supervisor`]), non-blocking (the servers accept from their event loops), and one
//! backlog, [`BACKLOG`].

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel queues before the server accepts them (capped by
/// `net.core.somaxconn`, 4096 by default since Linux 5.4). A burst of that many clients
/// connecting at once waits instead of being refused while a busy server catches up.
pub const BACKLOG: i32 = 4096;

/// Binds and listens on `addr`, non-blocking; with `reuse_port`, shares the port with the
/// other sockets of the same user bound with `SO_REUSEPORT`. The error names the address.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let with = |e: io::Error, what: &str| io::Error::new(e.kind(), format!("{what} {addr}: {e}"));
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into()).map_err(|e| with(e, "binding"))?;
    sock.listen(BACKLOG).map_err(|e| with(e, "listening on"))?;
    Ok(sock.into())
}

/// Binds (without listening) an `SO_REUSEPORT` socket to `addr`: the port is fixed (port 0
/// picks a free one) and no other user's program can take it, yet the socket receives no
/// connections, since only listening sockets of a reuse-port group are given any.
pub fn reserve(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_port_is_shared_by_listeners_and_gets_no_connections() {
        let r = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = r.local_addr().unwrap().as_socket().unwrap();
        assert_ne!(addr.port(), 0);
        let a = bind(addr, true).unwrap();
        let b = bind(addr, true).unwrap();
        assert_eq!(a.local_addr().unwrap(), addr);
        // Without SO_REUSEPORT the port is taken.
        assert!(bind(addr, false).is_err());
        let _c = std::net::TcpStream::connect(addr).unwrap();
        // The connection went to one of the listeners.
        let t = std::time::Instant::now();
        loop {
            if a.accept().is_ok() || b.accept().is_ok() {
                break;
            }
            assert!(t.elapsed().as_secs() < 5, "no listener got the connection");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn errors_name_the_address() {
        let l = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let e = bind(l.local_addr().unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:"), "{e}");
    }
}
