//! The real pipeline: this package's binary measured under valgrind's callgrind. Counts are
//! deterministic for a deterministic body, so two measurements agree closely, and a body that
//! does twice the work per operation counts about twice the instructions.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_instr-counts");

fn valgrind() -> Option<std::path::PathBuf> {
    match instr_counts::callgrind::find_valgrind() {
        Ok(v) => Some(v),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{e:#} (scripts/test.sh installs valgrind)")
        }
        Err(e) => {
            eprintln!("skipped: {e:#}");
            None
        }
    }
}

#[test]
fn counts_are_stable_and_scale_with_the_work() {
    let Some(vg) = valgrind() else { return };
    let ops = ["http-parse".to_string(), "sfs-seal-open-64".to_string()];
    let a = instr_counts::measure(&vg, Path::new(BIN), &ops, 0.2).expect("measure");
    let b = instr_counts::measure(&vg, Path::new(BIN), &ops, 0.4).expect("measure");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.op, y.op);
        assert!(x.instructions > 100.0, "{x:?}");
        let rel = (x.instructions - y.instructions).abs() / x.instructions;
        assert!(
            rel < 0.01,
            "{} counted {} then {}",
            x.op,
            x.instructions,
            y.instructions
        );
    }
    // The two operations measure different work: sealing and opening a frame (ring's
    // ChaCha20-Poly1305, about 3,000 instructions for 64 bytes) costs more than parsing a
    // request line (about 1,600).
    assert!(a[1].instructions > 1.2 * a[0].instructions, "{a:?}");
}

#[test]
fn the_json_has_one_object_per_operation_and_the_derived_steal() {
    let Some(_) = valgrind() else { return };
    let out = std::env::temp_dir().join(format!("instr-counts-test-{}.json", std::process::id()));
    let o = Command::new(BIN)
        .args([
            "--ops",
            "mely-steal-and-place,mely-place-twice",
            "--scale",
            "0.1",
        ])
        .arg("--json-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<instr_counts::CountRecord> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let ops: Vec<&str> = v.iter().map(|x| x.op.as_str()).collect();
    assert_eq!(
        ops,
        ["mely-steal-and-place", "mely-place-twice", "mely-steal"]
    );
    assert!(v
        .iter()
        .all(|x| x.tool == "callgrind" && x.valgrind.starts_with("valgrind")));
    assert_eq!(
        v[2].iters, 0,
        "the derived steal ran no iterations of its own"
    );
    let steal = v[2].instructions_per_op;
    assert!(steal > 0.0 && steal < v[0].instructions_per_op);
    std::fs::remove_file(out).ok();
}
