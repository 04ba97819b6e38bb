//! Telling "still working" from "stuck for good", from `/proc`.
//!
//! A program is stuck when every thread of every process the checker
//! started is blocked in a call that has no time-out (a read of a pipe,
//! `wait4`, a `futex` without a time-out, `accept`, `pause`...), is
//! stopped or is a zombie, and nothing at all changes for a while: no CPU
//! time used, no byte read or written, no process started or ended, and no
//! move by the checker's own peers ([`Activity`]). Nothing can then change
//! without the checker, and the checker is waiting for the program: the
//! scenario can end at once with its diagnosis instead of waiting out its
//! limit. A process asleep with a time-out (`nanosleep`, `poll` with a
//! time-out, `sem_timedwait`) is never stuck: it will wake by itself.

use crate::pid::Pid;
use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::diagnose::syscall_name;
use crate::procfs;

/// How long nothing may change before the program counts as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(1);

/// A counter the checker's own peers (threads that write, connect, pause
/// mid-message) bump whenever they do something, so that a program waiting
/// for a peer that is about to act is not taken for stuck. A peer must not
/// stay idle longer than [`STUCK_AFTER`] while the program waits for it.
#[derive(Clone, Default)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    pub fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One thread's state: what it is doing, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    state: char,
    /// The system call and its six arguments, when blocked in one.
    syscall: Option<(i64, [u64; 6])>,
}

/// Everything that could change while a program makes progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Snapshot {
    /// Per process: its threads, CPU ticks, and bytes read and written.
    procs: BTreeMap<Pid, (Vec<Task>, u64, u64, u64)>,
    activity: u64,
}

impl Snapshot {
    fn take(root: Pid, activity: &Activity) -> Snapshot {
        let mut procs = BTreeMap::new();
        for p in procfs::descendants(root) {
            let tasks = tasks(p.pid);
            let ticks = cpu_ticks(p.pid);
            let (rchar, wchar) = io_counts(p.pid);
            procs.insert(p.pid, (tasks, ticks, rchar, wchar));
        }
        Snapshot {
            procs,
            activity: activity.count(),
        }
    }

    /// Every thread waits for something that only another can give.
    fn all_blocked_for_good(&self) -> bool {
        !self.procs.is_empty()
            && self
                .procs
                .values()
                .all(|(tasks, ..)| !tasks.is_empty() && tasks.iter().all(Task::blocked_for_good))
    }
}

impl Task {
    fn blocked_for_good(&self) -> bool {
        match self.state {
            'Z' | 'X' | 'T' | 't' => true,
            'S' => self
                .syscall
                .is_some_and(|(nr, args)| waits_without_timeout(nr, &args)),
            _ => false,
        }
    }
}

/// Whether system call `nr` with `args` can only return when another
/// process acts (no time-out of its own).
pub fn waits_without_timeout(nr: i64, args: &[u64; 6]) -> bool {
    let Some(name) = syscall_name(nr) else {
        return false;
    };
    let int = |i: usize| args[i] as i64 as i32;
    match name {
        "read" | "readv" | "pread64" | "write" | "writev" | "pwrite64" | "wait4" | "waitid"
        | "accept" | "accept4" | "connect" | "recvfrom" | "recvmsg" | "sendto" | "sendmsg"
        | "openat" | "open" | "flock" | "pause" | "rt_sigsuspend" | "msgrcv" | "msgsnd"
        | "semop" | "sendfile" | "splice" => true,
        // F_SETLKW (7) and F_OFD_SETLKW (38) wait; other commands do not block.
        "fcntl" => matches!(int(1), 7 | 38),
        "poll" => int(2) < 0,
        "ppoll" => args[2] == 0,
        "select" | "pselect6" => args[4] == 0,
        "epoll_wait" | "epoll_pwait" => int(3) < 0,
        "epoll_pwait2" => args[3] == 0,
        "mq_timedreceive" | "mq_timedsend" => args[4] == 0,
        "rt_sigtimedwait" => args[2] == 0,
        "semtimedop" => args[3] == 0,
        // FUTEX_WAIT (0), FUTEX_WAIT_BITSET (9), FUTEX_LOCK_PI (6),
        // FUTEX_WAIT_REQUEUE_PI (11): blocked for good without a time-out.
        "futex" => matches!(int(1) & 127, 0 | 6 | 9 | 11) && args[3] == 0,
        _ => false,
    }
}

