//! The shell's `ls -l | wc -l`, built with pipe, fork, dup2 and exec.
//!
//! Usage: `count ls -l DIR '|' wc -l` (any two commands around a `|`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use pipe::given;
use pipe::pipeline;

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args();
        let bar = args
            .iter()
            .position(|a| a == "|")
            .context("usage: count LEFT... '|' RIGHT...")?;
        let (left, right) = (&args[..bar], &args[bar + 1..]);
        if left.is_empty() || right.is_empty() {
            bail!("usage: count LEFT... '|' RIGHT...");
        }
        let (l, r) = pipeline(left, right)?;
        println!("left: {} {l}", left[0]);
        println!("right: {} {r}", right[0]);
        Ok(())
    })
}
