//! POSIX through the kernel on a mount many local users share: a trusted key
//! (`keygen --trusted`), operations done as root and, through `setpriv`, as other
//! uids with their own groups, each checked for the errno a local disk gives.
//!
//! Each rule is a line of a shell script run as one user: `t WANT CMD...` runs CMD and
//! expects WANT in its error message (the errno's `strerror`), or `OK` for success;
//! `is WANT CMD...` expects CMD to print exactly WANT. The script prints `FAIL` lines,
//! and the test asserts there are none.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::mount::{can_run, ci, run_for, Mount};
use crate::util::Env;

/// The helpers every script starts with.
const PRELUDE: &str = r#"
t() { want="$1"; shift
  if out=$("$@" 2>&1); then got=OK; else got="$out"; fi
  case "$got" in *"$want"*) ;; *) echo "FAIL: $* -> $got (want $want)";; esac; }
is() { want="$1"; shift
  got=$("$@" 2>&1)
  [ "$got" = "$want" ] || echo "FAIL: $* -> $got (want $want)"; }
"#;

/// A trusted mount of a root-run server, or None (SKIPPED printed) where the test
/// cannot run: no FUSE, or not root (setpriv and a server that gives files away need
/// it). Under CI a missing privilege fails.
fn trusted_mount(test: &str) -> Option<(Env, sfs_server::server::Server, Mount)> {
    if !can_run(test, &[("setpriv", "util-linux")]) {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(!ci(), "under CI: {test} needs root");
        eprintln!("SKIPPED {test}: needs root (setpriv to other uids)");
        return None;
    }
    let env = Env::new();
    let mut t = sfs_server::keytable::KeyTable::load(&env.keys).unwrap();
    t.set_trusted("alice", true).unwrap();
    t.save(&env.keys).unwrap();
    let srv = env.default_server();
    let m = Mount::new(
        &srv.local_addr().to_string(),
        "alice",
        &env.key_file("alice"),
        &[],
    );
    // Other users must reach the mount point (its temporary parent is 0700).
    let parent = m.dir.parent().unwrap();
    std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    Some((env, srv, m))
}

/// Run `script` in `dir` as `uid`:`gid` with supplementary `groups` (root: as is);
/// assert no rule failed.
fn run_as(dir: &Path, uid: u32, gid: u32, groups: &[u32], script: &str) {
    let full = format!("{PRELUDE}\n{script}");
    let mut cmd = if uid == 0 {
        Command::new("sh")
    } else {
        let mut c = Command::new("setpriv");
        let g: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        c.args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()]);
        if g.is_empty() {
            c.arg("--clear-groups");
        } else {
            c.args(["--groups", &g.join(",")]);
        }
        c.arg("sh");
        c
    };
    cmd.args(["-c", &full]).current_dir(dir);
    let out = run_for(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("FAIL"),
        "as uid {uid} ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;
const GROUP: u32 = 4000;

#[test]
fn other_users_share_a_trusted_mount_each_as_itself() {
    let Some((env, _srv, m)) = trusted_mount("other_users_share_a_trusted_mount_each_as_itself")
    else {
        return;
    };
    let d = &m.dir;
    run_as(
        d,
        0,
        0,
        &[],
        &format!(
            "t OK chmod 1777 .
             t OK mkdir shared; t OK chown 0:{GROUP} shared; t OK chmod 0770 shared
             t OK sh -c 'echo secret > rootonly'; t OK chmod 0600 rootonly"
        ),
    );
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[],
        "t OK mkdir mine; t OK sh -c 'echo hi > mine/f'; t OK ln mine/f mine/g
         is 2 stat -c %h mine/f
         t OK ln -s f mine/l; is hi cat mine/l
         t OK touch top
         t 'Permission denied' cat rootonly
         t 'Permission denied' ls shared
         t 'Permission denied' touch shared/x
         is '65534 65534' stat -c '%u %g' mine/f",
    );
    // The server side holds the caller's ids.
    let st = std::fs::metadata(env.export.join("mine/f")).unwrap();
    assert_eq!((st.uid(), st.gid()), (NOBODY, NOBODY));
    // Another user: sticky root, nobody's files, and a supplementary group.
    run_as(
        d,
        OTHER,
        OTHER,
        &[GROUP],
        "t 'Operation not permitted' rm -f top
         t 'Operation not permitted' mv mine sticky-moved
         t 'Permission denied' rm -f mine/f
         t 'Permission denied' sh -c 'echo x >> mine/f'
         t 'Operation not permitted' chmod 777 mine/f
         t OK touch shared/bygroup
         is '65533 65533' stat -c '%u %g' shared/bygroup",
    );
    run_as(d, OTHER, OTHER, &[], "t 'Permission denied' ls shared");
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[],
        "t OK rm mine/g; is 1 stat -c %h mine/f; t OK rm -r mine",
    );
}

