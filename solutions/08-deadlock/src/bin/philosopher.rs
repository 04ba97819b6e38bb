//! One dining philosopher, a process of its own.
//!
//! Usage: `philosopher [--gate] SEAT N MEALS [THINK_MS EAT_MS SEED]`
//!
//! Philosopher SEAT of N shares fork SEAT (on the left) and fork SEAT+1
//! (on the right, fork 0 for the last one) with the neighbours. Start N of
//! them in the same directory:
//! `for i in 0 1 2 3 4; do philosopher $i 5 3 20 20 $i & done; wait`

use std::process::ExitCode;

use anyhow::ensure;
use deadlock::dine;
use deadlock::given::{self, FileLock, Pace, report};

const USAGE: &str = "philosopher [--gate] SEAT N MEALS [THINK_MS EAT_MS SEED]";

fn main() -> ExitCode {
    given::main_with(|| {
        let opts = given::options(USAGE)?;
        let n: Vec<u64> = opts
            .args
            .iter()
            .map(|a| given::number(a, USAGE))
            .collect::<anyhow::Result<_>>()?;
        ensure!(n.len() == 3 || n.len() == 6, "usage: {USAGE}");
        let (seat, count, meals) = (n[0] as u32, n[1] as u32, n[2] as u32);
        ensure!(
            count >= 2 && seat < count,
            "SEAT must be below N, and N at least 2"
        );
        let (think, eat, seed) = if n.len() == 6 {
            (n[3], n[4], n[5])
        } else {
            (0, 0, 0)
        };
        // ANCHOR: forks
        let right_seat = (seat + 1) % count;
        let left = FileLock::new(format!("fork-{seat}"), seat);
        let right = FileLock::new(format!("fork-{right_seat}"), right_seat);
        // ANCHOR_END: forks
        let mut pace = Pace::new(think, eat, seed);
        dine(seat as usize, &left, &right, meals, &mut pace)?;
        report("done");
        Ok(())
    })
}
