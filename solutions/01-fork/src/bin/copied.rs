//! Memory is copied, not shared: each worker adds to its own copy of TOTAL.
//!
//! Usage: `copied TOTAL ADDEND...` (then Ctrl-D to let the workers finish).

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

use fork::given::{self, hold, me};
use fork::{Job, run_parallel};

// ANCHOR: total
/// The "shared" total every worker adds to. Even an atomic cannot help: after
/// fork, each process has a copy of its own.
static TOTAL: AtomicI64 = AtomicI64::new(0);

fn main() -> ExitCode {
    given::main_with(|| {
        let numbers = given::numbers::<i64>("copied TOTAL ADDEND...")?;
        TOTAL.store(numbers[0], Ordering::SeqCst);
        let jobs = numbers[1..]
            .iter()
            .map(|&addend| -> Job {
                Box::new(move || {
                    let now = TOTAL.fetch_add(addend, Ordering::SeqCst) + addend;
                    println!("worker pid={} added {addend}, total={now}", me());
                    hold();
                    0
                })
            })
            .collect();
        run_parallel(jobs)?;
        println!("parent pid={} total={}", me(), TOTAL.load(Ordering::SeqCst));
        Ok(())
    })
}
// ANCHOR_END: total
