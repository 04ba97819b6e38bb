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
