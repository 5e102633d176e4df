//! Exported traces validate against `schema/trace-event.schema.json` with an independent
//! validator (Python's `jsonschema`), and corrupted ones do not.

mod common;

use colored_trace::export::write_file;
use colored_trace::Bound;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Validates each instance file given after the schema; prints one line per file
/// (`valid PATH` or `invalid PATH: first error`).
const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        print("invalid %s: %s at %s" % (path, e.message[:200], list(e.absolute_path)))
    else:
        print("valid %s" % path)
"#;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

fn has_jsonschema() -> bool {
    Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True if Python's `jsonschema` is there, installing it with pip if it is not. Under `CI` a
/// validator that cannot be had fails the test; elsewhere the caller skips.
fn validator() -> bool {
    if has_jsonschema() {
        return true;
    }
    let installed = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if installed && has_jsonschema() {
        return true;
    }
    assert!(
        !ci(),
        "python3 with the jsonschema package is needed (pip install jsonschema)"
    );
    println!(
        "SKIPPED: python3 with the jsonschema package is missing and pip could not install it"
    );
    false
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/trace-event.schema.json")
}

/// The validator's verdict on each file, in order.
fn validate(files: &[PathBuf]) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema())
        .args(files)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// A change that makes a valid trace invalid.
type Corruption = Box<dyn Fn(&mut Value)>;

fn write_value(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

#[test]
fn exported_traces_match_the_schema_and_corrupted_ones_do_not() {
    if !validator() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("colored-trace-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ring = dir.join("ring.json");
    write_file(&common::full_sample(), &ring).unwrap();
    let window = dir.join("window.json");
    let mut sim = common::sample(Bound::Window {
        from: 4_000,
        len: 10_000,
        capacity: 1024,
    });
    sim.meta.simulated = true;
    sim.meta.fidelity = "paper".into();
    sim.meta.counters = None;
    write_file(&sim, &window).unwrap();
    let good: Value = serde_json::from_slice(&std::fs::read(&ring).unwrap()).unwrap();
    // Corruptions: a run without its duration, a run without a color, an unknown phase, a
    // flow end not bound to its enclosing slice, otherData without the conversion rate.
    let mut bad = Vec::new();
    let first_run = good["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["cat"] == "run")
        .unwrap();
    let flow_end = good["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["ph"] == "f")
        .unwrap();
    let corruptions: [(&str, Corruption); 5] = [
        (
            "no-dur",
            Box::new(move |v| {
                v["traceEvents"][first_run]
                    .as_object_mut()
                    .unwrap()
                    .remove("dur");
            }),
        ),
        (
            "no-color",
            Box::new(move |v| v["traceEvents"][first_run]["args"] = json!({"seq": 1})),
        ),
        (
            "bad-ph",
            Box::new(move |v| v["traceEvents"][first_run]["ph"] = json!("Q")),
        ),
        (
            "flow-bp",
            Box::new(move |v| v["traceEvents"][flow_end]["bp"] = json!("n")),
        ),
        (
            "no-rate",
            Box::new(|v| {
                v["otherData"]
                    .as_object_mut()
                    .unwrap()
                    .remove("cycles_per_us");
            }),
        ),
    ];
    for (name, corrupt) in &corruptions {
        let mut v = good.clone();
        corrupt(&mut v);
        let p = dir.join(format!("{name}.json"));
        write_value(&p, &v);
        bad.push(p);
    }
    let mut files = vec![ring.clone(), window.clone()];
    files.extend(bad.iter().cloned());
    let verdicts = validate(&files);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(verdicts.len(), files.len(), "{verdicts:#?}");
    for (f, v) in files.iter().zip(&verdicts) {
        let expect_valid = *f == ring || *f == window;
        let is_valid = v.starts_with("valid ");
        assert_eq!(is_valid, expect_valid, "{v}");
    }
}