#[test]
fn special_files_through_the_kernel() {
    let Some((env, _srv, m)) = trusted_mount("special_files_through_the_kernel") else {
        return;
    };
    let d = &m.dir;
    run_as(
        d,
        0,
        0,
        &[],
        "t OK chmod 1777 .
         t OK mkfifo fifo; is fifo stat -c %F fifo
         t OK mknod null c 1 3; is 'character special file 1 3' stat -c '%F %t %T' null
         t OK mknod blk b 7 0; is 'block special file 7 0' stat -c '%F %t %T' blk
         (cat fifo > fifo.out &) ; echo through > fifo; sleep 0.2
         is through cat fifo.out",
    );
    // A Unix socket bound in the mount, and connected to through it.
    let path = d.join("sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    drop((c, l.accept().unwrap()));
    let ft = std::fs::symlink_metadata(env.export.join("sock")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&ft.file_type()));
    // Devices only for a caller with the right; FIFOs for anyone.
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[],
        "t 'Operation not permitted' mknod dev2 c 1 3
         t 'Operation not permitted' mknod blk2 b 7 0
         t OK mkfifo myfifo; is '65534 fifo' stat -c '%u %F' myfifo
         t OK chmod 600 myfifo; is 600 stat -c %a myfifo
         t 'Operation not permitted' chmod 600 fifo
         t 'Operation not permitted' rm fifo",
    );
}

#[test]
fn chmod_chown_and_set_id_rules() {
    let Some((env, _srv, m)) = trusted_mount("chmod_chown_and_set_id_rules") else {
        return;
    };
    let d = &m.dir;
    run_as(
        d,
        0,
        0,
        &[],
        &format!(
            "t OK chmod 1777 .
             t OK touch suid suid2; t OK chmod 6777 suid suid2
             t OK mkdir sgdir; t OK chown 0:{GROUP} sgdir; t OK chmod 2777 sgdir
             t OK touch g2; t OK chown {NOBODY}:{GROUP} g2"
        ),
    );
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[GROUP],
        &format!(
            "t OK touch own; t OK chmod 640 own; is 640 stat -c %a own
             t 'Operation not permitted' chown {OTHER} own
             t 'Operation not permitted' chgrp 12345 own
             t OK chgrp {GROUP} own; is {GROUP} stat -c %g own
             t OK chmod 6755 own; t OK chgrp {NOBODY} own; is 755 stat -c %a own
             t OK sh -c 'echo x >> suid'; is 777 stat -c %a suid
             t OK truncate -s 0 suid2; is 777 stat -c %a suid2
             t OK touch sgdir/f; is {GROUP} stat -c %g sgdir/f
             t OK mkdir sgdir/sub; is '2755 {GROUP}' stat -c '%a %g' sgdir/sub"
        ),
    );
    // The owner's chmod g+s of a file whose group it is not in drops set-group-id.
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[],
        "t OK chmod 2755 g2; is 755 stat -c %a g2",
    );
    let st = std::fs::metadata(env.export.join("suid")).unwrap();
    assert_eq!(st.mode() & 0o7777, 0o777, "cleared on the server");
}

