//! Leases: INVALIDATE before a conflicting write is acknowledged (colored server), and
//! the stale read N-copy servers cause because their lease tables are not shared.

use std::time::{Duration, Instant};

use sfs_proto::messages::{Request, Stable};

use crate::util::{connect, data, BinServer, Env, Raw};

#[test]
fn writer_waits_for_invalidate_and_reader_sees_new_data() {
    let env = Env::new();
    let old = data(300_000, 1);
    std::fs::write(env.export.join("shared"), &old).unwrap();
    let srv = env.default_server();
    let a = connect(srv.local_addr(), "alice", &env.alice);
    let b = connect(srv.local_addr(), "bob", &env.bob);
    // A caches attributes and data under its lease.
    assert_eq!(a.get("shared").unwrap(), old);
    let (_, attr) = a.lookup_path("shared").unwrap();
    let hits = a.cache_hits();
    assert_eq!(a.get("shared").unwrap(), old);
    assert!(
        a.cache_hits() > hits,
        "second read served from the lease cache"
    );
    assert!(a.invalidations().is_empty());
    // B writes the same bytes range with new data.
    let new = data(300_000, 2);
    let (bfh, _) = b.lookup_path("shared").unwrap();
    let t0 = Instant::now();
    b.write(&bfh, 0, &new, Stable::FileSync).unwrap();
    let acked = Instant::now();
    let inv = a.invalidations();
    assert!(
        inv.iter().any(|(f, t)| *f == attr.fileid && *t <= acked),
        "A got INVALIDATE before B's write was acknowledged: {inv:?}"
    );
    assert!(
        acked - t0 < Duration::from_secs(10),
        "B did not wait for the 30 s lease: A acknowledged"
    );
    assert_eq!(a.get("shared").unwrap(), new, "A's next read sees B's data");
}

#[test]
fn silent_holder_delays_writer_until_lease_expiry() {
    let env = Env::new();
    std::fs::write(env.export.join("f"), b"0123456789").unwrap();
    let lease = Duration::from_millis(2000);
    let srv = env.server(
        sfs_server::server::Coloring::PerClient,
        colored_runtime::QueueKind::Mely,
        colored_runtime::StealPolicy::All,
        lease,
    );
    // A raw holder that takes a lease and never reads its callbacks.
    let mut holder = Raw::connect(srv.local_addr(), "alice", &env.alice);
    let hfh = holder.lookup("f");
    assert!(holder.call(Request::GetAttr { fh: hfh }).is_ok());
    let granted = Instant::now();
    let b = connect(srv.local_addr(), "bob", &env.bob);
    let (fh, _) = b.lookup_path("f").unwrap();
    b.write(&fh, 0, b"abc", Stable::FileSync).unwrap();
    let waited = granted.elapsed();
    // The server's lease started a little before `granted` (the reply's latency), so
    // allow that; without the wait the write would return within milliseconds.
    assert!(
        waited >= lease - Duration::from_millis(700),
        "write acknowledged after {waited:?}, before the lease expired"
    );
    assert!(waited < lease + Duration::from_secs(5));
    // The holder did receive the INVALIDATE.
    assert!(matches!(
        holder.recv().unwrap(),
        sfs_proto::messages::ServerMsg::Invalidate { .. }
    ));
}

#[test]
fn ncopy_servers_serve_a_stale_read() {
    let env = Env::new();
    let old = data(200_000, 3);
    std::fs::write(env.export.join("shared"), &old).unwrap();
    let srv = BinServer::start(
        &env,
        &[
            "--workers",
            "2",
            "--runtime",
            "mely",
            "--stealing",
            "off",
            "--mode",
            "ncopy",
        ],
        "ncopy",
    );
    let a = connect(srv.addr, "alice", &env.alice);
    // Find a connection served by the other process (the kernel picks by 4-tuple hash).
    let mut b = None;
    for _ in 0..200 {
        let c = connect(srv.addr, "bob", &env.bob);
        if c.server_id() != a.server_id() {
            b = Some(c);
            break;
        }
    }
    let b = b.expect("no connection reached the second N-copy process in 200 tries");
    assert_eq!(a.get("shared").unwrap(), old);
    let new = data(200_000, 4);
    let (bfh, _) = b.lookup_path("shared").unwrap();
    b.write(&bfh, 0, &new, Stable::FileSync).unwrap();
    assert_eq!(
        std::fs::read(env.export.join("shared")).unwrap(),
        new,
        "B's write reached the disk"
    );
    // A's server never heard of B's write: no INVALIDATE, and A's lease cache serves
    // the old bytes: the stale read.
    std::thread::sleep(Duration::from_millis(200));
    assert!(a.invalidations().is_empty());
    assert_eq!(
        a.get("shared").unwrap(),
        old,
        "expected the N-copy stale read"
    );
}
