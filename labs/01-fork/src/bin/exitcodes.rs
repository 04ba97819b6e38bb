//! A small result travels back in the exit status: each worker adds two
//! numbers and exits with the sum; the parent averages the sums.
//!
//! Usage: `exitcodes A B [A B]...` (then Ctrl-D to let the workers finish).

use std::process::ExitCode;

use anyhow::{bail, ensure};
use fork::given::{self, hold, me};
use fork::{Ending, Job, run_parallel};

// ANCHOR: collect
fn main() -> ExitCode {
    given::main_with(|| {
        let numbers = given::numbers::<i32>("exitcodes A B [A B]...")?;
        ensure!(numbers.len() % 2 == 0, "numbers come in pairs");
        let mut jobs: Vec<Job> = Vec::new();
        for pair in numbers.chunks(2) {
            let (a, b) = (pair[0], pair[1]);
            if !(0..=255).contains(&(a + b)) {
                bail!("{a} + {b} does not fit in an exit status (0 to 255)");
            }
            jobs.push(Box::new(move || {
                println!("worker pid={} adds {a} + {b}", me());
                hold();
                a + b
            }));
        }
        let mut sums = Vec::new();
        for (pid, ending) in run_parallel(jobs)? {
            println!("worker pid={pid} {ending}");
            if let Ending::Exited(sum) = ending {
                sums.push(sum);
            }
        }
        let total: i32 = sums.iter().sum();
        match sums.len() {
            0 => println!("no worker finished its sum"),
            n => println!("average of {n} sums: {:.2}", f64::from(total) / n as f64),
        }
        Ok(())
    })
}
// ANCHOR_END: collect
