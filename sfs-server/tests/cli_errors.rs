//! The SFS programs as a user meets them, run as processes: keygen never destroys a key
//! silently, errors name the path, the user or what the peer is, usage errors exit 2 and
//! failures 1 with one `<program>: error: ...` line, output paths are checked first.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use crate::util::{BinServer, Env};

use crate::util::bins::{client, SERVER};

use edge::testing::{first_stderr_line as first_err, run_program as run};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_refuses_to_replace_keys_without_force_and_takes_uid_gid() {
    let env = Env::new();
    let keys = env.dir.path().join("k2");
    let ckey = env.dir.path().join("carol.key");
    let keygen = |extra: &[&str]| {
        let mut a = vec!["keygen", "--user", "carol", "--keys", s(&keys)];
        a.extend_from_slice(&["--key-file", s(&ckey)]);
        a.extend_from_slice(extra);
        run(SERVER, &a)
    };
    let o = keygen(&["--uid", "1234", "--gid", "2345"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("added user carol (uid 1234, gid 2345)"));
    let table = std::fs::read_to_string(&keys).unwrap();
    assert!(table.contains("carol 1234 2345 "), "{table}");
    let key = std::fs::read(&ckey).unwrap();

    // Again: refused, nothing changed.
    let o = keygen(&[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        first_err(&o),
        format!(
            "sfs-server: error: user carol is already in {}; pass --force to replace the key",
            keys.display()
        )
    );
    assert_eq!(std::fs::read(&ckey).unwrap(), key);
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), table);

    // Another user pointed at carol's key file: refused.
    let o = run(
        SERVER,
        &[
            "keygen",
            "--user",
            "dave",
            "--keys",
            s(&keys),
            "--key-file",
            s(&ckey),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        first_err(&o).starts_with("sfs-server: error: key file"),
        "{}",
        first_err(&o)
    );
    assert_eq!(std::fs::read(&ckey).unwrap(), key);

    // --force replaces, and says so.
    let o = keygen(&["--force"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("replaced user carol"));
    assert_ne!(std::fs::read(&ckey).unwrap(), key);

    // A key table that cannot be written leaves no key file behind.
    let stray = env.dir.path().join("erin.key");
    let o = run(
        SERVER,
        &[
            "keygen",
            "--user",
            "erin",
            "--keys",
            "/nonexistent/keys",
            "--key-file",
            s(&stray),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        first_err(&o).starts_with("sfs-server: error: "),
        "{}",
        first_err(&o)
    );
    assert!(!stray.exists());
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("erin") || n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn server_usage_errors_exit_2_before_any_work() {
    let env = Env::new();
    let base = [
        "--export",
        s(&env.export),
        "--listen",
        "127.0.0.1:0",
        "--keys",
        s(&env.keys),
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        run(SERVER, &a)
    };
    let cases: &[(&[&str], &str)] = &[
        (
            &["--stats-json", "/nonexistent/s.json"],
            "sfs-server: error: --stats-json /nonexistent/s.json: directory /nonexistent does not exist",
        ),
        (
            &["--workers", "100000", "--mode", "ncopy"],
            "sfs-server: error: --workers 100000 is more than the",
        ),
        (
            &["--runtime", "libasync", "--stealing", "time-left"],
            "sfs-server: error: the libasync queues support only stealing off or base",
        ),
        (&["--coloring", "nosuch"], "sfs-server: error: invalid value 'nosuch' for '--coloring"),
    ];
    for (extra, want) in cases {
        let o = with(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {o:?}");
        assert!(
            first_err(&o).starts_with(want),
            "{extra:?}: {}",
            first_err(&o)
        );
        assert!(o.stdout.is_empty(), "{extra:?}: it started");
    }
    let o = run(
        SERVER,
        &[
            "--export",
            "/nonexistent",
            "--listen",
            "127.0.0.1:0",
            "--keys",
            s(&env.keys),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        first_err(&o),
        "sfs-server: error: --export /nonexistent: not a directory"
    );
    let o = run(SERVER, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        first_err(&o).starts_with("sfs-server: error: either `keygen` or"),
        "{}",
        first_err(&o)
    );
}

#[test]
fn sfs_server_has_version_and_examples() {
    let o = run(SERVER, &["--version"]);
    assert!(o.status.success(), "sfs-server --version: {o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sfs-server "));
    let o = run(SERVER, &["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"));
}

#[test]
fn client_errors_name_the_path_the_user_and_the_peer() {
    let env = Env::new();
    let srv = BinServer::start(
        &env,
        &["--workers", "1", "--coloring", "per-client"],
        "clierr",
    );
    let addr = srv.addr.to_string();
    let alice_key = env.key_file("alice");
    let out = env.dir.path().join("out.txt");
    // Global options after the subcommand; a missing file named once, with its path.
    let o = run(
        client(),
        &[
            "get",
            "missing.txt",
            s(&out),
            "--server",
            &addr,
            "--user",
            "alice",
            "--key-file",
            s(&alice_key),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        first_err(&o),
        "sfs-client: error: get missing.txt: server: no such file or directory"
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
    assert!(!out.exists());
    // An unknown user.
    let o = run(
        client(),
        &[
            "--server",
            &addr,
            "--user",
            "mallory",
            "--key-file",
            s(&alice_key),
            "ls",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let line = first_err(&o);
    assert!(
        line.starts_with(&format!(
            "sfs-client: error: connecting to {addr} as mallory: "
        )),
        "{line}"
    );
    assert!(line.contains("refused user mallory"), "{line}");
    // A peer that is not an SFS server (answers like an HTTP server).
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let haddr = http.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut c, _) = http.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = c.read(&mut buf);
        let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let o = run(
        client(),
        &[
            "--server",
            &haddr,
            "--user",
            "alice",
            "--key-file",
            s(&alice_key),
            "ls",
        ],
    );
    t.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let line = first_err(&o);
    assert!(line.contains("does not speak SFS"), "{line}");
    assert!(line.contains("\"HTTP\""), "{line}");
    // Missing connection options: a usage error naming them.
    let o = run(client(), &["ls", "--server", &addr]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_err(&o),
        "sfs-client: error: missing --user NAME, --key-file FILE (before or after the subcommand); see --help"
    );
    // `stat` says the type in words and the time as a date.
    std::fs::write(env.export.join("f.txt"), b"x").unwrap();
    let o = run(
        client(),
        &[
            "--server",
            &addr,
            "--user",
            "alice",
            "--key-file",
            s(&alice_key),
            "stat",
            "f.txt",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let st = String::from_utf8_lossy(&o.stdout);
    assert!(st.starts_with("type regular file\nmode -rw"), "{st}");
    let mtime = st.lines().find(|l| l.starts_with("mtime ")).unwrap();
    assert!(mtime.contains(" UTC ("), "{mtime}");
    assert!(mtime.starts_with("mtime 20"), "{mtime}");
    // The clients above closed their connections normally: that is not logged (debug
    // level), while the refused user is.
    assert!(srv.wait_log("unknown user"), "{}", srv.log());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !srv.log().contains("peer closed the connection"),
        "{}",
        srv.log()
    );
}
