//! A WRITE acknowledged as stable, or followed by COMMIT, survives SIGKILL of the server.

use sfs_server::proto::Stable;

use crate::util::{connect, data, BinServer, Env};

#[test]
fn stable_and_committed_writes_survive_sigkill() {
    let env = Env::new();
    let mut srv = BinServer::start(
        &env,
        &["--workers", "2", "--runtime", "mely", "--stealing", "all"],
        "dur",
    );
    let c = connect(srv.addr, "alice", &env.alice);
    let (root, _) = c.root().unwrap();
    let stable = data(700_000, 11);
    let (f1, _) = c.create(&root, "stable", 0o644, true).unwrap();
    for (i, ch) in stable.chunks(200_000).enumerate() {
        let (_, committed, _) = c
            .write(&f1, (i * 200_000) as u64, ch, Stable::FileSync)
            .unwrap();
        assert_eq!(committed, Stable::FileSync);
    }
    let committed = data(900_000, 12);
    let (f2, _) = c.create(&root, "committed", 0o644, true).unwrap();
    let mut verf = None;
    for (i, ch) in committed.chunks(300_000).enumerate() {
        let (_, _, v) = c
            .write(&f2, (i * 300_000) as u64, ch, Stable::Unstable)
            .unwrap();
        verf.get_or_insert(v);
    }
    assert_eq!(Some(c.commit(&f2).unwrap()), verf);
    drop(c);
    srv.sigkill();
    assert_eq!(std::fs::read(env.export.join("stable")).unwrap(), stable);
    assert_eq!(
        std::fs::read(env.export.join("committed")).unwrap(),
        committed
    );
    // A restarted server serves them, with a new write verifier.
    let srv2 = BinServer::start(
        &env,
        &[
            "--workers",
            "2",
            "--runtime",
            "libasync",
            "--stealing",
            "base",
        ],
        "dur2",
    );
    let c = connect(srv2.addr, "alice", &env.alice);
    assert_eq!(c.get("stable").unwrap(), stable);
    assert_eq!(c.get("committed").unwrap(), committed);
    let (fh, _) = c.lookup_path("committed").unwrap();
    assert_ne!(
        Some(c.commit(&fh).unwrap()),
        verf,
        "verifier changes across restarts"
    );
}
