//! Two fcntl record locks, R<A> and R<B> (bytes A and B of `records.db`):
//! the kernel detects the deadlock and refuses one lock with EDEADLK.
//!
//! Usage: `records [--gate] [--naive] A B`

use std::process::ExitCode;

use anyhow::{Context, ensure};
use deadlock::given::{self, RecordLock, report};
use deadlock::lock_records;

const USAGE: &str = "records [--gate] [--naive] A B";

fn main() -> ExitCode {
    given::main_with(|| {
        let opts = given::options(USAGE)?;
        ensure!(opts.args.len() == 2, "usage: {USAGE}");
        let a: u32 = given::number(&opts.args[0], USAGE)?;
        let b: u32 = given::number(&opts.args[1], USAGE)?;
        let ra = RecordLock::open("records.db", a)?;
        let rb = RecordLock::open("records.db", b)?;
        // ANCHOR: main
        if opts.naive {
            // No recovery: EDEADLK ends the program with an error.
            let _a = ra.lock().context("locking the first record")?;
            let _b = rb.lock().context("locking the second record")?;
            given::work();
        } else {
            let guards = lock_records(&ra, &rb)?;
            given::work();
            drop(guards);
        }
        // ANCHOR_END: main
        report("done");
        Ok(())
    })
}
