//! Reaping: wait for whichever child ends first, so none stays a zombie.
//!
//! Usage: `reaper MS...` (then Ctrl-D to let the parent exit).

use std::process::ExitCode;
use std::time::Duration;

use fork::given::{self, hold, me};
use fork::{join_any, start};

// ANCHOR: reap
fn main() -> ExitCode {
    given::main_with(|| {
        let naps = given::numbers::<u64>("reaper MS...")?;
        for (i, &ms) in naps.iter().enumerate() {
            start(move || {
                println!("worker {i} pid={} sleeps {ms} ms", me());
                std::thread::sleep(Duration::from_millis(ms));
                i as i32
            })?;
        }
        while let Some((pid, ending)) = join_any()? {
            println!("reaped pid={pid} {ending}");
        }
        println!("all reaped by pid={}", me());
        hold();
        Ok(())
    })
}
// ANCHOR_END: reap
