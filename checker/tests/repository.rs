//! The files around the code that people meet first: the dev container
//! and the CI workflow.

mod common;

use common::course_root;

#[test]
fn the_dev_container_is_valid_and_its_setup_script_exists() {
    let root = course_root();
    let text = std::fs::read_to_string(root.join(".devcontainer/devcontainer.json")).unwrap();
    // Plain JSON (no comments), so that any tool reads it.
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let image = config["image"].as_str().unwrap();
    assert!(
        image.starts_with("mcr.microsoft.com/devcontainers/rust:"),
        "{image}"
    );
    for key in ["postCreateCommand", "postStartCommand"] {
        let command = config[key].as_str().unwrap();
        let script = command.split_whitespace().nth(1).unwrap();
        assert!(
            root.join(script).is_file(),
            "{key} runs {script}, which is missing"
        );
    }
}

#[test]
fn ci_runs_the_course_checks_and_the_readme_shows_it() {
    let root = course_root();
    let Ok(workflow) = std::fs::read_to_string(root.join(".github/workflows/ci.yml")) else {
        common::skip(
            "ci_runs_the_course_checks_and_the_readme_shows_it",
            "this copy of the course has no CI workflow (a students' template)",
        );
        return;
    };
    assert!(workflow.contains("pull_request:") && workflow.contains("push:"));
    assert!(workflow.contains("run: .ci/run"), "{workflow}");
    assert!(root.join(".ci/run").is_file());
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("actions/workflows/ci.yml/badge.svg"),
        "the README shows the CI badge"
    );
}
