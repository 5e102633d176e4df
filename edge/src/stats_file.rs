//! The `--stats-json` document: written atomically, and N-copy children's documents summed
//! into one.
//!
//! A server writes one JSON object when it stops: its configuration, its own counters and
//! `runtime_stats`, the runtime's counters including per-handler time and steals. The N-copy
//! parent sums its children's objects with [`merge_children`]: counters add up, per-worker
//! arrays are concatenated (one entry per child worker), per-handler entries are matched by
//! `name`, and derived figures (averages, percentages, rates) are recomputed from the summed
//! counters where the inputs allow it and averaged otherwise. The children's own documents
//! are kept under `children`.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

/// Writes `doc` to `path` atomically (a temporary file beside it, then a rename), so a
/// reader never sees half a document.
pub fn write_json(path: &Path, doc: &impl serde::Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(doc).context("encoding the statistics")?;
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Keys whose values are averages or ratios, not counters: averaged over children, never
/// summed.
fn is_derived(key: &str) -> bool {
    key.contains("avg")
        || key.contains("pct")
        || key.contains("per_sec")
        || key.contains("estimate")
        || key.starts_with("profiled")
}

/// Keys that are configuration, identical in every child: kept, never summed.
fn is_config(key: &str) -> bool {
    matches!(
        key,
        "penalty" | "cost_annotation" | "name" | "queue" | "stealing" | "runtime"
    )
}

/// Sums `b` into `a` (see the module documentation for the rules).
fn add(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let sum = match (x.as_u64(), y.as_u64()) {
                (Some(p), Some(q)) => Value::from(p.saturating_add(q)),
                _ => serde_json::Number::from_f64(
                    x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0),
                )
                .map_or(Value::Null, Value::Number),
            };
            *x = match sum {
                Value::Number(n) => n,
                _ => x.clone(),
            };
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in y {
                match x.get_mut(k) {
                    Some(_) if is_config(k) => {}
                    Some(slot) => add(slot, v),
                    None => {
                        x.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let named = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            if y.iter().all(|v| named(v).is_some()) && x.iter().all(|v| named(v).is_some()) {
                for v in y {
                    let n = named(v);
                    match x.iter_mut().find(|e| named(e) == n) {
                        Some(e) => add(e, v),
                        None => x.push(v.clone()),
                    }
                }
            } else {
                x.extend(y.iter().cloned());
            }
        }
        (a @ Value::Null, b) => *a = b.clone(),
        _ => {} // strings, booleans: keep the first
    }
}

/// Divides every derived number (see [`is_derived`]) by `n`, recursively.
fn average_derived(v: &mut Value, n: f64) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_derived(k) {
                    if let Some(f) = x.as_f64() {
                        *x = serde_json::Number::from_f64(f / n).map_or(Value::Null, Value::Number);
                    }
                } else {
                    average_derived(x, n);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| average_derived(x, n)),
        _ => {}
    }
}

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}

fn set_ratio(
    m: &mut Map<String, Value>,
    key: &str,
    num_: Option<f64>,
    den: Option<f64>,
    scale: f64,
) {
    if let (Some(a), Some(b)) = (num_, den) {
        let r = if b > 0.0 { scale * a / b } else { 0.0 };
        m.insert(
            key.to_string(),
            serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number),
        );
    }
}

/// Recomputes the runtime's derived figures from summed counters, where present.
fn recompute(rs: &mut Value) {
    let Some(m) = rs.as_object_mut() else { return };
    if let Some(total) = m.get("total").and_then(Value::as_object).cloned() {
        let busy_idle = num(&total, "busy_cycles")
            .zip(num(&total, "idle_cycles"))
            .map(|(a, b)| a + b);
        set_ratio(
            m,
            "locking_time_pct",
            num(&total, "lock_cycles"),
            busy_idle,
            100.0,
        );
        set_ratio(
            m,
            "steal_cost_cycles_avg",
            num(&total, "steal_cost_cycles"),
            num(&total, "steals"),
            1.0,
        );
        set_ratio(
            m,
            "stolen_time_cycles_avg",
            num(&total, "stolen_time_cycles"),
            num(&total, "steals"),
            1.0,
        );
    }
    if let Some(Value::Array(hs)) = m.get_mut("handlers") {
        for h in hs.iter_mut().filter_map(Value::as_object_mut) {
            let (c, e) = (num(h, "cycles"), num(h, "events"));
            set_ratio(h, "avg_cycles", c, e, 1.0);
        }
    }
}

