//! Snapshots of the reports, with times and run-time choices redacted.

mod common;

use common::lab;

#[test]
fn the_solution_passes_in_text() {
    if !common::has_solutions("the_solution_passes_in_text") {
        return;
    }
    let out = lab("report-solution")
        .args(["check", "1", "--solutions"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+\.\d\ds", "[TIME]");
    settings.bind(|| insta::assert_snapshot!("solution_text", text));
}

#[test]
fn the_starter_fails_in_text_and_json() {
    let Some(starters) = common::starters("the_starter_fails_in_text_and_json") else {
        return;
    };
    let out = lab("report-starter-text")
        .args(["check", "1", "--tree"])
        .arg(&starters)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+\.\d\ds", "[TIME]");
    settings.add_filter(r"\b\d lines", "[N] lines");
    // The report names the tree it checked: the committed starters here,
    // labs/ when a student runs it.
    settings.add_filter(&common::literal(&starters), "labs");
    settings.bind(|| insta::assert_snapshot!("starter_text", text));

    let out = lab("report-starter-json")
        .args(["check", "1", "--format", "json", "--tree"])
        .arg(&starters)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let lab = &json["labs"][0];
    assert_eq!(lab["id"], "01-fork");
    assert_eq!(lab["score"], 0);
    for s in lab["scenarios"].as_array().unwrap() {
        for key in [
            "name",
            "passed",
            "score",
            "max_score",
            "duration_ms",
            "message",
        ] {
            assert!(s.get(key).is_some(), "scenario without {key}: {s}");
        }
    }
    let mut json = json;
    // The tree checked: the committed starters here, labs/ for a student.
    assert_eq!(json["labs"][0]["tree"], starters.display().to_string());
    json["labs"][0]["tree"] = "labs".into();
    for s in json["labs"][0]["scenarios"].as_array_mut().unwrap() {
        s["duration_ms"] = "[MS]".into();
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b\d lines", "[N] lines");
    settings.bind(|| {
        insta::assert_snapshot!("starter_json", serde_json::to_string_pretty(&json).unwrap())
    });
}

#[test]
fn gradescope_results_have_one_test_per_scenario() {
    let Some(starters) = common::starters("gradescope_results_have_one_test_per_scenario") else {
        return;
    };
    let out = lab("report-gradescope")
        .args(["check", "1", "--format", "gradescope", "--tree"])
        .arg(&starters)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 8);
    for t in tests {
        assert_eq!(t["status"], "failed");
        assert_eq!(t["score"], 0);
        assert!(t["max_score"].as_u64().unwrap() > 0);
        assert_eq!(t["visibility"], "visible");
    }
    assert_eq!(json["score"], 0);
}
