//! `results-env` follows the project's command-line conventions (`edge::cli`), run as a
//! process: one error line with exit status 2 for a wrong command line, --version, EXAMPLES.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_results-env"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_bad_value_is_one_error_line_and_exit_2() {
    let o = run(&["--server-cpus", "3-1"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("results-env: error: invalid value '3-1' for '--server-cpus"),
        "{err}"
    );
    let o = run(&["--nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr)
        .starts_with("results-env: error: unexpected argument '--nosuch'"));
}

#[test]
fn version_and_examples() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("results-env "));
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"));
}
