//! Which system call a process sleeps in, from `/proc`: the evidence
//! behind "the parent waits in wait4", "the server is blocked reading its
//! own self-pipe", "the philosopher waits in flock".

use std::time::Duration;

use crate::diagnose::syscall_name;
use crate::procfs;
use crate::scenario::Run;

/// The system call `pid` sleeps in right now, if it sleeps in one.
pub fn sleeping_in(pid: i32) -> Option<&'static str> {
    let s = procfs::stat(pid)?;
    if s.state != 'S' && s.state != 'D' {
        return None;
    }
    let b = procfs::blocked(pid);
    if b.running {
        return None;
    }
    b.syscall.and_then(|(nr, _)| syscall_name(nr))
}

/// Waits until `pid` sleeps in one of `calls` (e.g. `["wait4",
/// "waitid"]`); `false` if it does not within `within`, or is gone.
pub fn until_sleeping_in(run: &Run, pid: i32, calls: &[&str], within: Duration) -> bool {
    run.poll(within, || {
        sleeping_in(pid).filter(|c| calls.contains(c)).map(|_| ())
    })
    .is_some()
}

/// Whether `pid` is gone or a zombie.
pub fn ended(pid: i32) -> bool {
    procfs::stat(pid).is_none_or(|s| s.is_zombie())
}
