//! One print job, a program of its own: opens the printer room's named
//! semaphore (made by `spool`), takes a printer, prints, gives it back.
//!
//! Usage: `job N`

use std::process::ExitCode;

use anyhow::ensure;
use semaphores::{Semaphore, given};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::numbers::<usize>("job N")?;
        ensure!(args.len() == 1, "usage: job N");
        let job = args[0];
        let printers = Semaphore::open(&given::ipc_name("printers"))?;
        let _printer = match printers.try_acquire()? {
            Some(permit) => permit,
            None => {
                println!("job {job}: every printer is busy, waiting");
                printers.acquire()?
            }
        };
        given::print(job)
        // _printer is dropped here: the printer is free again.
    })
}
// ANCHOR_END: main
