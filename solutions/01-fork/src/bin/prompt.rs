//! stdout's buffer is memory too: text not yet written when fork runs is
//! copied into the child, and both processes print it.
//!
//! Usage: `prompt TEXT N`

use std::process::ExitCode;

use anyhow::Context;
use fork::given::{self, me};
use fork::{Job, run_parallel};

fn main() -> ExitCode {
    given::main_with(|| {
        let mut args = std::env::args().skip(1);
        let text = args.next().context("usage: prompt TEXT N")?;
        let n: usize = args
            .next()
            .context("usage: prompt TEXT N")?
            .parse()
            .context("N must be a number")?;
        // No newline: the text waits in stdout's buffer.
        print!("{text} ");
        let jobs = (0..n)
            .map(|i| -> Job {
                Box::new(move || {
                    println!("worker {i} pid={}", me());
                    0
                })
            })
            .collect();
        run_parallel(jobs)?;
        println!("parent pid={} done", me());
        Ok(())
    })
}
