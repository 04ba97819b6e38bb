//! `cargo lab template`: the repository an instructor hands out holds no
//! reference code, and the checker works in it as in the course.

mod common;

use std::path::{Path, PathBuf};

use common::{course_root, lab};

/// Every file under `dir` (not .git, not target), relative to it.
fn files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir.join(rel)).unwrap().flatten() {
        let rel = rel.join(e.file_name());
        if rel == Path::new(".git") || rel == Path::new("target") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            files(dir, &rel, out);
        } else {
            out.push(rel);
        }
    }
}

/// Lines of the reference solutions that no starter and no given code
/// has: the code a student writes. Short lines (`Ok(())`, `}`) say nothing
/// and are left out.
fn reference_lines(starters: &Path) -> Vec<(String, String)> {
    let solutions = course_root().join("solutions");
    let given =
        |f: &Path| f.components().any(|c| c.as_os_str() == "bin") || f.ends_with("given.rs");
    let mut common = std::collections::HashSet::new();
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    files(starters, Path::new(""), &mut theirs);
    files(&solutions, Path::new(""), &mut ours);
    for (dir, f) in theirs.iter().map(|f| (starters, f)).chain(
        ours.iter()
            .filter(|f| given(f))
            .map(|f| (solutions.as_path(), f)),
    ) {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        common.extend(text.lines().map(|l| l.trim().to_string()));
    }
    let mut lines = Vec::new();
    for f in ours {
        let rust = f.extension().is_some_and(|x| x == "rs");
        if !rust || given(&f) || f.starts_with("target") {
            continue;
        }
        let text = std::fs::read_to_string(solutions.join(&f)).unwrap();
        for line in text.lines().map(str::trim) {
            if line.len() >= 30 && !common.contains(line) && !line.starts_with("// ANCHOR") {
                lines.push((format!("solutions/{}", f.display()), line.to_string()));
            }
        }
    }
    lines
}

#[test]
fn the_template_holds_no_reference_code_and_its_checker_works() {
    if !common::has_solutions("the_template_holds_no_reference_code_and_its_checker_works") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lab-template-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = lab("template").arg("template").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "cargo lab template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What it leaves out, and what it adds.
    for gone in [
        "solutions",
        "checker/fixtures",
        "autograder",
        ".ci",
        "CONTRIBUTING.md",
    ] {
        assert!(!dir.join(gone).exists(), "the template has {gone}");
    }
    let classroom = lab("classroom").arg("classroom").output().unwrap().stdout;
    assert_eq!(
        std::fs::read(dir.join(".github/workflows/classroom.yml")).unwrap(),
        classroom,
        "the Classroom workflow, as `cargo lab classroom` prints it"
    );
    let workflows: Vec<_> = std::fs::read_dir(dir.join(".github/workflows"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        workflows,
        ["classroom.yml"],
        "the course's own CI stays out"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("Your copy of the course"), "{readme}");
    let book_toml = std::fs::read_to_string(dir.join("book/book.toml")).unwrap();
    if book_toml.contains("[preprocessor.edition]") {
        assert!(book_toml.contains("student = true"), "{book_toml}");
    }

    // No file brings in or holds the reference code.
    let mut all = Vec::new();
    files(&dir, Path::new(""), &mut all);
    let reference = reference_lines(&dir.join("labs"));
    assert!(
        reference.len() > 100,
        "the reference code is found: {}",
        reference.len()
    );
    let mut leaks = Vec::new();
    for f in &all {
        let Ok(text) = std::fs::read_to_string(dir.join(f)) else {
            continue;
        };
        let here: std::collections::HashSet<&str> = text.lines().map(str::trim).collect();
        for (n, line) in text.lines().enumerate() {
            let markdown = f.extension().is_some_and(|x| x == "md");
            if markdown && line.contains("{{#include") && line.contains("solutions/") {
                leaks.push(format!("{}:{}: includes {line}", f.display(), n + 1));
            }
        }
        // The checker is the course's grader and ships whole; it shares
        // idioms with the solutions (`Err(Errno::EINTR) => continue,`),
        // not their code. Everything else holds no line of it.
        if f.starts_with("checker") {
            continue;
        }
        for (from, line) in &reference {
            if here.contains(line.as_str()) {
                leaks.push(format!("{} has a line of {from}: {line}", f.display()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "reference code in the template:\n{}",
        leaks.join("\n")
    );

    // The checker in it: every lab builds and fails, as an untouched
    // starter should; verify says plainly that it needs the solutions.
    let checked = lab("template-check")
        .args(["check", "--all", "--format", "json"])
        .env("LAB_COURSE_ROOT", &dir)
        // The labs' dependencies, built once for every run of this test.
        .env(
            "LAB_TARGET_DIR",
            course_root().join("target/lab/template-test"),
        )
        .output()
        .unwrap();
    assert_eq!(
        checked.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    let labs = json["labs"].as_array().unwrap();
    assert_eq!(labs.len(), 12);
    for l in labs {
        assert!(l["build_error"].is_null(), "{l}");
        for s in l["scenarios"].as_array().unwrap() {
            assert_eq!(s["passed"], false, "{} passes as a starter: {s}", l["id"]);
        }
    }
    lab("template-verify")
        .arg("verify")
        .env("LAB_COURSE_ROOT", &dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("needs the reference solutions"));
    std::fs::remove_dir_all(&dir).unwrap();
}