#[test]
fn names_links_and_errnos_as_a_local_disk() {
    let Some((_env, _srv, m)) = trusted_mount("names_links_and_errnos_as_a_local_disk") else {
        return;
    };
    let d = &m.dir;
    let long = "a".repeat(256);
    let deep = "d/".repeat(2100);
    let script = format!(
        "t OK chmod 1777 .
         t OK touch {ok}; t 'File name too long' touch {long}
         t 'File name too long' touch {deep}x
         t OK ln -s l1 l2; t OK ln -s l2 l1; t 'Too many levels of symbolic links' cat l1
         t OK mkdir dir; t OK mkdir dir/a; t OK mkdir dir/b; is 4 stat -c %h dir
         t 'Directory not empty' rmdir dir
         t OK touch f1; t OK ln f1 f2; t OK ln f1 f3; is 3 stat -c %h f1
         t OK rm f3; is 2 stat -c %h f2
         t OK sh -c 'echo one > f1'; is one cat f2
         t OK sh -c 'echo two > f4'; t OK mv f4 f1; is two cat f1; is one cat f2
         is 1 stat -c %h f2
         t OK mkdir empty; t OK mv -T dir/a empty; t 'Directory not empty' mv -T empty dir
         t 'File exists' sh -c 'set -C; echo x > f1'
         t OK sh -c 'echo 12345 > f1'; t OK sh -c 'echo 6 > f1'; is 6 cat f1
         t OK sh -c 'echo 7 >> f1'; is '6
7' cat f1
         t OK touch -d @1000000000 f1; t OK sh -c 'echo 8 >> f1'
         t OK test $(stat -c %Y f1) -gt 1000000000
         c1=$(stat -c %z f1); t OK chmod 600 f1; t OK test \"$(stat -c %z f1)\" != \"$c1\"
         t OK mkdir tdir; t OK touch -d @1000000000 tdir; t OK touch tdir/new
         t OK test $(stat -c %Y tdir) -gt 1000000000
         t OK touch -d @1000000000 tdir; t OK rm tdir/new; t OK test $(stat -c %Y tdir) -gt 1000000000
         c2=$(stat -c %z f2); t OK ln f2 f5; t OK test \"$(stat -c %z f2)\" != \"$c2\"
         c3=$(stat -c %z f5); t OK mv f5 f6; t OK test \"$(stat -c %z f6)\" != \"$c3\"
         t 'Invalid cross-device link' ln f6 /tmp/sfs-posix-exdev-$$
         t OK touch rootfile; t OK chmod 644 rootfile",
        ok = "b".repeat(255),
    );
    run_as(d, 0, 0, &[], &script);
    run_as(
        d,
        NOBODY,
        NOBODY,
        &[],
        "t 'Permission denied' truncate -s 0 rootfile
         t 'Permission denied' sh -c 'echo x > rootfile'
         t OK cat rootfile
         t 'Permission denied' touch -d @5 rootfile",
    );
}

/// Where FUSE is missing, a mount test prints SKIPPED with the reason, except under
/// CI (any value but empty or `false`), where it fails.
#[test]
fn mount_tests_fail_under_ci_when_they_cannot_run() {
    let run = |ci: &str| {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args([
            "--exact",
            "posix::special_files_through_the_kernel",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SFS_TEST_FUSE_DEV", "/nonexistent/fuse")
        .env("CI", ci);
        run_for(&mut c, Duration::from_secs(60))
    };
    for ci in ["true", "1", "yes"] {
        let out = run(ci);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "CI={ci} must fail: {err}");
        assert!(err.contains("/nonexistent/fuse cannot be opened"), "{err}");
    }
    for ci in ["", "false"] {
        let out = run(ci);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "CI={ci:?} skips: {err}");
        assert!(
            err.contains("SKIPPED special_files_through_the_kernel: /nonexistent/fuse"),
            "{err}"
        );
    }
}
