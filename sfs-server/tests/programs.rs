//! Programs that no one here wrote, through the mount: coreutils and the shell, git,
//! tar, and fio with a verify pass.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::util::mount::{can_run, run_for, sh, Mount};
use crate::util::{data, Env};

const LIMIT: Duration = Duration::from_secs(120);

fn mounted(env: &Env) -> (sfs_server::server::Server, Mount) {
    let srv = env.default_server();
    let m = Mount::new(
        &srv.local_addr().to_string(),
        "alice",
        &env.key_file("alice"),
        &[],
    );
    (srv, m)
}

/// Shell and coreutils, run once in a local directory and once in the mount: the
/// outputs (contents, sizes, modes, link counts, one set mtime) must be identical.
const SHELL: &str = r#"
mkdir -p a/b/c
printf 'hello\n' > a/f
printf 'more\n' >> a/f
cp a/f a/b/g
cmp a/f a/b/g
head -c 300000 /dev/zero | tr '\0' x > big
cp big a/b/c/big2
cmp big a/b/c/big2
mv a/b/c/big2 a/moved
truncate -s 1000 a/moved
truncate -s 5000 big
dd if=/dev/zero of=sparse bs=1 count=1 seek=100000 2>/dev/null
ln -s f a/link
ln a/f a/hard
chmod 600 a/b/g
touch -d @1000000000 a/b/g
for i in 1 2 3; do echo "line $i" >> log; done
wc -c log big a/moved sparse
cat log a/link
ls -ln a | awk 'NR > 1 { print $1, $2, $5, $NF }'
find . -type f | sort | xargs stat -c '%n %s %a %h'
stat -c '%Y' a/b/g
cp -r a copy
diff -r a copy && echo same-tree
rm -r a/b
ls a | sort
test ! -e a/b
rm -r a copy
ls | sort
"#;

#[test]
fn coreutils_and_the_shell_behave_as_on_a_local_disk() {
    if !can_run(
        "coreutils_and_the_shell_behave_as_on_a_local_disk",
        &[("diff", "diffutils")],
    ) {
        return;
    }
    let env = Env::new();
    let (_srv, m) = mounted(&env);
    let local = tempfile::tempdir().unwrap();
    let want = sh(local.path(), SHELL, LIMIT);
    let got = sh(&m.dir, SHELL, LIMIT);
    assert_eq!(got, want, "the mount and a local directory differ");
    for line in [
        "same-tree",
        "./a/b/g 11 600 1",
        "-rw-r--r-- 2 11 hard",
        "1000000000",
    ] {
        assert!(want.contains(line), "{line:?} missing from\n{want}");
    }
}

#[test]
fn git_init_add_commit_in_the_mount() {
    if !can_run("git_init_add_commit_in_the_mount", &[("git", "git")]) {
        return;
    }
    let env = Env::new();
    let (_srv, m) = mounted(&env);
    let out = sh(
        &m.dir,
        r#"
        git init -q repo
        cd repo
        git config user.email test@example.invalid
        git config user.name test
        for i in $(seq 1 40); do echo "file $i" > f$i.txt; done
        mkdir sub && head -c 200000 /dev/urandom > sub/blob.bin
        git add . && git commit -qm first
        echo change >> f1.txt && git commit -qam second
        git mv f2.txt renamed.txt && git commit -qm rename
        git rm -q f3.txt && git commit -qm remove
        git status --porcelain
        git log --oneline | wc -l
        git fsck --strict 2>&1
        git gc -q
        git fsck --strict 2>&1
        git clone -q . ../clone
        cmp sub/blob.bin ../clone/sub/blob.bin && echo clone-ok
        "#,
        LIMIT,
    );
    assert_eq!(out.trim(), "4\nclone-ok", "{out}");
    // The server's copy is the same repository.
    let srv_side = run_for(
        Command::new("git")
            .args(["-C"])
            .arg(env.export.join("repo"))
            .args(["log", "--format=%s"]),
        LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&srv_side.stdout),
        "remove\nrename\nsecond\nfirst\n"
    );
}

