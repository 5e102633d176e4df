//! `sfs-client mount` through the kernel: POSIX operations and their errnos, the uid
//! mapping, symlinks, leases between two mounts (colored and N-copy), lost
//! connections, and unmounting.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use crate::util::mount::{can_run, is_mounted, wait_exit, Mount};
use crate::util::{data, BinServer, Env};

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn mount(env: &Env, addr: &str, user: &str) -> Mount {
    Mount::new(addr, user, &env.key_file(user), &[])
}

#[test]
fn posix_operations_and_their_errnos() {
    if !can_run("posix_operations_and_their_errnos", &[]) {
        return;
    }
    let env = Env::new();
    let srv = env.default_server();
    let m = mount(&env, &srv.local_addr().to_string(), "alice");
    let (p, e) = (|r: &str| m.path(r), |r: &str| env.export.join(r));
    std::fs::write(p("a"), b"hello").unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(p("a"))
        .unwrap()
        .write_all(b" world")
        .unwrap();
    assert_eq!(
        std::fs::read(e("a")).unwrap(),
        b"hello world",
        "on the server"
    );
    std::fs::create_dir(p("d")).unwrap();
    std::fs::write(p("d/f"), b"x").unwrap();
    let err = |r: std::io::Result<()>| errno(&r.unwrap_err());
    assert_eq!(err(std::fs::create_dir(p("d"))), libc::EEXIST);
    assert_eq!(err(std::fs::remove_dir(p("d"))), libc::ENOTEMPTY);
    assert_eq!(err(std::fs::remove_file(p("nope"))), libc::ENOENT);
    assert_eq!(err(std::fs::read(p("nope")).map(|_| ())), libc::ENOENT);
    assert_eq!(err(std::fs::remove_file(p("d"))), libc::EISDIR);
    assert_eq!(err(std::fs::remove_dir(p("a"))), libc::ENOTDIR);
    assert_eq!(
        err(std::fs::write(p("a/x"), b"").map(|_| ())),
        libc::ENOTDIR
    );
    let excl = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p("a"));
    assert_eq!(errno(&excl.unwrap_err()), libc::EEXIST);
    // Rename over a file, and of a directory with contents (the handles below it carry
    // the old path and must resolve again).
    std::fs::rename(p("d"), p("d2")).unwrap();
    assert_eq!(std::fs::read(p("d2/f")).unwrap(), b"x");
    std::fs::write(p("d2/f"), b"yz").unwrap();
    assert_eq!(std::fs::read(e("d2/f")).unwrap(), b"yz");
    std::fs::write(p("b"), b"bbb").unwrap();
    std::fs::rename(p("b"), p("a")).unwrap();
    assert_eq!(std::fs::read(p("a")).unwrap(), b"bbb");
    let mut names: Vec<String> = std::fs::read_dir(m.path(""))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "d2"]);
    // Truncate, extend (a hole reads as zeros), seek and read.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p("a"))
        .unwrap();
    f.set_len(1).unwrap();
    f.seek(SeekFrom::Start(5)).unwrap();
    f.write_all(b"!").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(std::fs::read(p("a")).unwrap(), b"b\0\0\0\0!");
    assert_eq!(std::fs::metadata(e("a")).unwrap().len(), 6);
    // statfs comes from the export's file system.
    // SAFETY: statvfs fills a plain-old-data buffer for a valid path.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(m.dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid string and buffer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut sv) }, 0);
    assert!(
        sv.f_blocks > 0 && sv.f_namemax == 255,
        "blocks {}",
        sv.f_blocks
    );
}

