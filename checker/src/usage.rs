//! A process's CPU use over a stretch of time, from `/proc`: what tells a
//! program that sleeps while it waits from one that spins.

use crate::pid::Pid;
use std::time::{Duration, Instant};

use crate::procfs;

/// The share of wall time spent running or runnable that means "never sleeps".
const NEVER_SLEPT: f64 = 0.8;

/// A program's CPU use at one moment, or over a stretch of time.
#[derive(Clone, Copy)]
pub struct Usage {
    pub at: Instant,
    pub wall: Duration,
    /// utime + stime, from /proc/PID/stat.
    pub cpu: Duration,
    /// Time on a CPU plus time waiting for one, from /proc/PID/schedstat.
    pub busy: Option<Duration>,
}

impl Usage {
    pub fn of(pid: Pid) -> Usage {
        Usage {
            at: Instant::now(),
            wall: Duration::ZERO,
            cpu: procfs::cpu_time(pid).unwrap_or_default(),
            busy: procfs::sched_times(pid).map(|(ran, queued)| ran + queued),
        }
    }

    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            at: self.at,
            wall: self.at.duration_since(earlier.at),
            cpu: self.cpu.saturating_sub(earlier.cpu),
            busy: self
                .busy
                .zip(earlier.busy)
                .map(|(b, e)| b.saturating_sub(e)),
        }
    }

    pub fn cpu_share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-3)
    }

    /// Running or runnable nearly all the time: on a loaded machine a
    /// spinning loop gets little CPU, but it never sleeps either.
    pub fn never_slept(&self) -> bool {
        self.busy.is_some_and(|b| {
            self.wall >= Duration::from_millis(300)
                && b.as_secs_f64() > NEVER_SLEPT * self.wall.as_secs_f64()
                && self.cpu_share() > 0.005
        })
    }
}
