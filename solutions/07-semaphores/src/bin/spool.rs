//! Creates the named semaphore of a printer room, keeps it while jobs (the
//! `job` program) use it, and removes it when its standard input closes.
//!
//! Usage: `spool PRINTERS` (then run `job N` in other terminals; Ctrl-D ends)

use std::process::ExitCode;

use anyhow::ensure;
use semaphores::{Semaphore, given};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::numbers::<u32>("spool PRINTERS")?;
        ensure!(args.len() == 1, "usage: spool PRINTERS");
        let name = given::ipc_name("printers");
        let printers = Semaphore::create(&name, args[0])?;
        println!("spool ready: {name} has {} printers", args[0]);
        given::hold();
        // Dropping the creator's handle closes and unlinks the name.
        drop(printers);
        println!("spool closed {name}");
        Ok(())
    })
}
// ANCHOR_END: main
