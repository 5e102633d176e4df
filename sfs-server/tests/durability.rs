//! A WRITE acknowledged as stable, or followed by COMMIT, is on disk when it is
//! acknowledged: the server is run under strace(1), and every acknowledgement must come
//! after an fsync of that file finished (SIGKILL alone proves nothing: the page cache keeps
//! unsynced data). Then SIGKILL, and a restarted server serves the data.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sfs_proto::messages::Stable;

use crate::util::{connect, data, BinServer, Env};

/// When a syscall of the trace finished, seconds since the epoch (strace `-ttt -T`).
struct Sync {
    /// The file it synced (strace `-y`).
    path: String,
    done: f64,
}

/// fsync/fdatasync completions in a trace written by `strace -f -ttt -T -y -o FILE`.
fn syncs(trace: &str) -> Vec<Sync> {
    let mut out = Vec::new();
    // pid -> path of a call whose line was cut by another thread's.
    let mut open: HashMap<String, String> = HashMap::new();
    for line in trace.lines() {
        // "PID  SECONDS.MICROS call(...) = 0 <DURATION>"
        let Some((pid, tail)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = tail.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let path = |r: &str| -> Option<String> {
            let a = r.find('<')? + 1;
            Some(r[a..a + r[a..].find('>')?].to_string())
        };
        let dur = |r: &str| -> f64 {
            r.rsplit_once('<')
                .and_then(|(_, d)| d.trim_end_matches('>').parse().ok())
                .unwrap_or(0.0)
        };
        let ok = |r: &str| r.contains(") = 0");
        if rest.starts_with("fsync(") || rest.starts_with("fdatasync(") {
            if rest.ends_with("<unfinished ...>") {
                if let Some(p) = path(rest) {
                    open.insert(pid.to_string(), p);
                }
            } else if let (Some(p), true) = (path(rest), ok(rest)) {
                out.push(Sync {
                    path: p,
                    done: ts + dur(rest),
                });
            }
        } else if rest.starts_with("<... fsync resumed>")
            || rest.starts_with("<... fdatasync resumed>")
        {
            if let (Some(p), true) = (open.remove(pid), ok(rest)) {
                out.push(Sync { path: p, done: ts });
            }
        }
    }
    out
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// True when the trace has an fsync of `file` that finished in `(after, before]`.
fn synced(trace: &[Sync], file: &str, after: f64, before: f64) -> bool {
    trace
        .iter()
        .any(|s| s.path.ends_with(file) && s.done > after && s.done <= before)
}

#[test]
fn stable_and_committed_writes_survive_sigkill() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        edge::testing::skip(
            "stable_and_committed_writes_survive_sigkill",
            "strace is not installed (apt-get install strace)",
        );
        return;
    }
    let env = Env::new();
    let trace_file = env.dir.path().join("fsync.trace");
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-ttt",
        "-T",
        "-y",
        "-e",
        "trace=fsync,fdatasync",
        "-e",
        "signal=none",
        "-o",
        trace_file.to_str().unwrap(),
    ];
    let mut srv = BinServer::start_under(
        &env,
        &wrapper,
        &["--workers", "2", "--runtime", "mely", "--stealing", "all"],
        "dur",
    );
    let c = connect(srv.addr, "alice", &env.alice);
    let (root, _) = c.root().unwrap();
    // Stable writes, one at a time: each acknowledgement at `acks[i]`.
    let stable = data(700_000, 11);
    let (f1, _) = c.create(&root, "stable", 0o644, true).unwrap();
    let mut acks = vec![now()];
    for (i, ch) in stable.chunks(200_000).enumerate() {
        let (_, committed, _) = c
            .write(&f1, (i * 200_000) as u64, ch, Stable::FileSync)
            .unwrap();
        assert_eq!(committed, Stable::FileSync);
        acks.push(now());
    }
    // Unstable writes, then COMMIT.
    let committed = data(900_000, 12);
    let (f2, _) = c.create(&root, "committed", 0o644, true).unwrap();
    let mut verf = None;
    for (i, ch) in committed.chunks(300_000).enumerate() {
        let (_, _, v) = c
            .write(&f2, (i * 300_000) as u64, ch, Stable::Unstable)
            .unwrap();
        verf.get_or_insert(v);
    }
    let commit_sent = now();
    assert_eq!(Some(c.commit(&f2).unwrap()), verf);
    let commit_acked = now();
    drop(c);
    srv.sigkill();
    let trace = syncs(&std::fs::read_to_string(&trace_file).unwrap());
    for k in 1..acks.len() {
        assert!(
            synced(&trace, "/export/stable", acks[k - 1], acks[k]),
            "stable WRITE {k} was acknowledged with no fsync of the file before it"
        );
    }
    assert!(
        synced(&trace, "/export/committed", commit_sent, commit_acked),
        "COMMIT was acknowledged with no fsync of the file before it"
    );
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
