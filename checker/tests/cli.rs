//! The command line as a user meets it: exit statuses and messages.

mod common;

use common::lab;
use predicates::prelude::*;

#[test]
fn help_lists_the_commands() {
    lab("help").arg("--help").assert().success().stdout(
        predicate::str::contains("cargo lab check").and(predicate::str::contains("verify")),
    );
}

#[test]
fn an_unknown_lab_exits_2_and_lists_the_labs() {
    lab("unknown")
        .args(["check", "sockets-and-stuff"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("there is no lab \"sockets-and-stuff\"")
                .and(predicate::str::contains("01-fork")),
        );
}

#[test]
fn a_near_miss_gets_a_did_you_mean() {
    let out = lab("did-you-mean-lab")
        .args(["check", "forks"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Did you mean `fork`?"), "{text}");
    // The list lines up: the titles after 01-fork and after the longest
    // name, 04-nonblocking-select, start in the same column.
    let title_column = |id: &str| {
        let line = text.lines().find(|l| l.contains(id)).unwrap();
        let after = line.find(id).unwrap() + id.len();
        after + line[after..].find(|c: char| c != ' ').unwrap()
    };
    assert_eq!(
        title_column("01-fork"),
        title_column("04-nonblocking-select"),
        "{text}"
    );
    lab("did-you-mean-command")
        .args(["chek", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Did you mean `cargo lab check`?"));
}

#[test]
fn unknown_commands_and_formats_exit_2() {
    lab("unknown-command")
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown command"));
    lab("unknown-format")
        .args(["check", "1", "--format", "xml"])
        .assert()
        .code(2);
    lab("no-lab")
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("which lab?"));
    lab("no-scenario")
        .args(["check", "1", "--scenario", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("fork-returns-twice"));
}

#[test]
fn a_tree_that_is_not_a_checkout_exits_2() {
    lab("bad-tree")
        .args(["check", "1", "--tree", "/nonexistent/place"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot open the tree"));
}

#[test]
fn the_overview_shows_every_lab_and_what_to_do_next() {
    lab("overview").assert().success().stdout(
        predicate::str::contains("01-fork").and(predicate::str::contains("Next: lab 01-fork")),
    );
}

#[test]
fn hints_come_one_step_at_a_time() {
    let first = lab("hints")
        .args(["hint", "1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let first = String::from_utf8(first).unwrap();
    assert!(first.contains("Hint 1 of"), "{first}");
}

#[test]
fn dev_writes_the_solutions_workspace_from_labs_and_solutions() {
    if !common::has_solutions("dev_writes_the_solutions_workspace_from_labs_and_solutions") {
        return;
    }
    lab("dev").arg("dev").assert().success();
    let root = common::course_root();
    let ws = root.join("target/solutions");
    let read = |p: std::path::PathBuf| {
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert!(read(ws.join("Cargo.toml")).starts_with(b"# Written by `cargo lab dev`"));
    for (file, from) in [
        ("Cargo.toml", "labs"),
        ("src/given.rs", "labs"),
        ("src/bin/mux.rs", "labs"),
        ("src/lib.rs", "solutions"),
        ("src/poll.rs", "solutions"),
    ] {
        assert_eq!(
            read(ws.join("04-nonblocking-select").join(file)),
            read(root.join(from).join("04-nonblocking-select").join(file)),
            "target/solutions/04-nonblocking-select/{file} is {from}'s"
        );
    }
}
