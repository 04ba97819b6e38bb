//! Waiting measured: whether processes that should be waiting slept, or
//! spun.
//!
//! A process goes to sleep each time it blocks: the kernel counts those
//! times as voluntary context switches (`/proc/PID/status`). A process that
//! spins never blocks, however little CPU a loaded machine gives it, so its
//! count stays still while it runs (`/proc/PID/schedstat`, in nanoseconds).
//! A process that sleeps all along does not run at all; one that naps and
//! looks again blocks at every nap. Neither the share of CPU time (a
//! spinner may get a few per cent of a loaded machine) nor the time spent
//! waiting for a CPU (a napping process woken late waits for one too) tells
//! them apart as surely.

use crate::pid::Pid;
use std::time::{Duration, Instant};

use crate::procfs;
use crate::scenario::Run;

/// The least CPU time a window must show to count as spinning: a spinner
/// given one CPU in twenty on a loaded machine still runs 10 ms in 200 ms.
const SPIN_RAN: Duration = Duration::from_millis(3);

/// How a process used a stretch of time.
#[derive(Clone, Copy, Debug)]
pub struct Spent {
    pub wall: Duration,
    /// On a CPU.
    pub ran: Duration,
    /// How many times it blocked (voluntary context switches).
    pub slept: u64,
}

impl Spent {
    /// It ran, and never blocked.
    ///
    /// "Ran" means at least [`SPIN_RAN`]: a process that sleeps and is
    /// woken once near the end of the window may be caught between its
    /// wake-up and its next block, having run a few microseconds without
    /// blocking yet; a spinner, even on a loaded machine, runs far longer.
    pub fn never_slept(&self) -> bool {
        self.wall >= Duration::from_millis(200) && self.ran >= SPIN_RAN && self.slept == 0
    }
}

/// Voluntary context switches of `pid` so far (a single-threaded
/// program's: the lab programs have one thread).
fn blocked_times(pid: Pid) -> Option<u64> {
    switches_in(&format!("/proc/{pid}/status"))
}

/// The voluntary context switches in a `status` file of /proc.
fn switches_in(status: &str) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
}

fn sample(pid: Pid) -> Option<(Duration, u64)> {
    Some((procfs::sched_times(pid)?.0, blocked_times(pid)?))
}

/// Watches `pids` for `window` (capped by the deadline); returns the first
/// one still alive that ran and never slept, with how it spent the time.
pub fn spinning(run: &Run, pids: &[Pid], window: Duration) -> Option<(Pid, Spent)> {
    let start = Instant::now();
    let before: Vec<Option<(Duration, u64)>> = pids.iter().map(|&p| sample(p)).collect();
    run.pause(window);
    let wall = start.elapsed();
    pids.iter().zip(before).find_map(|(&pid, b)| {
        let (ran0, slept0) = b?;
        let alive = procfs::stat(pid).is_some_and(|s| !s.is_zombie());
        let (ran1, slept1) = sample(pid)?;
        let spent = Spent {
            wall,
            ran: ran1.saturating_sub(ran0),
            slept: slept1.saturating_sub(slept0),
        };
        (alive && spent.never_slept()).then_some((pid, spent))
    })
}

/// "it ran N ms in M ms and never blocked", for a report.
pub fn described(spent: &Spent) -> String {
    format!(
        "in {:.0} ms it ran {:.0} ms and never blocked once (no voluntary context switch)",
        spent.wall.as_secs_f64() * 1000.0,
        spent.ran.as_secs_f64() * 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_process_blocks_and_a_spinning_one_does_not() {
        // This thread's own count: the test runs on a thread of its own.
        // SAFETY: gettid has no preconditions.
        let status = format!("/proc/self/task/{}/status", unsafe { libc::gettid() });
        let before = switches_in(&status).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let after = switches_in(&status).unwrap();
        assert!(after > before, "a sleep is a voluntary switch");
        let spent = Spent {
            wall: Duration::from_millis(300),
            ran: Duration::from_millis(30),
            slept: 0,
        };
        assert!(spent.never_slept());
        let asleep = Spent {
            ran: Duration::ZERO,
            ..spent
        };
        assert!(!asleep.never_slept(), "not running at all is not spinning");
    }
}
