//! The client package's programs on their own (no server needed): `--version`, `--help`,
//! and `sfs-bench`'s in-process crypto measurement and usage errors. The tests that run
//! them against a server live with the server (`sfs-server/tests`), which runs these same
//! programs; these tests are also what makes Cargo build them for that run.

use std::path::Path;

use edge::testing::{first_stderr_line as first_err, run_program as run};

const CLIENT: &str = env!("CARGO_BIN_EXE_sfs-client");
const BENCH: &str = env!("CARGO_BIN_EXE_sfs-bench");

#[test]
fn every_client_program_has_version_and_examples() {
    for bin in [CLIENT, BENCH] {
        let o = run(bin, &["--version"]);
        assert!(o.status.success(), "{bin} --version: {o:?}");
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!("{name} ")));
        let o = run(bin, &["--help"]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"),
            "{bin}"
        );
    }
}

#[test]
fn sfs_bench_speaks_csv_like_the_other_tools() {
    let o = run(
        BENCH,
        &[
            "--crypto-limit",
            "--seconds",
            "0.2",
            "--chunk",
            "4096",
            "--format",
            "csv",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "mode,cipher,chunk,seconds,mbytes_per_sec");
    assert!(
        lines[1].starts_with("crypto-limit,chacha20poly1305,4096,0.2,"),
        "{out}"
    );
    let o = run(
        BENCH,
        &[
            "--server",
            "127.0.0.1:1",
            "--clients",
            "0",
            "--user",
            "a",
            "--key-file",
            "k",
            "--file",
            "f",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_err(&o),
        "sfs-bench: error: --clients, --seconds and --chunk must be positive"
    );
}
