//! The fixed command lines: keygen, sfs-client subcommands, sfs-bench JSON.

use std::process::Command;

use crate::util::{data, BinServer, Env};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn keygen_client_and_bench_command_lines() {
    let env = Env::new();
    let keys = env.keys.to_str().unwrap().to_string();
    let carol_key = env.dir.path().join("carol.key");
    run(Command::new(crate::util::bins::SERVER)
        .args(["keygen", "--user", "carol", "--keys", &keys, "--key-file"])
        .arg(&carol_key));
    let srv = BinServer::start(
        &env,
        &[
            "--workers",
            "2",
            "--runtime",
            "libasync",
            "--stealing",
            "base",
            "--coloring",
            "per-client",
            "--mode",
            "colored",
        ],
        "cli",
    );
    let client = |args: &[&str]| {
        run(Command::new(crate::util::bins::client())
            .args([
                "--server",
                &srv.addr.to_string(),
                "--user",
                "carol",
                "--key-file",
            ])
            .arg(&carol_key)
            .args(args))
    };
    let local = env.dir.path().join("local.bin");
    let d = data(1_500_000, 5);
    std::fs::write(&local, &d).unwrap();
    client(&["put", local.to_str().unwrap(), "remote.bin"]);
    assert_eq!(client(&["ls"]), "remote.bin\n");
    // `ls -l` shows the size where `ls -l` does, and the type and mode.
    let long = client(&["ls", "-l"]);
    let cols: Vec<&str> = long.split_whitespace().collect();
    assert_eq!(cols.len(), 7, "{long}");
    assert_eq!(
        (cols[0], cols[3], cols[6]),
        ("-rw-r--r--", "1500000", "remote.bin"),
        "{long}"
    );
    assert_eq!(client(&["ls", "--long", "remote.bin"]), long);
    let st = client(&["stat", "remote.bin"]);
    assert!(st.contains("size 1500000"), "{st}");
    let back = env.dir.path().join("back.bin");
    client(&["get", "remote.bin", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), d);
    let out = run(Command::new(crate::util::bins::bench())
        .args([
            "--server",
            &srv.addr.to_string(),
            "--user",
            "carol",
            "--key-file",
        ])
        .arg(&carol_key)
        .args([
            "--clients",
            "2",
            "--file",
            "remote.bin",
            "--seconds",
            "0.5",
            "--verify",
            "sample",
            "--format",
            "json",
        ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["mbytes_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["ops"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"].as_u64(), Some(0));
    client(&["rm", "remote.bin"]);
    assert!(!client(&["ls"]).contains("remote.bin"));
    // A wrong key is refused by the command too.
    let out = Command::new(crate::util::bins::client())
        .args([
            "--server",
            &srv.addr.to_string(),
            "--user",
            "carol",
            "--key-file",
        ])
        .arg(env.key_file("alice"))
        .arg("ls")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let lim = run(Command::new(crate::util::bins::bench()).args([
        "--crypto-limit",
        "--seconds",
        "0.2",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(lim.trim()).unwrap();
    assert!(v["mbytes_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_library_full_and_sample_verification() {
    use sfs_client::bench::{run, BenchConfig, Verify};
    let env = Env::new();
    std::fs::write(env.export.join("f"), data(3_000_000, 9)).unwrap();
    let srv = env.default_server();
    for verify in [Verify::Full, Verify::Sample] {
        let cfg = BenchConfig {
            server: srv.local_addr().to_string(),
            user: "alice".into(),
            clients: 3,
            file: "f".into(),
            seconds: 0.4,
            verify,
            chunk: 100_000,
        };
        let r = run(&cfg, &env.alice).unwrap();
        assert_eq!(r.errors, 0, "{verify:?}");
        assert!(r.ops > 0 && r.bytes > 0, "{verify:?}: {r:?}");
        // Every reply carries exactly `chunk` bytes or the file's tail, never more.
        assert!(r.bytes <= r.ops * 100_000, "{verify:?}: {r:?}");
        assert_eq!(r.server_ids.len(), 1);
    }
    // A wrong key makes every client fail, and the benchmark says so.
    let cfg = BenchConfig {
        server: srv.local_addr().to_string(),
        user: "alice".into(),
        clients: 2,
        file: "f".into(),
        seconds: 0.2,
        verify: Verify::Full,
        chunk: 100_000,
    };
    assert!(run(&cfg, &env.bob).is_err());
}

/// `--steal-amount` reaches the statistics the server writes on exit (`one`, the paper's, by
/// default); a value that is neither `one` nor `half` is refused.
#[test]
fn steal_amount_is_recorded() {
    let env = Env::new();
    for (extra, want) in [(&[][..], "one"), (&["--steal-amount", "half"][..], "half")] {
        let stats = env.dir.path().join(format!("stats-{want}.json"));
        let mut args = vec![
            "--workers",
            "2",
            "--stealing",
            "all",
            "--stats-json",
            stats.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        // Dropping the server stops it with SIGTERM and waits for it: it writes the stats.
        drop(BinServer::start(&env, &args, want));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        assert_eq!(doc["steal_amount"], want, "{doc}");
        assert_eq!(doc["stealing"], "all", "{doc}");
    }
    let out = Command::new(crate::util::bins::SERVER)
        .args([
            "--export",
            "/",
            "--listen",
            "127.0.0.1:0",
            "--keys",
            "/nonexistent",
        ])
        .args(["--steal-amount", "all"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown steal amount"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--trace` writes a trace at shutdown that the checker accepts, with runs of the requests
/// served; in N-copy mode each copy writes its own (`t.c0.json`, ...), the parent none.
#[test]
fn trace_is_written_at_shutdown_and_passes_the_checker() {
    let env = Env::new();
    for (mode, workers) in [("colored", "2"), ("ncopy", "2")] {
        let t = env.dir.path().join(format!("t-{mode}.json"));
        let srv = BinServer::start(
            &env,
            &[
                "--workers",
                workers,
                "--mode",
                mode,
                "--trace",
                t.to_str().unwrap(),
                "--trace-records",
                "100000",
            ],
            mode,
        );
        let key = env.key_file("alice");
        for _ in 0..3 {
            run(Command::new(crate::util::bins::client())
                .args([
                    "--server",
                    &srv.addr.to_string(),
                    "--user",
                    "alice",
                    "--key-file",
                ])
                .arg(&key)
                .arg("ls"));
        }
        drop(srv);
        let files: Vec<_> = if mode == "ncopy" {
            assert!(
                !t.exists(),
                "an N-copy parent runs no runtime: no trace of its own"
            );
            (0..2)
                .map(|i| env.dir.path().join(format!("t-{mode}.c{i}.json")))
                .collect()
        } else {
            vec![t]
        };
        let mut runs = 0;
        for f in files {
            let r = colored_trace::check::check_path(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(r.passed(), "{}: {r:?}", f.display());
            runs += r.runs;
        }
        // Three sessions (hello, an operation, close): several runs each.
        assert!(runs >= 6, "{mode}: only {runs} runs traced");
    }
    let out = Command::new(crate::util::bins::SERVER)
        .args(["--export", "/", "--listen", "127.0.0.1:0", "--keys"])
        .arg(&env.keys)
        .args(["--trace", "/nonexistent/t.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--trace /nonexistent/t.json: directory /nonexistent does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
