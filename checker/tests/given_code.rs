//! Given code is the course's: a submission is graded on the files the
//! student writes (`Lab::student`), whatever else it holds.

mod common;

use std::time::Duration;

use common::{course_root, lab, tree_with_lab01};

/// A submission with the reference library of lab 01 and every other file
/// edited: a `given.rs` that does not compile, a program that prints what
/// a scenario looks for, a manifest with a build script, and a new file.
/// If any of them were built, the lab would not compile (given.rs) or a
/// scenario would fail; it is graded as the untouched solution is: full
/// marks.
#[test]
fn edited_given_files_change_nothing() {
    if !common::has_solutions("edited_given_files_change_nothing") {
        return;
    }
    let lib = std::fs::read_to_string(course_root().join("solutions/01-fork/src/lib.rs")).unwrap();
    let tree = tree_with_lab01("given-code", &lib);
    let dir = tree.join("labs/01-fork");
    std::fs::write(
        dir.join("src/given.rs"),
        "compile_error!(\"an edited given.rs was built\");\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    std::fs::write(
        dir.join("src/bin/twice.rs"),
        "fn main() { println!(\"parent pid=1 child=2\"); }\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("[dependencies]", "build = \"build.rs\"\n\n[dependencies]"),
    )
    .unwrap();
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { panic!(\"a submission's build script ran\"); }\n",
    )
    .unwrap();

    let out = lab("given_code")
        .args(["check", "1", "--format", "json", "--tree"])
        .arg(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    let labs = report["labs"].as_array().expect("a list of labs");
    let lab01 = &labs[0];
    assert_eq!(lab01["id"], "01-fork", "{stdout}");
    assert_eq!(
        lab01["score"], lab01["max_score"],
        "graded as the reference is, full marks:\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}
