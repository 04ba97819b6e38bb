//! Called once, returns twice: one fork, two processes, two lines.
//!
//! Usage: `twice` (then press Ctrl-D to let the child finish).

use std::process::ExitCode;

use fork::given::{self, hold, me, parent};
use fork::{join, start};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let child = start(|| {
            // Only the child runs this closure.
            println!("child pid={} ppid={}", me(), parent());
            hold();
            0
        })?;
        // Only the parent gets here: `start` returned the child's pid.
        println!("parent pid={} child={child}", me());
        let ending = join(child)?;
        println!("parent: child {child} {ending}");
        Ok(())
    })
}
// ANCHOR_END: main
