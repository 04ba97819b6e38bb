//! The printers of the tutorials this course grew from: JOBS print jobs, PRINTERS printers, one
//! unnamed semaphore shared by forked children.
//!
//! Usage: `pool JOBS PRINTERS` (the tutorials' example is `pool 7 3`)

use std::process::ExitCode;

use anyhow::ensure;
use semaphores::given;
use semaphores::printer_pool;

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::numbers::<u32>("pool JOBS PRINTERS")?;
        ensure!(args.len() == 2, "usage: pool JOBS PRINTERS");
        let (jobs, printers) = (args[0] as usize, args[1]);
        printer_pool(jobs, printers)?;
        println!("all {jobs} jobs printed on {printers} printers");
        Ok(())
    })
}
// ANCHOR_END: main
