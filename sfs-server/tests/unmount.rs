//! Unmounting right after `git commit` inside the mount: nothing of SFS's keeps the mount
//! busy. What did, in the reports of `fusermount3 -u` failing with EBUSY, is git's own
//! `git maintenance run --auto --detach`, which `git commit` (2.46 and later) leaves
//! running in the repository for a moment after it returns, on any file system (a
//! tmpfs shows the same). The loop tells the two apart: with detached maintenance off,
//! the unmount right after the commit must succeed at once; with git's defaults, once
//! the processes that have the mount as their directory or hold files in it are gone,
//! it must succeed at the first try too, and the mounting process is never one of them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::mount::{can_run, is_mounted, run_for, sh, Mount};
use crate::util::Env;

/// Processes (pid and command) whose working directory, open files or mappings are in
/// `dir`, other than `except`.
fn holders(dir: &Path, except: u32) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let inside = |p: &Path| {
        std::fs::read_link(p).is_ok_and(|t| t.to_string_lossy().starts_with(dir.as_str()))
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == except {
            continue;
        }
        let p = e.path();
        let fds = std::fs::read_dir(p.join("fd"))
            .into_iter()
            .flatten()
            .flatten();
        let maps = std::fs::read_to_string(p.join("maps")).unwrap_or_default();
        if inside(&p.join("cwd"))
            || fds.into_iter().any(|f| inside(&f.path()))
            || maps.contains(&dir)
        {
            // An exiting process has an empty command line; its name (`comm`) stays until it
            // is reaped. Seen: a git process caught in its exit, "552 " with no command.
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let cmd = if cmd.iter().all(|&b| b == 0) {
                match std::fs::read_to_string(p.join("comm")) {
                    Ok(c) => format!("({})", c.trim()),
                    // Reaped meanwhile: it holds nothing any more.
                    Err(_) => continue,
                }
            } else {
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            };
            out.push(format!("{pid} {cmd}"));
        }
    }
    out
}

#[test]
fn unmount_right_after_git_commit_never_reports_busy() {
    if !can_run(
        "unmount_right_after_git_commit_never_reports_busy",
        &[("git", "git")],
    ) {
        return;
    }
    let env = Env::new();
    let srv = env.default_server();
    let addr = srv.local_addr().to_string();
    let started = Instant::now();
    let mut waited_for = Vec::new();
    for i in 0..20 {
        let m = Mount::new(&addr, "alice", &env.key_file("alice"), &[]);
        let detach = if i % 2 == 0 { "false" } else { "true" };
        let repo = format!("r{i}");
        sh(
            &m.dir,
            &format!(
                "mkdir {repo} && cd {repo} && git init -q && echo hi > a && cp a b && \
                 git add a b && git -c user.name=t -c user.email=t@t \
                 -c maintenance.autoDetach={detach} -c gc.autoDetach={detach} commit -qm c"
            ),
            Duration::from_secs(30),
        );
        if detach == "true" {
            // git's detached maintenance may still be running in the repository.
            let t = Instant::now();
            loop {
                let h = holders(&m.dir, m.child.id());
                if h.is_empty() {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(10), "still held: {h:?}");
                waited_for.extend(h);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let out = run_for(
            Command::new("fusermount3").arg("-u").arg(&m.dir),
            Duration::from_secs(10),
        );
        assert!(
            out.status.success(),
            "iteration {i} (detached maintenance {detach}): {}; holders now: {:?}",
            String::from_utf8_lossy(&out.stderr),
            holders(&m.dir, 0)
        );
        assert!(!is_mounted(&m.dir));
        // Dropping `m` reaps the mount process, which ends once unmounted.
    }
    waited_for.sort();
    waited_for.dedup();
    for h in &waited_for {
        assert!(
            h.contains("git"),
            "only git's own processes held the mount: {h}"
        );
    }
    eprintln!(
        "20 unmounts in {:.1} s; waited for: {waited_for:?}",
        started.elapsed().as_secs_f64()
    );
}
