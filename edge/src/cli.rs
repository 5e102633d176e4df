//! The conventions every program of the project follows on its command line, written once.
//!
//! * An error is one line on stderr, `<program>: error: MESSAGE`, the message being the
//!   error and its causes joined by `: ` (never anyhow's `Error: ... Caused by:` form).
//! * Exit status: 0 on success (also `--help` and `--version`), [`EXIT_FAILURE`] (1) when
//!   the work failed, [`EXIT_USAGE`] (2) when the command line is wrong: clap's own errors and
//!   every [`usage`] error a program returns from its checks.
//! * A closed stdout (`program | head -1`) ends the program quietly with status 0: output
//!   written with [`print_stdout`] reports it as [`StdoutClosed`], and [`parse`] installs a
//!   panic hook that turns the standard library's "failed printing to stdout: Broken pipe"
//!   panic into the same quiet exit.
//! * Output paths are checked before the work starts ([`check_output_path`]), so a typo in
//!   `--output` costs nothing instead of a whole benchmark run.
//!
//! A program's `main` is then two lines:
//!
//! ```no_run
//! # #[derive(clap::Parser)] struct Cli {}
//! # fn run(_: Cli) -> anyhow::Result<()> { Ok(()) }
//! fn main() -> std::process::ExitCode {
//!     let cli: Cli = edge::cli::parse("my-program");
//!     edge::cli::finish("my-program", run(cli))
//! }
//! ```

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// Exit status of a program whose work failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a program given a wrong command line.
pub const EXIT_USAGE: u8 = 2;

/// A command-line error found after parsing (a bad combination of flags, a value out of
/// range): the program exits with [`EXIT_USAGE`].
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with this message (see [`UsageError`]).
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Stdout was closed by its reader: the program stops quietly.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` to stdout and flushes it; a closed stdout is [`StdoutClosed`].
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(StdoutClosed)),
        r => r.context("writing to stdout"),
    }
}

/// Parses the command line of `program` (see the module documentation): a clap error is
/// printed as `<program>: error: ...` with clap's usage lines, and the process exits with
/// [`EXIT_USAGE`]; `--help` and `--version` print and exit 0.
pub fn parse<C: clap::Parser>(program: &str) -> C {
    quiet_broken_pipe();
    match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    std::process::exit(0);
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(i32::from(EXIT_USAGE));
                }
                _ => {
                    let text = e.render().to_string();
                    let text = text.strip_prefix("error: ").unwrap_or(&text);
                    eprint!("{program}: error: {text}");
                    std::process::exit(i32::from(EXIT_USAGE));
                }
            }
        }
    }
}

/// The exit status of `program` for the result of its work, printing the error line (see
/// the module documentation).
pub fn finish(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(report(program, &e)),
    }
}

/// Prints `e` as `<program>: error: ...` (nothing for [`StdoutClosed`]) and returns the exit
/// status it calls for.
pub fn report(program: &str, e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<StdoutClosed>()) {
        return 0;
    }
    eprintln!("{program}: error: {}", message(e));
    if e.chain().any(|c| c.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// The error and its causes joined by `: `, each said once (a cause whose text its
/// context already ends with is not repeated).
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Makes the standard library's panic on printing to a closed stdout (`println!` into
/// `| head`) end the process quietly with status 0; every other panic is reported as before.
pub fn quiet_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}

/// Checks, before any work, that `path` can be written later: its directory exists and a
/// file can be created in it (a probe file beside it is created and removed; `path` itself
/// is not touched). `what` names the option in the error, e.g. `--output`.
pub fn check_output_path(what: &str, path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(usage(format!(
            "{what} {}: is a directory, not a file",
            path.display()
        )));
    }
    if !dir.is_dir() {
        return Err(usage(format!(
            "{what} {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let probe = dir.join(format!(".{name}.probe{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            usage(format!(
                "{what} {}: cannot write there: {e}",
                path.display()
            ))
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once() {
        let inner = io::Error::new(io::ErrorKind::NotFound, "no such file or directory");
        let e = anyhow::Error::new(inner).context("server: no such file or directory");
        assert_eq!(message(&e), "server: no such file or directory");
        let e = anyhow::anyhow!("disk full").context("writing out.json");
        assert_eq!(message(&e), "writing out.json: disk full");
    }

    #[test]
    fn usage_errors_exit_2_and_failures_1() {
        assert_eq!(report("t", &usage("bad flag")), EXIT_USAGE);
        assert_eq!(report("t", &anyhow::anyhow!("failed")), EXIT_FAILURE);
        assert_eq!(report("t", &anyhow::Error::new(StdoutClosed)), 0);
        let wrapped = usage("bad").context("checking the command line");
        assert_eq!(report("t", &wrapped), EXIT_USAGE);
    }

    #[test]
    fn output_paths_are_checked_without_being_created() {
        let d = std::env::temp_dir().join(format!("edge-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ok = d.join("out.json");
        check_output_path("--out", &ok).unwrap();
        assert!(!ok.exists(), "the checked path itself was created");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "a probe was left"
        );
        let e = check_output_path("--out", &d.join("missing/out.json")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.is::<UsageError>());
        let e = check_output_path("--out", &d).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
