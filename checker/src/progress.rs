//! What the student has done so far, remembered between runs in
//! `target/lab/progress.json`: the last result of each lab checked in the
//! student's own tree, and how many hints of each scenario were shown.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::report::LabResult;
use crate::stage::course_root;

/// `LAB_PROGRESS` overrides the place (the course's own tests use it).
fn path() -> PathBuf {
    match std::env::var_os("LAB_PROGRESS") {
        Some(p) => PathBuf::from(p),
        None => course_root().join("target/lab/progress.json"),
    }
}

/// The whole record; empty when missing or unreadable.
pub fn load() -> Map<String, Value> {
    std::fs::read_to_string(path())
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn save(all: &Map<String, Value>) {
    let p = path();
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Write then rename, so an interrupted write never loses the record.
    let tmp = p.with_extension("json.tmp");
    if std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&Value::Object(all.clone())).unwrap_or_default(),
    )
    .is_ok()
    {
        let _ = std::fs::rename(tmp, p);
    }
}

/// Holds an exclusive lock on the record while it lives: checkers run side
/// by side (`cargo lab check --all`), and each reads, changes and writes
/// the whole file; without the lock one would write over another's lab.
/// Without a lock (a read-only place), the record is changed all the same.
fn lock() -> Option<nix::fcntl::Flock<std::fs::File>> {
    let p = path().with_extension("json.lock");
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
}

/// Records the result of a check of the student's tree.
pub fn record(result: &LabResult) {
    let _lock = lock();
    let mut all = load();
    let entry = all.entry(result.lab.dir()).or_insert_with(|| json!({}));
    let hints = entry.get("hints").cloned().unwrap_or_else(|| json!({}));
    let mut passed: Vec<&str> = Vec::new();
    let mut failed: Vec<&str> = Vec::new();
    for s in &result.scenarios {
        if s.passed {
            passed.push(s.name)
        } else {
            failed.push(s.name)
        }
    }
    // A check of one scenario only updates that scenario.
    let keep = |key: &str, now: &[&str], other: &[&str]| -> Vec<String> {
        let mut names: Vec<String> = entry[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| !other.contains(&n.as_str()) && !now.contains(&n.as_str()));
        names.extend(now.iter().map(|s| s.to_string()));
        names
    };
    let passed_all = keep("passed", &passed, &failed);
    let failed_all = keep("failed", &failed, &passed);
    *entry = json!({ "passed": passed_all, "failed": failed_all, "hints": hints });
    save(&all);
}

/// Scenarios of `lab` recorded as passed.
pub fn passed(all: &Map<String, Value>, lab: &str) -> Option<Vec<String>> {
    all.get(lab)?["passed"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// Whether `lab` was ever checked.
pub fn checked(all: &Map<String, Value>, lab: &str) -> bool {
    all.get(lab).is_some_and(|e| e.get("passed").is_some())
}

/// How many hints of `scenario` were shown, then counts one more.
pub fn next_hint(lab: &str, scenario: &str) -> usize {
    let _lock = lock();
    let mut all = load();
    let entry = all.entry(lab.to_string()).or_insert_with(|| json!({}));
    if !entry.get("hints").is_some_and(Value::is_object) {
        entry["hints"] = json!({});
    }
    let shown = entry["hints"][scenario].as_u64().unwrap_or(0) as usize;
    entry["hints"][scenario] = json!(shown + 1);
    save(&all);
    shown
}
