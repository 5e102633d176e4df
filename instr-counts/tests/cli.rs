//! The command line of `instr-counts` run as a process: exit status and first stderr line.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_instr-counts");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn first_err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_output_path_is_checked_before_measuring() {
    // Checked before valgrind is even looked for: the same answer with or without it.
    let o = run(&["--output", "/nonexistent/counts.json"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_err(&o),
        "instr-counts: error: --output /nonexistent/counts.json: directory /nonexistent does not exist"
    );
    let o = run(&["--scale", "0"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_err(&o),
        "instr-counts: error: --scale must be a positive number"
    );
}

#[test]
fn an_unknown_operation_is_a_failure_with_one_error_line() {
    let o = run(&["op", "nosuch", "--iters", "1"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        first_err(&o).starts_with("instr-counts: error: "),
        "{}",
        first_err(&o)
    );
    assert!(first_err(&o).contains("nosuch"), "{}", first_err(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

#[test]
fn version_and_examples() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("instr-counts "));
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"));
}
