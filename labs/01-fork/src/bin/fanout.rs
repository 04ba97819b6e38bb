//! Fan-out and join: N workers that each take MS milliseconds, run at once.
//!
//! Usage: `fanout N MS`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::ensure;
use fork::given::{self, me};
use fork::{Job, run_parallel};

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::numbers::<u64>("fanout N MS")?;
        ensure!(args.len() == 2, "usage: fanout N MS");
        let (n, ms) = (args[0], args[1]);
        let jobs = (0..n)
            .map(|i| -> Job {
                Box::new(move || {
                    println!("worker {i} pid={} started", me());
                    std::thread::sleep(Duration::from_millis(ms));
                    0
                })
            })
            .collect();
        let began = Instant::now();
        let results = run_parallel(jobs)?;
        println!(
            "parent pid={}: {} workers joined in {} ms",
            me(),
            results.len(),
            began.elapsed().as_millis()
        );
        Ok(())
    })
}