fn tasks(pid: Pid) -> Vec<Task> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<(i32, Task)> = dir
        .flatten()
        .filter_map(|t| {
            let tid: i32 = t.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(t.path().join("stat")).ok()?;
            let state = stat
                .get(stat.rfind(')')? + 1..)?
                .split_whitespace()
                .next()?
                .chars()
                .next()?;
            let raw = fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
            Some((
                tid,
                Task {
                    state,
                    syscall: parse_syscall(&raw),
                },
            ))
        })
        .collect();
    out.sort_by_key(|(tid, _)| *tid);
    out.into_iter().map(|(_, t)| t).collect()
}

/// `/proc/PID/syscall`: "NR ARG1 ... ARG6 SP PC", "running" or "-1 ...".
fn parse_syscall(raw: &str) -> Option<(i64, [u64; 6])> {
    let mut words = raw.split_whitespace();
    let nr: i64 = words.next()?.parse().ok().filter(|&nr: &i64| nr >= 0)?;
    let mut args = [0u64; 6];
    for arg in &mut args {
        *arg = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some((nr, args))
}

fn cpu_ticks(pid: Pid) -> u64 {
    procfs::cpu_time(pid).map_or(0, |d| d.as_micros() as u64)
}

fn io_counts(pid: Pid) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("rchar:"), field("wchar:"))
}

/// Watches the processes under `root` between the checker's looks.
pub struct Watch {
    root: Pid,
    activity: Activity,
    last: Snapshot,
    since: Instant,
}

impl Watch {
    pub fn new(root: Pid, activity: Activity) -> Watch {
        let last = Snapshot::take(root, &activity);
        Watch {
            root,
            activity,
            last,
            since: Instant::now(),
        }
    }

    /// Takes a new look: `Some(how long)` once every process has been
    /// blocked for good, with nothing changing, for [`STUCK_AFTER`].
    pub fn stuck(&mut self) -> Option<Duration> {
        let now = Snapshot::take(self.root, &self.activity);
        if now != self.last || !now.all_blocked_for_good() {
            self.last = now;
            self.since = Instant::now();
            return None;
        }
        let still = self.since.elapsed();
        (still >= STUCK_AFTER).then_some(still)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(name: &str) -> i64 {
        (0..500).find(|&n| syscall_name(n) == Some(name)).unwrap()
    }

    #[test]
    fn waits_with_a_timeout_are_not_stuck() {
        let forever = [0, 0, u64::MAX, 0, 0, 0];
        let timed = [0, 0, 100, 0, 0, 0];
        assert!(waits_without_timeout(nr("poll"), &forever));
        assert!(!waits_without_timeout(nr("poll"), &timed));
        assert!(!waits_without_timeout(nr("nanosleep"), &[0; 6]));
        assert!(waits_without_timeout(nr("read"), &[0; 6]));
        assert!(waits_without_timeout(nr("futex"), &[1, 0x80, 2, 0, 0, 0]));
        assert!(!waits_without_timeout(
            nr("futex"),
            &[1, 0x80, 2, 0x7ff0, 0, 0]
        ));
        // F_GETFL does not block; F_SETLKW does.
        assert!(!waits_without_timeout(nr("fcntl"), &[3, 3, 0, 0, 0, 0]));
        assert!(waits_without_timeout(nr("fcntl"), &[3, 7, 0, 0, 0, 0]));
    }

    #[test]
    fn reads_proc_syscall() {
        let raw = "0 0x3 0x7ffd 0x40 0x0 0x0 0x0 0x7ffc 0x7f00\n";
        assert_eq!(parse_syscall(raw), Some((0, [3, 0x7ffd, 0x40, 0, 0, 0])));
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffc 0x7f00\n"), None);
    }
}
