//! The runtime's module layering, checked on its sources: the layer table in the crate doc
//! (`src/lib.rs`, section "Layers") is the declaration; every `crate::` path (and `super::`
//! path) in a module names a module it depends on, and none may name a module of a higher
//! layer. The module graph must also be free of cycles, inside a layer as well.
//!
//! `shape` prints the crate's shape (files, lines, largest files, import edges, cycles) for any
//! source tree: `RUNTIME_SRC=/path/to/runtime/src cargo test -p colored-runtime --test layers
//! -- --nocapture shape` (without `RUNTIME_SRC`, this crate's).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source tree to read: `RUNTIME_SRC` or this crate's `src`.
fn src_dir() -> PathBuf {
    match std::env::var_os("RUNTIME_SRC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every `.rs` file under `dir`, as (module path, text). `a/b.rs` and `a/b/mod.rs` are module
/// `a::b`; `lib.rs` is `lib`.
fn modules(dir: &Path) -> Vec<(String, PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = parts.pop().expect("a file name");
            let stem = last.trim_end_matches(".rs");
            if stem != "mod" {
                parts.push(stem.to_string());
            }
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (parts.join("::"), p, text)
        })
        .collect()
}

/// The code of `text` without comments (line comments and doc comments; block comments are not
/// used in this crate).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `code` names after `crate::` (or `$crate::`): each as its segments up to the first
/// non-identifier, with `crate::{a, b::c}` groups expanded one level.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top(&group[..end]) {
                out.push(segments(item.trim()));
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

/// The index of the `}` closing a group whose `{` was just before `s`.
fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

/// `s` split at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The leading `a::b::c` identifiers of `s`.
fn segments(s: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segs.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    segs
}

/// What each module depends on inside the crate: the modules its `crate::` and `super::` paths
/// name (items re-exported at the root are followed to the module they come from; a module's
/// own submodules and a test module's parent are the module itself).
fn graph(mods: &[(String, PathBuf, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<String> = mods.iter().map(|m| m.0.clone()).collect();
    let lib = code(
        &mods
            .iter()
            .find(|m| m.0 == "lib")
            .expect("lib.rs in the source tree")
            .2,
    );
    // `pub use module::{A, B};` at the root: item -> module.
    let mut reexport: BTreeMap<String, String> = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit("::").next().unwrap_or(item).to_string();
            reexport.insert(name, module.to_string());
        }
    }
    // The module a path of segments names: the longest known module prefix.
    let resolve = |segs: &[String]| -> Option<String> {
        for k in (1..=segs.len()).rev() {
            let m = segs[..k].join("::");
            if names.contains(&m) {
                return Some(m);
            }
        }
        segs.first().and_then(|s| reexport.get(s).cloned())
    };
    let owner = |m: &str| -> String {
        // A file that is no layer's own module (a test module's file, `stepped/tests.rs`) belongs
        // to its parent.
        let mut m = m.to_string();
        while m.ends_with("::tests") {
            m.truncate(m.len() - "::tests".len());
        }
        m
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, _, text) in mods {
        let me = owner(name);
        let c = code(text);
        let mut deps: Vec<String> = crate_paths(&c)
            .iter()
            .filter_map(|segs| resolve(segs))
            .collect();
        if c.contains("super::") {
            if let Some((parent, _)) = name.rsplit_once("::") {
                deps.push(parent.to_string());
            }
        }
        let entry = g.entry(me.clone()).or_default();
        for d in deps {
            let d = owner(&d);
            if d != me && !d.starts_with(&format!("{me}::")) && !me.starts_with(&format!("{d}::")) {
                entry.insert(d);
            }
        }
    }
    g
}

