//! Waits for one lock, but not for ever.
//!
//! Usage: `waitlock NAME MS`: tries to take `NAME.lock` for up to MS ms.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::ensure;
use deadlock::given::{self, FileLock, report};
use deadlock::try_lock_for;

const USAGE: &str = "waitlock NAME MS";

fn main() -> ExitCode {
    given::main_with(|| {
        let opts = given::options(USAGE)?;
        ensure!(opts.args.len() == 2, "usage: {USAGE}");
        let ms: u64 = given::number(&opts.args[1], USAGE)?;
        let lock = FileLock::new(opts.args[0].clone(), 0);
        let began = Instant::now();
        // ANCHOR: main
        match try_lock_for(&lock, Duration::from_millis(ms))? {
            Some(guard) => {
                let waited = began.elapsed().as_millis();
                report(&format!("got {} after {waited} ms", guard.name()));
            }
            None => {
                let waited = began.elapsed().as_millis();
                report(&format!("gave up on {} after {waited} ms", lock.name()));
            }
        }
        // ANCHOR_END: main
        Ok(())
    })
}