/// Sums the children's stats documents into the N-copy parent's document.
pub fn merge_children(children: &[Value]) -> Value {
    let mut merged = Value::Object(Map::new());
    for c in children {
        let mut c = c.clone();
        if let Some(m) = c.as_object_mut() {
            // Per-child configuration that must not be summed.
            for k in [
                "mode",
                "workers",
                "max_clients",
                "listen",
                "pid",
                "elapsed_secs",
            ] {
                m.remove(k);
            }
        }
        add(&mut merged, &c);
    }
    if !children.is_empty() {
        average_derived(&mut merged, children.len() as f64);
    }
    if let Some(rs) = merged.get_mut("runtime_stats") {
        recompute(rs);
    }
    if let Some(m) = merged.as_object_mut() {
        m.insert("processes".into(), Value::from(children.len()));
        m.insert("children".into(), Value::Array(children.to_vec()));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn child(requests: u64, busy: u64, lock: u64, read_events: u64, read_cycles: u64) -> Value {
        json!({
            "mode": "colored", "workers": 1, "elapsed_secs": 2.0,
            "requests_served": requests,
            "errors": {"not_found_404": 1, "bad_request_400": 0},
            "runtime_stats": {
                "queue": "mely", "stealing": "off",
                "workers": [{"events": requests, "busy_cycles": busy}],
                "total": {"events": requests, "busy_cycles": busy, "idle_cycles": 0, "lock_cycles": lock,
                          "steals": 0, "steal_cost_cycles": 0, "stolen_time_cycles": 0},
                "locking_time_pct": 100.0 * lock as f64 / busy as f64,
                "steal_cost_cycles_avg": 0.0, "stolen_time_cycles_avg": 0.0,
                "handlers": [{"name": "ReadRequest", "events": read_events, "cycles": read_cycles,
                              "avg_cycles": read_cycles as f64 / read_events as f64, "penalty": 1,
                              "profiled_cycles": 100}],
                "cycles_per_sec": 2.0e9
            }
        })
    }

    #[test]
    fn written_atomically() {
        let dir = std::env::temp_dir().join(format!("edge-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.json");
        write_json(&p, &json!({"a": 1})).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["a"], 1);
        assert!(!dir.join("s.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sums_counters_and_recomputes_ratios() {
        let m = merge_children(&[
            child(100, 1000, 100, 10, 1000),
            child(300, 3000, 100, 30, 6000),
        ]);
        assert_eq!(m["requests_served"], 400);
        assert_eq!(m["errors"]["not_found_404"], 2);
        assert_eq!(m["processes"], 2);
        assert_eq!(m["children"].as_array().unwrap().len(), 2);
        let rs = &m["runtime_stats"];
        assert_eq!(rs["workers"].as_array().unwrap().len(), 2);
        assert_eq!(rs["total"]["events"], 400);
        assert_eq!(rs["queue"], "mely");
        assert!((rs["locking_time_pct"].as_f64().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(rs["handlers"].as_array().unwrap().len(), 1);
        assert_eq!(rs["handlers"][0]["events"], 40);
        assert_eq!(rs["handlers"][0]["penalty"], 1);
        assert!((rs["handlers"][0]["profiled_cycles"].as_f64().unwrap() - 100.0).abs() < 1e-9);
        assert!((rs["handlers"][0]["avg_cycles"].as_f64().unwrap() - 175.0).abs() < 1e-9);
        assert!((rs["cycles_per_sec"].as_f64().unwrap() - 2.0e9).abs() < 1.0);
        assert!(
            m.get("elapsed_secs").is_none(),
            "the parent measures its own"
        );
        assert!(m.get("workers").is_none());
    }
}