/// The module cycles of `g` (strongly connected sets of two or more modules), by Tarjan's
/// algorithm.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> T<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[w].min(self.low[v]);
                    self.low.insert(v, l);
                } else if self.on.contains(w) {
                    let l = self.index[w].min(self.low[v]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// The layer table of the crate doc: rows `//! | N name | `m1`, `m2` | ... |`, as module ->
/// (layer number, layer name).
fn layer_table(lib: &str) -> BTreeMap<String, (usize, String)> {
    let mut table = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.trim().strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 2 {
            continue;
        }
        let Some((num, name)) = cells[0].split_once(' ') else {
            continue;
        };
        let Ok(layer) = num.parse::<usize>() else {
            continue;
        };
        for m in cells[1].split(',') {
            let m = m.trim().trim_matches('`');
            if !m.is_empty() {
                table.insert(m.to_string(), (layer, name.trim().to_string()));
            }
        }
    }
    table
}

#[test]
fn no_module_imports_a_higher_layer_and_there_is_no_cycle() {
    let dir = src_dir();
    let mods = modules(&dir);
    let lib = &mods.iter().find(|m| m.0 == "lib").expect("lib.rs").2;
    let table = layer_table(lib);
    assert!(
        table.len() > 10,
        "the layer table in {}/lib.rs was not found or is nearly empty: {table:?}",
        dir.display()
    );
    let g = graph(&mods);
    let mut wrong = Vec::new();
    for m in g.keys() {
        if !table.contains_key(m) {
            wrong.push(format!(
                "module `{m}` is in no layer of the table in lib.rs: add it"
            ));
        }
    }
    for (m, deps) in &g {
        let Some((lm, nm)) = table.get(m) else {
            continue;
        };
        for d in deps {
            let Some((ld, nd)) = table.get(d) else {
                continue;
            };
            if ld > lm {
                wrong.push(format!(
                    "`{m}` (layer {lm}, {nm}) imports `{d}` of a higher layer ({ld}, {nd})"
                ));
            }
        }
    }
    for c in cycles(&g) {
        wrong.push(format!("import cycle: {}", c.join(", ")));
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

/// The checker itself catches what it must: a higher-layer import, a cycle, a module missing
/// from the table (on a made-up tree).
#[test]
fn the_checker_sees_cycles_and_groups() {
    let mods: Vec<(String, PathBuf, String)> = [
        ("lib", "pub use d::Thing;\n"),
        ("a", "use crate::{b::X, c};\n// use crate::d;\n"),
        ("b", "fn f() { crate::a::g() }\n"),
        ("c", "use crate::Thing;\n"),
        ("d", ""),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), PathBuf::from(n), t.to_string()))
    .collect();
    let g = graph(&mods);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(g["a"], set(&["b", "c"]), "a comment is no import");
    assert_eq!(g["c"], set(&["d"]), "a root re-export leads to its module");
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    let table = layer_table("//! | 0 base | `b`, `c` | x |\n//! | 1 top | `a` | y |\n");
    assert_eq!(table["c"], (0, "base".to_string()));
    assert_eq!(table["a"], (1, "top".to_string()));
}

/// Prints the shape of the source tree (see the module doc); asserts only that it was read.
#[test]
fn shape() {
    let dir = src_dir();
    let mods = modules(&dir);
    assert!(!mods.is_empty(), "no sources under {}", dir.display());
    let mut sizes: Vec<(usize, String)> = mods
        .iter()
        .map(|(_, p, t)| {
            let rel = p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            (t.lines().count(), rel)
        })
        .collect();
    sizes.sort_by(|a, b| b.cmp(a));
    let total: usize = sizes.iter().map(|s| s.0).sum();
    let g = graph(&mods);
    let edges: usize = g.values().map(BTreeSet::len).sum();
    let cyc = cycles(&g);
    println!("shape of {}", dir.display());
    println!("files: {}, lines: {total}", sizes.len());
    let largest: Vec<String> = sizes
        .iter()
        .take(5)
        .map(|(n, p)| format!("{p} {n}"))
        .collect();
    println!("largest: {}", largest.join(", "));
    println!("module imports (edges): {edges}");
    println!(
        "cycles: {}{}",
        cyc.len(),
        cyc.iter()
            .map(|c| format!("\n  {} modules: {}", c.len(), c.join(", ")))
            .collect::<String>()
    );
}
