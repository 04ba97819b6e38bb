//! Two locks, L<A> and L<B>, taken by one process: the deadlock's half.
//!
//! Usage: `pair [--gate] [--naive | --backoff MS] A B`
//!
//! Run `pair --gate 1 2` and `pair --gate 2 1` in two terminals, and
//! press Enter in each at every gate.

use std::process::ExitCode;

use anyhow::ensure;
use deadlock::given::{self, FileLock, report};
use deadlock::{lock_both, lock_both_backoff};

const USAGE: &str = "pair [--gate] [--naive | --backoff MS] A B";

fn main() -> ExitCode {
    given::main_with(|| {
        let opts = given::options(USAGE)?;
        ensure!(opts.args.len() == 2, "usage: {USAGE}");
        let a: u32 = given::number(&opts.args[0], USAGE)?;
        let b: u32 = given::number(&opts.args[1], USAGE)?;
        let (la, lb) = (
            FileLock::new(format!("L{a}"), a),
            FileLock::new(format!("L{b}"), b),
        );
        // ANCHOR: main
        let guards = if opts.naive {
            given::lock_as_named(&la, &lb)?
        } else if let Some(ms) = opts.backoff {
            lock_both_backoff(&la, &lb, ms)?
        } else {
            lock_both(&la, &lb)?
        };
        given::work();
        drop(guards);
        // ANCHOR_END: main
        report("done");
        Ok(())
    })
}
