//! Wrong key, tampered, replayed, reordered, truncated and oversized frames, forged
//! handles and path escapes: each refused, with nothing changed on disk.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use sfs_client::client::{Client, ClientError};
use sfs_proto::frame::{read_frame, write_frame, MAX_FRAME};
use sfs_proto::key::Key;
use sfs_proto::messages::{Fh, Reply, Request, Stable, Status};
use sfs_proto::session;

use crate::util::{closed_within, BinServer, Env, Raw};

fn write_req(fh: &Fh, data: &[u8]) -> Request {
    Request::Write {
        fh: fh.clone(),
        offset: 0,
        stable: Stable::FileSync,
        data: data.to_vec(),
    }
}

fn setup() -> (Env, BinServer, Fh) {
    let env = Env::new();
    std::fs::write(env.export.join("target"), b"original").unwrap();
    std::fs::write(env.dir.path().join("outside"), b"secret").unwrap();
    let srv = BinServer::start(
        &env,
        &["--workers", "2", "--runtime", "mely", "--stealing", "all"],
        "sec",
    );
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let fh = r.lookup("target");
    (env, srv, fh)
}

#[test]
fn wrong_key_and_unknown_user_refused() {
    let (env, srv, _) = setup();
    let before = env.snapshot();
    let wrong = Key::generate();
    match Client::connect(srv.addr, "alice", &wrong) {
        Err(ClientError::Disconnected(_)) => {}
        other => panic!("wrong key accepted: {:?}", other.map(|_| ())),
    }
    assert!(Client::connect(srv.addr, "mallory", &wrong).is_err());
    // Bob's key does not work for alice.
    assert!(Client::connect(srv.addr, "alice", &env.bob).is_err());
    assert!(
        srv.wait_log("peer closed during the handshake"),
        "the client refused the server's proof"
    );
    assert!(srv.wait_log("unknown user"));
    // A client that ignores the server's proof and answers with a wrong key's proof.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let nc = session::fresh_nonce();
    write_frame(&mut s, &session::client_hello("alice", &nc)).unwrap();
    let (_, ch) = read_frame(&mut s).unwrap();
    let (ns, _) = session::parse_server_challenge(&ch).unwrap();
    write_frame(&mut s, &session::client_proof(&wrong, "alice", &nc, &ns)).unwrap();
    assert!(
        read_frame(&mut s).is_err(),
        "no sealed frame after a wrong proof"
    );
    assert!(srv.wait_log("authentication failed: client proof did not verify"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn tampered_ciphertext_closes_and_changes_nothing() {
    let (env, srv, fh) = setup();
    let before = env.snapshot();
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let mut f = r.seal(write_req(&fh, b"TAMPERED"));
    let n = f.len();
    f[n / 2] ^= 0x01;
    r.write(&f);
    assert!(r.closed_by_server());
    assert!(srv.wait_log("failed authentication"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn replayed_frame_closes_and_changes_nothing() {
    let (env, srv, fh) = setup();
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let f = r.seal(write_req(&fh, b"AAAAAAAA"));
    r.write(&f);
    assert!(matches!(
        r.recv().unwrap(),
        sfs_proto::messages::ServerMsg::Reply {
            result: Ok(Reply::Write { .. }),
            ..
        }
    ));
    // Someone else writes; a replay of the first write must not undo it.
    let mut other = Raw::connect(srv.addr, "bob", &env.bob);
    let fh2 = other.lookup("target");
    assert!(other.call(write_req(&fh2, b"BBBBBBBB")).is_ok());
    let before = env.snapshot();
    r.write(&f);
    assert!(r.closed_by_server());
    assert_eq!(env.snapshot(), before);
    assert_eq!(
        std::fs::read(env.export.join("target")).unwrap(),
        b"BBBBBBBB"
    );
}

#[test]
fn reordered_frames_close_and_change_nothing() {
    let (env, srv, fh) = setup();
    let before = env.snapshot();
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let f1 = r.seal(write_req(&fh, b"first..."));
    let f2 = r.seal(write_req(&fh, b"second.."));
    r.write(&f2);
    r.write(&f1);
    assert!(r.closed_by_server());
    assert_eq!(env.snapshot(), before);
}

#[test]
fn oversized_and_truncated_frames_close_and_change_nothing() {
    let (env, srv, fh) = setup();
    let before = env.snapshot();
    // After authentication.
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    r.write(&((MAX_FRAME as u32) + 1).to_be_bytes());
    assert!(r.closed_by_server());
    assert!(srv.wait_log("oversized frame"));
    // Before authentication: refused as soon as the length is seen, long before the
    // handshake timeout (10 s) could have closed it.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "not closed at once"
    );
    assert!(srv.wait_log("oversized frame: 4294967295 bytes announced, limit 256"));
    // Truncated: half a valid frame, then the client stops sending.
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let f = r.seal(write_req(&fh, b"TRUNCATE"));
    r.write(&f[..f.len() / 2]);
    r.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(r.closed_by_server());
    assert!(srv.wait_log("truncated frame"));
    // A sealed frame whose length prefix was cut shorter fails authentication.
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let mut f = r.seal(write_req(&fh, b"SHORTER!"));
    f.truncate(f.len() - 3);
    let l = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&l.to_be_bytes());
    r.write(&f);
    assert!(r.closed_by_server());
    assert_eq!(env.snapshot(), before);
}

#[test]
fn forged_handles_refused() {
    let (env, srv, fh) = setup();
    let before = env.snapshot();
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    // Flip each byte of a genuine handle in turn (a sample of positions).
    for i in (0..fh.0.len()).step_by(3) {
        let mut f = fh.clone();
        f.0[i] ^= 0x40;
        assert_eq!(
            r.call(write_req(&f, b"FORGED!!")),
            Err(Status::BadHandle),
            "byte {i}"
        );
        assert_eq!(r.call(Request::GetAttr { fh: f }), Err(Status::BadHandle));
    }
    assert_eq!(
        r.call(Request::Read {
            fh: Fh(vec![0; 40]),
            offset: 0,
            count: 10
        }),
        Err(Status::BadHandle)
    );
    assert_eq!(
        r.call(Request::Remove {
            dir: Fh(vec![]),
            name: "target".into()
        }),
        Err(Status::BadHandle)
    );
    assert!(srv.wait_log("forged or altered file handle"));
    assert_eq!(env.snapshot(), before);
    // The genuine handle still works on the same connection.
    assert!(matches!(
        r.call(Request::GetAttr { fh }),
        Ok(Reply::Attr(_))
    ));
}

#[test]
fn no_path_escapes() {
    let (env, srv, _) = setup();
    std::os::unix::fs::symlink("../outside", env.export.join("link-out")).unwrap();
    std::os::unix::fs::symlink("..", env.export.join("link-up")).unwrap();
    std::fs::create_dir(env.export.join("sub")).unwrap();
    let before = env.snapshot();
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let root = r.lookup("");
    for bad in ["..", ".", "../outside", "sub/../..", "/etc/passwd", ""] {
        assert!(
            r.call(Request::Lookup {
                dir: root.clone(),
                name: bad.into()
            })
            .is_err(),
            "lookup {bad}"
        );
        assert!(
            r.call(Request::Create {
                dir: root.clone(),
                name: bad.into(),
                mode: 0o644,
                exclusive: false
            })
            .is_err(),
            "create {bad}"
        );
        assert!(
            r.call(Request::Rename {
                from_dir: root.clone(),
                from_name: "target".into(),
                to_dir: root.clone(),
                to_name: bad.into()
            })
            .is_err(),
            "rename to {bad}"
        );
        assert!(
            r.call(Request::Remove {
                dir: root.clone(),
                name: bad.into()
            })
            .is_err(),
            "remove {bad}"
        );
    }
    // Symlinks can be seen but not followed.
    let link = r.lookup("link-out");
    assert_eq!(
        r.call(Request::Read {
            fh: link.clone(),
            offset: 0,
            count: 100
        }),
        Err(Status::NotSupp)
    );
    assert_eq!(r.call(write_req(&link, b"pwned")), Err(Status::NotSupp));
    let up = r.lookup("link-up");
    assert_eq!(
        r.call(Request::Lookup {
            dir: up.clone(),
            name: "outside".into()
        }),
        Err(Status::NotDir)
    );
    assert!(r
        .call(Request::Create {
            dir: up,
            name: "x".into(),
            mode: 0o644,
            exclusive: false
        })
        .is_err());
    assert!(r
        .call(Request::Create {
            dir: root.clone(),
            name: "link-out".into(),
            mode: 0o644,
            exclusive: false
        })
        .is_err());
    assert_eq!(env.snapshot(), before);
    assert_eq!(
        std::fs::read(env.dir.path().join("outside")).unwrap(),
        b"secret"
    );
}

#[test]
fn silent_or_oversized_handshakes_are_cut_off() {
    let env = Env::new();
    let srv = BinServer::start(&env, &["--handshake-timeout-ms", "5000"], "hs");
    // Says nothing: closed by the handshake timeout, not before.
    let mut silent = TcpStream::connect(srv.addr).unwrap();
    let t = std::time::Instant::now();
    // A hello far larger than any real one is refused before it is buffered, at once.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(&4096u32.to_be_bytes()).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "not closed at once"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(srv.wait_log("oversized frame: 4096 bytes announced, limit 256"));
    assert!(closed_within(&mut silent, Duration::from_secs(10)));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(4900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(srv.wait_log("closing: handshake timed out"));
    // A real client still gets in.
    assert!(Client::connect(srv.addr, "alice", &env.alice).is_ok());
}
