//! The lost update: N workers each add 1 to a shared total M times, without
//! a lock. A second total, added to with an atomic fetch_add, shows what
//! the first one should be.
//!
//! Usage: `lost-update N M` (then Ctrl-D to let it end).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::ensure;
use shared_memory::Mapping;
use shared_memory::given::{self, hold, join, me, start};

const USAGE: &str = "lost-update N M";

// ANCHOR: add_unsynchronised
/// Adds 1 to `total` the way `total += 1` does: read, add, write back.
/// Each step is atomic; the three together are not. Another process may
/// write between our read and our write, and we then overwrite its update.
fn add_unsynchronised(total: &AtomicU64) {
    let seen = total.load(Ordering::Relaxed);
    total.store(seen + 1, Ordering::Relaxed);
}
// ANCHOR_END: add_unsynchronised

// ANCHOR: workers
fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args(USAGE, 2)?;
        let n: u64 = given::number(&args[0], USAGE)?;
        let m: u64 = given::number(&args[1], USAGE)?;
        ensure!(n > 0 && m > 0, "usage: {USAGE}, with N and M above 0");
        let counters = Mapping::anonymous_shared(16)?;
        println!("parent pid={} counters at {:#x}", me(), counters.address());
        let [racy, atomic] = &counters.words()[..2] else {
            unreachable!("16 bytes hold two words")
        };
        let mut workers = Vec::new();
        for _ in 0..n {
            let worker = start(|| {
                for _ in 0..m {
                    add_unsynchronised(racy);
                    // One indivisible read-add-write: nothing gets lost.
                    atomic.fetch_add(1, Ordering::Relaxed);
                }
                0
            });
            match worker {
                Ok(pid) => workers.push(pid),
                Err(e) => {
                    workers.into_iter().for_each(|pid| drop(join(pid)));
                    return Err(e);
                }
            }
        }
        for pid in workers {
            join(pid)?;
        }
        let (racy, atomic) = (racy.load(Ordering::Relaxed), atomic.load(Ordering::Relaxed));
        println!("racy={racy} atomic={atomic} expected={}", n * m);
        println!("lost {} updates", (n * m).saturating_sub(racy));
        // The checker reads this process's counters while it waits here.
        hold();
        Ok(())
    })
}
// ANCHOR_END: workers