#[test]
fn links_modes_owners_and_times() {
    if !can_run("links_modes_owners_and_times", &[]) {
        return;
    }
    let env = Env::new();
    let srv = env.default_server();
    let m = mount(&env, &srv.local_addr().to_string(), "alice");
    let (p, e) = (|r: &str| m.path(r), |r: &str| env.export.join(r));
    std::fs::write(p("f"), b"data").unwrap();
    std::fs::hard_link(p("f"), p("h")).unwrap();
    let (mf, mh) = (
        std::fs::metadata(p("f")).unwrap(),
        std::fs::metadata(p("h")).unwrap(),
    );
    assert_eq!(
        (mf.ino(), mf.nlink()),
        (mh.ino(), 2),
        "one inode, two links"
    );
    assert_eq!(
        mf.ino(),
        std::fs::metadata(e("f")).unwrap().ino(),
        "st_ino is the server's"
    );
    std::fs::create_dir(p("dir")).unwrap();
    assert_eq!(
        errno(&std::fs::hard_link(p("dir"), p("dirlink")).unwrap_err()),
        libc::EPERM,
        "no hard links to directories"
    );
    std::fs::set_permissions(p("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(std::fs::metadata(e("h")).unwrap().mode() & 0o7777, 0o640);
    // utimens with explicit times, then with "now".
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let f = std::fs::File::options().write(true).open(p("f")).unwrap();
    f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
    drop(f);
    let md = std::fs::metadata(e("f")).unwrap();
    assert_eq!((md.mtime(), md.atime()), (1_000_000_000, 1_000_000_000));
    assert_eq!(std::fs::metadata(p("f")).unwrap().mtime(), 1_000_000_000);
    // Symlinks: stored as given, read back, own times.
    std::os::unix::fs::symlink("f", p("l")).unwrap();
    assert_eq!(std::fs::read_link(p("l")).unwrap().to_str(), Some("f"));
    assert_eq!(std::fs::read_link(e("l")).unwrap().to_str(), Some("f"));
    assert_eq!(
        std::fs::read(p("l")).unwrap(),
        b"data",
        "followed by the kernel"
    );
    // chown: the SFS user here is mapped to the server's root, which may give files away.
    if env.keys_uid("alice") == 0 {
        std::os::unix::fs::chown(p("f"), Some(4242), Some(4343)).unwrap();
        let md = std::fs::metadata(e("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (4242, 4343));
        std::os::unix::fs::lchown(p("l"), Some(4242), None).unwrap();
        assert_eq!(std::fs::symlink_metadata(e("l")).unwrap().uid(), 4242);
        assert_eq!(std::fs::symlink_metadata(e("f")).unwrap().uid(), 4242);
    }
}

#[test]
fn permissions_follow_the_mapped_identity() {
    if !can_run("permissions_follow_the_mapped_identity", &[]) {
        return;
    }
    let env = Env::new();
    env.map_user("bob", 4242, 4242);
    std::fs::write(env.export.join("secret"), b"root only").unwrap();
    std::fs::set_permissions(
        env.export.join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(&env.export, std::fs::Permissions::from_mode(0o755)).unwrap();
    let srv = env.default_server();
    let m = mount(&env, &srv.local_addr().to_string(), "bob");
    let p = |r: &str| m.path(r);
    assert_eq!(
        errno(&std::fs::read(p("secret")).unwrap_err()),
        libc::EACCES
    );
    assert_eq!(
        errno(&std::fs::write(p("new"), b"x").unwrap_err()),
        libc::EACCES,
        "no write permission on the export's root"
    );
    assert_eq!(
        errno(
            &std::fs::set_permissions(p("secret"), std::fs::Permissions::from_mode(0o666))
                .unwrap_err()
        ),
        libc::EPERM
    );
    assert_eq!(
        errno(&std::os::unix::fs::chown(p("secret"), Some(4242), None).unwrap_err()),
        libc::EPERM
    );
    std::fs::set_permissions(&env.export, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(p("mine"), b"bob's").unwrap();
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let local = std::fs::metadata(p("mine")).unwrap();
    assert_eq!(
        local.uid(),
        me,
        "the SFS user's files show as the mounting user's"
    );
    if env.server_is_root() {
        assert_eq!(
            std::fs::metadata(env.export.join("mine")).unwrap().uid(),
            4242
        );
        assert_eq!(
            std::fs::metadata(p("secret")).unwrap().uid(),
            if me == 0 { 65534 } else { 0 },
            "the server's root is not the mounting user"
        );
    }
}

#[test]
fn symlinks_are_resolved_by_the_client_never_by_the_server() {
    if !can_run(
        "symlinks_are_resolved_by_the_client_never_by_the_server",
        &[],
    ) {
        return;
    }
    let env = Env::new();
    // Beside the export (outside it) on the server's side.
    std::fs::write(
        env.dir.path().join("secret"),
        b"server-side, outside the export",
    )
    .unwrap();
    std::os::unix::fs::symlink("../secret", env.export.join("rel")).unwrap();
    std::os::unix::fs::symlink("..", env.export.join("up")).unwrap();
    let srv = env.default_server();
    let before = env.snapshot();
    let m = mount(&env, &srv.local_addr().to_string(), "alice");
    // The kernel resolves "../secret" next to the mount point: the client's file.
    let client_secret = m.dir.parent().unwrap().join("secret");
    std::fs::write(&client_secret, b"client-side").unwrap();
    assert_eq!(std::fs::read(m.path("rel")).unwrap(), b"client-side");
    assert_eq!(
        std::fs::read_link(m.path("rel")).unwrap().to_str(),
        Some("../secret")
    );
    let up: Vec<_> = std::fs::read_dir(m.path("up/"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        up.iter().any(|n| n == "mnt"),
        "up/ is the client's parent: {up:?}"
    );
    // Writing through the link writes the client's file, never the server's.
    std::fs::write(m.path("rel"), b"written through the link").unwrap();
    assert_eq!(
        std::fs::read(&client_secret).unwrap(),
        b"written through the link"
    );
    std::fs::remove_file(&client_secret).unwrap();
    assert_eq!(
        errno(&std::fs::read(m.path("rel")).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(env.snapshot(), before, "nothing on the server changed");
}

/// Mount `n` and `m` of one server; for N-copy, `m` is retried until it reaches
/// another process than `n`.
fn two_mounts(env: &Env, addr: &str, other_process: bool) -> (Mount, Mount) {
    let a = mount(env, addr, "alice");
    for _ in 0..50 {
        let b = mount(env, addr, "bob");
        if !other_process || b.server_id != a.server_id {
            return (a, b);
        }
    }
    panic!("no mount reached a second N-copy process in 50 tries");
}

/// A reads `shared`, B overwrites it with as many bytes and closes, A reads again.
fn write_through_b_read_through_a(env: &Env, a: &Mount, b: &Mount) -> Vec<u8> {
    let old = data(300_000, 1);
    std::fs::write(env.export.join("shared"), &old).unwrap();
    assert!(std::fs::read(a.path("shared")).unwrap() == old);
    assert!(
        std::fs::read(a.path("shared")).unwrap() == old,
        "from A's cache"
    );
    let new = data(300_000, 2);
    std::fs::write(b.path("shared"), &new).unwrap();
    assert!(
        std::fs::read(env.export.join("shared")).unwrap() == new,
        "B's write is on disk"
    );
    std::fs::read(a.path("shared")).unwrap()
}

#[test]
fn a_write_through_one_mount_is_seen_through_another() {
    if !can_run("a_write_through_one_mount_is_seen_through_another", &[]) {
        return;
    }
    let env = Env::new();
    let srv = env.default_server();
    let (a, b) = two_mounts(&env, &srv.local_addr().to_string(), false);
    let seen = write_through_b_read_through_a(&env, &a, &b);
    assert!(seen == data(300_000, 2), "A sees B's write (INVALIDATE)");
    // Names too: B creates, renames and removes; A's cached entries follow.
    std::fs::write(b.path("n1"), b"1").unwrap();
    assert_eq!(std::fs::read(a.path("n1")).unwrap(), b"1");
    std::fs::rename(b.path("n1"), b.path("n2")).unwrap();
    assert_eq!(
        errno(&std::fs::metadata(a.path("n1")).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(std::fs::read(a.path("n2")).unwrap(), b"1");
    std::fs::remove_file(b.path("n2")).unwrap();
    assert_eq!(
        errno(&std::fs::metadata(a.path("n2")).unwrap_err()),
        libc::ENOENT
    );
}

#[test]
fn ncopy_mounts_serve_a_stale_read() {
    if !can_run("ncopy_mounts_serve_a_stale_read", &[]) {
        return;
    }
    let env = Env::new();
    let srv = BinServer::start(
        &env,
        &["--workers", "2", "--mode", "ncopy", "--no-pin"],
        "ncopy-mounts",
    );
    let (a, b) = two_mounts(&env, &srv.addr.to_string(), true);
    let seen = write_through_b_read_through_a(&env, &a, &b);
    assert!(
        seen == data(300_000, 1),
        "A's server never heard of B's write: A's kernel serves its cached pages"
    );
}

#[test]
fn a_lost_connection_fails_with_eio_then_reconnects_and_resends() {
    if !can_run(
        "a_lost_connection_fails_with_eio_then_reconnects_and_resends",
        &[],
    ) {
        return;
    }
    let env = Env::new();
    let mut srv = BinServer::start(&env, &["--workers", "2", "--no-pin"], "lost1");
    let addr = srv.addr.to_string();
    let m = mount(&env, &addr, "alice");
    std::fs::write(m.path("kept"), b"before").unwrap();
    let first = data(1 << 20, 7);
    let mut f = std::fs::File::create(m.path("pending")).unwrap();
    f.write_all(&first).unwrap();
    srv.sigkill();
    // The unstable data the dead server had accepted is lost with it.
    std::fs::write(env.export.join("pending"), b"").unwrap();
    let t = Instant::now();
    let e = std::fs::read(m.path("kept")).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "failed within the reconnect time"
    );
    let srv2 = BinServer::start_at(&env, &addr, &["--workers", "2", "--no-pin"], "lost2");
    assert_eq!(
        std::fs::read(m.path("kept")).unwrap(),
        b"before",
        "reconnected"
    );
    let second = data(1000, 8);
    f.write_all(&second).unwrap();
    drop(f); // close: COMMIT sees the new verifier and writes everything again
    let mut want = first.clone();
    want.extend_from_slice(&second);
    let got = std::fs::read(env.export.join("pending")).unwrap();
    assert!(
        got == want,
        "{} bytes on the server, {} written",
        got.len(),
        want.len()
    );
    drop(srv2);
}

#[test]
fn a_hung_server_fails_calls_with_eio_within_the_timeout() {
    if !can_run("a_hung_server_fails_calls_with_eio_within_the_timeout", &[]) {
        return;
    }
    let env = Env::new();
    std::fs::write(env.export.join("f"), b"x").unwrap();
    let srv = BinServer::start(&env, &["--workers", "2", "--no-pin"], "hung");
    let m = Mount::new(
        &srv.addr.to_string(),
        "alice",
        &env.key_file("alice"),
        &["--timeout", "2", "--reconnect", "2"],
    );
    assert_eq!(std::fs::read(m.path("f")).unwrap(), b"x");
    let pid = srv.child.id() as i32;
    // SAFETY: signals to the server process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let t = Instant::now();
    let r = std::fs::write(m.path("g"), b"y");
    let took = t.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(errno(&r.unwrap_err()), libc::EIO);
    assert!(took < Duration::from_secs(12), "failed after {took:?}");
    assert_eq!(std::fs::read(m.path("f")).unwrap(), b"x", "works again");
}

#[test]
fn unmounting_by_signal_and_by_fusermount() {
    if !can_run("unmounting_by_signal_and_by_fusermount", &[]) {
        return;
    }
    let env = Env::new();
    let srv = env.default_server();
    let addr = srv.local_addr().to_string();
    // SIGTERM with a file open for writing: committed, unmounted, exit 0.
    let mut m = mount(&env, &addr, "alice");
    let mut f = std::fs::File::create(m.path("open")).unwrap();
    f.write_all(b"committed on SIGTERM").unwrap();
    let st = m.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
    assert!(!is_mounted(&m.dir));
    drop(f);
    assert_eq!(
        std::fs::read(env.export.join("open")).unwrap(),
        b"committed on SIGTERM"
    );
    // fusermount3 -u ends the mount process.
    let mut m = mount(&env, &addr, "alice");
    let st = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&m.dir)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_exit(&mut m.child, Duration::from_secs(10)).is_some_and(|s| s.success()));
    // Without --foreground the command returns once mounted, and the mount stays.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::util::bins::client())
        .args(["--server", &addr, "--user", "alice", "--key-file"])
        .arg(env.key_file("alice"))
        .arg("mount")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains("mounted"), "{msg}");
    let mounted = is_mounted(dir.path());
    crate::util::mount::force_unmount(dir.path());
    assert!(mounted, "the detached mount is in place: {msg}");
    // Bad credentials fail before anything is mounted, with the reason.
    let bad = Mount::try_new(&addr, "mallory", &env.key_file("alice"), &[]).err();
    assert!(
        bad.as_ref().is_some_and(|e| e.contains("refused")),
        "unknown user refused: {bad:?}"
    );
}

#[test]
fn reading_a_directory_while_removing_its_entries() {
    if !can_run("reading_a_directory_while_removing_its_entries", &[]) {
        return;
    }
    let env = Env::new();
    for i in 0..700 {
        std::fs::write(env.export.join(format!("f{i:04}")), b"").unwrap();
    }
    let srv = env.default_server();
    let m = mount(&env, &srv.local_addr().to_string(), "alice");
    let mut n = 0;
    for e in std::fs::read_dir(m.path("")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
        n += 1;
    }
    assert_eq!(n, 700, "no entry skipped while others were removed");
    assert_eq!(std::fs::read_dir(&env.export).unwrap().count(), 0);
    let mut buf = Vec::new();
    let r = std::fs::File::open(m.path("gone")).and_then(|mut f| f.read_to_end(&mut buf));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
}
