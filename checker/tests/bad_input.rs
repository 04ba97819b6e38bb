//! Submissions that misbehave: each gets a clear verdict within its time
//! limit plus a few seconds, and leaves no process behind.

mod common;

use std::time::{Duration, Instant};

use common::{lab, processes_under, solution_lib_with, tree_with_lab01};

const START_BODY: &str = "        .context(\"flushing stdout before fork\")?;\n";

/// Checks `fork-returns-twice` on a tree whose `start` begins with `body`;
/// returns (exit code, stdout, seconds taken).
fn check(tree: &std::path::Path, test: &str) -> (i32, String, Duration) {
    let began = Instant::now();
    let out = lab(test)
        .args(["check", "1", "--scenario", "fork-returns-twice", "--tree"])
        .arg(tree)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text, began.elapsed())
}

#[test]
fn misbehaving_submissions_get_clear_verdicts() {
    // One tree, rewritten for each case: the dependencies build once.
    let cases: &[(&str, &str, &str)] = &[
        (
            "does-not-compile",
            "    this is not rust;\n",
            "did not compile",
        ),
        (
            "hangs",
            "    loop { std::thread::sleep(std::time::Duration::from_secs(3600)); }\n",
            "is sleeping in",
        ),
        (
            "fork-bomb",
            "    loop { let _ = unsafe { fork() }; std::thread::sleep(std::time::Duration::from_millis(1)); }\n",
            "runaway fork",
        ),
        (
            "floods",
            "    loop { print!(\"{}\", \"x\".repeat(4096)); }\n",
            "printed more than",
        ),
    ];
    for (name, body, says) in cases {
        if *name == "fork-bomb" && !common::fork_bombs_are_capped() {
            eprintln!(
                "skipping the fork bomb: running as root without a writable pids cgroup, nothing would cap it"
            );
            continue;
        }
        let lib = solution_lib_with(START_BODY, &format!("{START_BODY}{body}"));
        let tree = tree_with_lab01("bad-input", &lib);
        let (code, text, took) = check(&tree, name);
        assert_eq!(code, 1, "{name}: exit status\n{text}");
        assert!(
            text.contains(says),
            "{name}: the report should say {says:?}:\n{text}"
        );
        // The build may take a while; the scenario's limit is 10 s.
        assert!(took < Duration::from_secs(90), "{name}: took {took:?}");
        let left = processes_under(&common::course_root().join("target/lab"));
        assert!(left.is_empty(), "{name}: processes left behind: {left:?}");
    }
}