/// A description of a tree: per path, type, mode, size, content digest or link
/// target, mtime (seconds) and link count.
fn manifest(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let mode = md.mode() & 0o7777;
            let v = if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o} mtime {}", md.mtime())
            } else {
                let digest = Sha256::digest(std::fs::read(&p).unwrap());
                format!(
                    "file {mode:o} {} {} mtime {} links {}",
                    md.len(),
                    sfs_proto::key::hex_encode(&digest),
                    md.mtime(),
                    md.nlink()
                )
            };
            out.insert(rel, v);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn make_tree(root: &Path) {
    let mut seed = 10;
    for d in ["", "d1", "d1/d2", "d1/d2/d3", "empty", "wide"] {
        let dir = root.join(d);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, size) in [0usize, 1, 4095, 4096, 65_537, 1_300_000]
            .into_iter()
            .enumerate()
        {
            if d == "empty" {
                break;
            }
            seed += 1;
            let f = dir.join(format!("file{i}"));
            std::fs::write(&f, data(size, seed)).unwrap();
            let mode = [0o644, 0o600, 0o755, 0o444, 0o640, 0o700][i];
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    for i in 0..200 {
        std::fs::write(root.join(format!("wide/n{i:03}")), format!("{i}")).unwrap();
    }
    std::os::unix::fs::symlink("../file1", root.join("d1/rel-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/abs", root.join("d1/dangling")).unwrap();
    std::fs::hard_link(root.join("file2"), root.join("d1/hard")).unwrap();
    std::fs::set_permissions(root.join("d1/d2"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

#[test]
fn tar_in_and_out_keeps_every_byte_mode_and_link() {
    if !can_run(
        "tar_in_and_out_keeps_every_byte_mode_and_link",
        &[("tar", "tar")],
    ) {
        return;
    }
    let env = Env::new();
    let (_srv, m) = mounted(&env);
    let work = tempfile::tempdir().unwrap();
    let (src, back) = (work.path().join("src"), work.path().join("back"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&back).unwrap();
    make_tree(&src);
    std::fs::create_dir(m.path("t")).unwrap();
    let script = format!(
        "tar -C {src} -cf - . | tar -C {mnt} -xpf -\n\
         tar -C {mnt} -cf - . | tar -C {back} -xpf -",
        src = src.display(),
        mnt = m.path("t").display(),
        back = back.display()
    );
    sh(work.path(), &script, LIMIT);
    let want = manifest(&src);
    assert!(want.len() > 230, "{} entries", want.len());
    assert_eq!(manifest(&back), want, "out of the mount");
    assert_eq!(manifest(&env.export.join("t")), want, "on the server");
}

#[test]
fn fio_writes_and_reads_verify() {
    if !can_run("fio_writes_and_reads_verify", &[("fio", "fio")]) {
        return;
    }
    let env = Env::new();
    let (srv, m) = mounted(&env);
    let fio = |mnt: &Mount, args: &[&str]| {
        let out = run_for(
            Command::new("fio")
                // fio saves its verify state (`*-verify.state`) in its working directory.
                .current_dir(env.dir.path())
                .arg(format!("--directory={}", mnt.dir.display()))
                .args([
                    "--ioengine=psync",
                    "--fallocate=none",
                    "--size=24M",
                    "--output-format=json",
                ])
                .args(args),
            LIMIT,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "fio {args:?}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = text.find('{').unwrap_or(0);
        let v: serde_json::Value = serde_json::from_str(&text[start..]).unwrap();
        for j in v["jobs"].as_array().unwrap() {
            assert_eq!(j["error"], 0, "fio job {} failed: {j}", j["jobname"]);
        }
        v
    };
    fio(
        &m,
        &[
            "--name=seq",
            "--filename=seq.dat",
            "--rw=write",
            "--bs=128k",
            "--verify=crc32c",
            "--do_verify=1",
            "--end_fsync=1",
        ],
    );
    fio(
        &m,
        &[
            "--name=rand",
            "--filename=rand.dat",
            "--rw=randwrite",
            "--bsrange=4k-256k",
            "--verify=md5",
            "--do_verify=1",
            "--fsync=16",
        ],
    );
    // Verify again through a fresh mount: the data comes from the server.
    drop(m);
    let m2 = Mount::new(
        &srv.local_addr().to_string(),
        "alice",
        &env.key_file("alice"),
        &[],
    );
    let v = fio(
        &m2,
        &[
            "--name=rand",
            "--filename=rand.dat",
            "--rw=randwrite",
            "--bsrange=4k-256k",
            "--verify=md5",
            "--verify_only",
        ],
    );
    let read = v["jobs"][0]["read"]["io_bytes"].as_u64().unwrap_or(0);
    assert!(read >= 24 << 20, "the verify pass read {read} bytes");
    assert_eq!(
        std::fs::metadata(env.export.join("seq.dat")).unwrap().len(),
        24 << 20
    );
}
