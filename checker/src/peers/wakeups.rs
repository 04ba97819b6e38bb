//! How often a process goes to sleep and wakes up again: the context
//! switches of all its threads, from `/proc/PID/task/TID/status`.
//!
//! A process that sleeps until its data comes wakes about once per
//! message. A loop that naps a little and looks again (a non-blocking read,
//! then `sleep(1 ms)`) sleeps most of the time, so its CPU share is small,
//! yet it wakes hundreds or thousands of times a second for nothing: the
//! count of wake-ups tells the two apart, on a loaded machine too.

use crate::pid::Pid;
use std::time::{Duration, Instant};

/// Context switches (voluntary and not) of every thread of `pid` so far.
pub fn switches(pid: Pid) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// Wake-ups of one process over a stretch of time.
#[derive(Clone, Copy)]
pub struct Wakeups {
    at: Instant,
    count: Option<u64>,
}

impl Wakeups {
    pub fn of(pid: Pid) -> Wakeups {
        Wakeups {
            at: Instant::now(),
            count: switches(pid),
        }
    }

    /// Wake-ups since `earlier`, and the time it covers.
    pub fn since(&self, earlier: &Wakeups) -> Option<(u64, Duration)> {
        let n = self.count?.checked_sub(earlier.count?)?;
        Some((n, self.at.duration_since(earlier.at)))
    }
}

/// Wake-ups per second, from a count over a stretch of time.
pub fn per_second(n: u64, over: Duration) -> f64 {
    n as f64 / over.as_secs_f64().max(1e-3)
}
