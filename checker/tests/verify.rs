//! The course checks itself: every solution passes, every starter fails,
//! every fixture is caught by the scenario meant for it.

mod common;

#[test]
fn the_course_verifies() {
    if !common::has_solutions("the_course_verifies") {
        return;
    }
    // The starters as committed: labs/ may hold a student's work.
    let Some(starters) = common::starters("the_course_verifies") else {
        return;
    };
    let out = common::lab("verify")
        .arg("verify")
        .arg("--starters")
        .arg(&starters)
        .assert()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lab verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("the course is sound"), "{text}");
}

#[test]
fn verify_without_solutions_is_a_plain_error() {
    let empty = std::env::temp_dir().join(format!("lab-no-solutions-{}", std::process::id()));
    std::fs::create_dir_all(empty.join("labs")).unwrap();
    common::lab("verify-no-solutions")
        .arg("verify")
        .env("LAB_COURSE_ROOT", &empty)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "`cargo lab verify` needs the reference solutions",
        ));
    std::fs::remove_dir_all(&empty).unwrap();
}
