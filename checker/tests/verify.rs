//! The course checks itself: every solution passes, every starter fails,
//! every fixture is caught by the scenario meant for it.

mod common;

#[test]
fn the_course_verifies() {
    let out = common::lab("verify")
        .arg("verify")
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
