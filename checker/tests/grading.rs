//! Grading as an instructor does it: a directory of submissions with
//! `cargo lab grade`, and Gradescope's autograder run on its own layout.

mod common;

use std::path::Path;

use common::{course_root, lab};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A submission with lab 01 taken from `source`: a directory of labs
/// (`solutions/`, or the committed starters' `labs/`), over the course's
/// own lab 01 (solutions/ holds only the files the student writes).
fn submission(dir: &Path, source: &Path) -> std::path::PathBuf {
    copy_dir(
        &course_root().join("labs/01-fork"),
        &dir.join("labs/01-fork"),
    );
    copy_dir(&source.join("01-fork"), &dir.join("labs/01-fork"));
    dir.to_path_buf()
}

/// A submission that passes by the solution and also tries to cheat: its
/// own manifest with a build script, a rewritten program, an alias.
fn tampered(dir: &Path, marker: &Path) {
    let lab = submission(dir, &course_root().join("solutions")).join("labs/01-fork");
    let manifest = std::fs::read_to_string(lab.join("Cargo.toml")).unwrap();
    std::fs::write(
        lab.join("Cargo.toml"),
        manifest.replace("[dependencies]", "build = \"build.rs\"\n\n[dependencies]"),
    )
    .unwrap();
    std::fs::write(
        lab.join("build.rs"),
        format!(
            "fn main() {{ std::fs::write({:?}, \"ran\").unwrap(); }}\n",
            marker
        ),
    )
    .unwrap();
    std::fs::write(
        lab.join("src/bin/twice.rs"),
        "fn main() { println!(\"parent pid=1 child=2\"); }\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    std::fs::write(
        dir.join(".cargo/config.toml"),
        "[alias]\nlab = \"version\"\n",
    )
    .unwrap();
}

/// Lab 01's scenarios and points (checker/src/labs/fork/mod.rs): what a
/// submission of the reference lab 01 alone scores.
const LAB01_SCENARIOS: usize = 8;
const LAB01_POINTS: u64 = 15;

#[test]
fn grade_a_directory_of_submissions() {
    if !common::has_solutions("grade_a_directory_of_submissions") {
        return;
    }
    let Some(starters) = common::starters("grade_a_directory_of_submissions") else {
        return;
    };
    let solutions = course_root().join("solutions");
    let top = std::env::temp_dir().join(format!("lab-grade-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    let subs = top.join("submissions");
    let marker = top.join("build-script-ran");
    tampered(&subs.join("alice"), &marker);
    submission(&subs.join("bob"), &starters.join("labs"));
    let carol = submission(&subs.join("carol"), &solutions);
    let lib = carol.join("labs/01-fork/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text.replace("pub fn join(", "pub fn join(oops")).unwrap();
    std::fs::create_dir_all(subs.join("dave/not-the-course")).unwrap();

    let out = top.join("grades");
    let result = lab("grade")
        .arg("grade")
        .arg(&subs)
        .args(["--jobs", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("[4/4]"), "progress is shown: {stderr}");

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let row = |who: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{who},")))
            .unwrap_or_else(|| panic!("summary.csv has no row for {who}:\n{csv}\n{stderr}"))
            .to_string()
    };
    assert!(
        row("alice").starts_with(&format!("alice,{LAB01_POINTS},")),
        "the solution gets full marks for lab 01:\n{csv}"
    );
    assert!(row("bob").starts_with("bob,0,"), "{csv}");
    assert!(row("carol").starts_with("carol,0,"), "{csv}");
    assert!(row("dave").contains("not a checkout"), "{csv}");
    let carol_report = std::fs::read_to_string(out.join("carol.txt")).unwrap();
    assert!(
        carol_report.contains("did not compile") && carol_report.contains("error"),
        "{carol_report}"
    );
    assert!(!marker.exists(), "a submission's build script must not run");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["students"].as_array().unwrap().len(), 4);
    assert!(summary["isolation"].is_string());
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn gradescope_autograder_writes_results_json() {
    if !common::has_solutions("gradescope_autograder_writes_results_json") {
        return;
    }
    if !course_root().join("autograder").is_dir() {
        common::skip(
            "gradescope_autograder_writes_results_json",
            "this copy of the course has no autograder/ (a students' template)",
        );
        return;
    }
    let top = std::env::temp_dir().join(format!("lab-autograder-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    // Gradescope's layout: /autograder/{source,submission,results}.
    std::fs::create_dir_all(top.join("source")).unwrap();
    // Students often upload the lab directories without labs/ around them.
    copy_dir(
        &course_root().join("solutions/01-fork"),
        &top.join("submission/my-work/01-fork"),
    );
    let status = std::process::Command::new(course_root().join("autograder/run_autograder"))
        .env("AUTOGRADER_ROOT", &top)
        .env("LAB_BIN", assert_cmd::cargo::cargo_bin("lab"))
        .env(
            "LAB_TARGET_DIR",
            course_root().join("target/lab/autograder-test"),
        )
        .status()
        .unwrap();
    assert!(status.success());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(top.join("results/results.json")).unwrap())
            .unwrap();
    let tests = results["tests"].as_array().unwrap();
    let lab01: Vec<_> = tests
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("01-fork"))
        .collect();
    assert_eq!(
        lab01.len(),
        LAB01_SCENARIOS,
        "one test per scenario of lab 01"
    );
    assert!(lab01.iter().all(|t| t["status"] == "passed"), "{results:#}");
    let full: f64 = lab01.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
    assert_eq!(
        results["score"].as_f64(),
        Some(full),
        "only lab 01 was submitted, and it gets full marks"
    );
    for t in tests {
        for key in [
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
        ] {
            assert!(t.get(key).is_some(), "{key} missing in {t}");
        }
    }
    std::fs::remove_dir_all(&top).unwrap();
}
