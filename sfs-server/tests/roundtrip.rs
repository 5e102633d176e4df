//! Byte-exact put/get from 0 bytes to 64 MB, and random offset/size I/O against a model.

use std::time::Duration;

use colored_runtime::{QueueKind, StealPolicy};
use rand::{Rng, SeedableRng};
use sfs_client::client::{ClientError, CHUNK};
use sfs_proto::messages::{Stable, Status};
use sfs_server::server::Coloring;

use crate::util::{connect, data, Env};

#[test]
fn put_get_sizes_byte_exact() {
    let env = Env::new();
    let srv = env.default_server();
    let c = connect(srv.local_addr(), "alice", &env.alice);
    for (i, n) in [
        0usize,
        1,
        1000,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * 1024 * 1024 + 17,
    ]
    .into_iter()
    .enumerate()
    {
        let d = data(n, i as u64);
        let name = format!("f{n}");
        c.put(&name, &d).unwrap();
        assert_eq!(c.get(&name).unwrap(), d, "size {n}");
        assert_eq!(
            std::fs::read(env.export.join(&name)).unwrap(),
            d,
            "on disk, size {n}"
        );
    }
    // Overwriting with a shorter file truncates.
    c.put("f1000", b"short").unwrap();
    assert_eq!(c.get("f1000").unwrap(), b"short");
}

#[test]
fn put_get_64_mb() {
    let env = Env::new();
    let srv = env.default_server();
    let c = connect(srv.local_addr(), "alice", &env.alice);
    let d = data(64 << 20, 64);
    c.put("big", &d).unwrap();
    let got = c.get("big").unwrap();
    assert!(got == d, "64 MB round trip differs");
}

#[test]
fn random_offsets_and_sizes_match_a_model() {
    for (coloring, queue, stealing) in [
        (Coloring::PerClient, QueueKind::Mely, StealPolicy::All),
        (Coloring::None, QueueKind::Libasync, StealPolicy::Off),
        (Coloring::PerClient, QueueKind::Libasync, StealPolicy::Base),
    ] {
        let env = Env::new();
        let srv = env.server(coloring, queue, stealing, Duration::from_secs(30));
        let mut c = connect(srv.local_addr(), "alice", &env.alice);
        c.set_caching(false);
        let (root, _) = c.root().unwrap();
        let (fh, _) = c.create(&root, "model", 0o644, true).unwrap();
        let mut model: Vec<u8> = Vec::new();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for step in 0..200 {
            let off = rng.gen_range(0..2_000_000u64);
            let len = rng.gen_range(0..300_000usize);
            if rng.gen_bool(0.5) {
                let d = data(len, step);
                let stable =
                    [Stable::Unstable, Stable::DataSync, Stable::FileSync][step as usize % 3];
                let (n, committed, _) = c.write(&fh, off, &d, stable).unwrap();
                assert_eq!((n as usize, committed), (len, stable));
                let end = off as usize + len;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[off as usize..end].copy_from_slice(&d);
            } else {
                let (got, eof) = c.read(&fh, None, off, len as u32).unwrap();
                let s = (off as usize).min(model.len());
                let e = (off as usize + len).min(model.len());
                assert_eq!(got, &model[s..e], "step {step}: read {off}+{len}");
                assert_eq!(eof, e == model.len(), "step {step}: eof");
            }
        }
        c.commit(&fh).unwrap();
        assert_eq!(std::fs::read(env.export.join("model")).unwrap(), model);
        // Client-visible namespace operations.
        c.rename(&root, "model", &root, "renamed").unwrap();
        let names: Vec<String> = c
            .readdir(&root)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["renamed".to_string()]);
        let a = c
            .setattr(
                &c.lookup(&root, "renamed").unwrap().0,
                Some(0o600),
                Some(10),
            )
            .unwrap();
        assert_eq!((a.mode, a.size), (0o600, 10));
        c.rm("renamed").unwrap();
        assert!(c.readdir(&root).unwrap().is_empty());
        drop(c);
        srv.shutdown();
    }
}

#[test]
fn many_clients_in_parallel() {
    let env = Env::new();
    let srv = env.default_server();
    let addr = srv.local_addr();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let key = env.alice.clone();
            std::thread::spawn(move || {
                let c = connect(addr, "alice", &key);
                for j in 0..5 {
                    let d = data(100_000 + i * 1000 + j, (i * 10 + j) as u64);
                    let name = format!("c{i}-{j}");
                    c.put(&name, &d).unwrap();
                    assert_eq!(c.get(&name).unwrap(), d);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = srv.shutdown();
    let s = serde_json::to_value(&stats).unwrap();
    assert!(
        s.to_string().contains("Encrypt"),
        "per-handler stats name the crypto handlers"
    );
}

#[test]
fn uid_mapping_table_sets_owner() {
    let env = Env::new();
    // Map bob to a uid of his own.
    let mut t = sfs_server::keytable::KeyTable::load(&env.keys).unwrap();
    let mut e = t.get("bob").unwrap().clone();
    e.uid = 4242;
    e.gid = 4243;
    t.insert("bob", e).unwrap();
    t.save(&env.keys).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let srv = env.default_server();
    let b = connect(srv.local_addr(), "bob", &env.bob);
    let (root, _) = b.root().unwrap();
    // bob acts as uid 4242: the export's owner must let him in, as POSIX says.
    assert_eq!(
        b.create(&root, "bobs", 0o644, true).unwrap_err(),
        ClientError::Status(Status::Access)
    );
    std::fs::set_permissions(&env.export, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_, attr) = b.create(&root, "bobs", 0o644, true).unwrap();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(env.export.join("bobs")).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // The server may change ownership: the file belongs to bob's mapped identity.
        assert_eq!((md.uid(), md.gid()), (4242, 4243));
        assert_eq!((attr.uid, attr.owner.as_str()), (4242, "bob"));
    } else {
        // Without privilege the server's own uid owns it, reported under alice's name.
        assert_eq!(md.uid(), attr.uid);
        assert_eq!(attr.owner, "alice");
    }
}
