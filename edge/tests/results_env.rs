//! `results-env` prints one env-schema object with the run parameters it is given.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_results-env"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn prints_the_schema_with_the_run_parameters() {
    let o = run(&[
        "--tool",
        "scripts/reproduce.sh",
        "--mode",
        "quick",
        "--workers",
        "4",
        "--server-cpus",
        "0-1",
        "--client-cpus",
        "2,3",
        "--cpu-split",
        "disjoint",
        "--oversubscribed",
        "false",
        "--scaling-workers",
        "1,2,4",
        "--sfs-clients",
        "16",
        "--sftp-clients",
        "4",
        "--nginx",
        "",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let env: edge::env::Env = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(env.schema, edge::env::SCHEMA);
    assert_eq!(env.tool, "scripts/reproduce.sh");
    assert_eq!(env.run.workers, Some(4));
    assert_eq!(env.run.server_cpus, Some(vec![0, 1]));
    assert_eq!(env.run.client_cpus, Some(vec![2, 3]));
    assert_eq!(env.run.cpu_split.as_deref(), Some("disjoint"));
    assert_eq!(env.run.oversubscribed, Some(false));
    assert_eq!(env.run.scaling_workers, Some(vec![1, 2, 4]));
    assert_eq!(
        (env.run.sfs_clients, env.run.sftp_clients),
        (Some(16), Some(4))
    );
    assert_eq!(env.run.nginx, None, "an empty version line is left out");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("nginx").is_none() && v.get("apache").is_none());
}

#[test]
fn refuses_a_bad_cpu_list() {
    let o = run(&["--server-cpus", "3-1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad CPU range"));
}
