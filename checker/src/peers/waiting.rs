//! Waiting measured: whether processes that should be waiting slept, or
//! spun.
//!
//! It looks at `/proc/PID/schedstat` only: time on a CPU plus time waiting
//! for one, in nanoseconds. A process that spins is runnable all the time,
//! so that sum keeps up with the wall clock, even when a loaded machine
//! gives it almost no CPU: less than one 10 ms tick of `utime + stime`,
//! which is why the tick counts are not used here.

use std::time::{Duration, Instant};

use crate::procfs;
use crate::scenario::Run;

/// The share of wall time runnable that means "never slept". Not higher:
/// schedstat adds a wait for a CPU only once the wait is over, so on a
/// loaded machine up to a scheduling period of a spinner's window may not
/// show yet. A process that blocks is runnable a few per cent of the time.
const NEVER_SLEPT: f64 = 0.5;

/// How a process used a stretch of time.
#[derive(Clone, Copy, Debug)]
pub struct Spent {
    pub wall: Duration,
    /// On a CPU.
    pub ran: Duration,
    /// Runnable, waiting for a CPU.
    pub queued: Duration,
}

impl Spent {
    /// Runnable nearly all the time, and on a CPU at least a little.
    pub fn never_slept(&self) -> bool {
        self.wall >= Duration::from_millis(200)
            && !self.ran.is_zero()
            && (self.ran + self.queued).as_secs_f64() > NEVER_SLEPT * self.wall.as_secs_f64()
    }
}

/// Watches `pids` for `window` (capped by the deadline); returns the first
/// one still alive that never slept, with how it spent the time.
pub fn spinning(run: &Run, pids: &[i32], window: Duration) -> Option<(i32, Spent)> {
    let start = Instant::now();
    let before: Vec<Option<(Duration, Duration)>> =
        pids.iter().map(|&p| procfs::sched_times(p)).collect();
    run.pause(window);
    let wall = start.elapsed();
    pids.iter().zip(before).find_map(|(&pid, b)| {
        let (ran0, queued0) = b?;
        let alive = procfs::stat(pid).is_some_and(|s| !s.is_zombie());
        let (ran1, queued1) = procfs::sched_times(pid)?;
        let spent = Spent {
            wall,
            ran: ran1.saturating_sub(ran0),
            queued: queued1.saturating_sub(queued0),
        };
        (alive && spent.never_slept()).then_some((pid, spent))
    })
}

/// "it was runnable N ms of M ms and never slept", for a report.
pub fn described(spent: &Spent) -> String {
    format!(
        "it was on a CPU or waiting for one {:.0} ms of {:.0} ms, and never slept",
        (spent.ran + spent.queued).as_secs_f64() * 1000.0,
        spent.wall.as_secs_f64() * 1000.0
    )
}
