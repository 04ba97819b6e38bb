//! Which system call a process sleeps in, from `/proc`: the evidence
//! behind "the parent waits in wait4", "the server is blocked reading its
//! own self-pipe", "the philosopher waits in flock".

use crate::pid::Pid;
use std::time::Duration;

use crate::diagnose::syscall_name;
use crate::procfs;
use crate::scenario::Run;

/// The system call `pid` sleeps in right now, if it sleeps in one.
pub fn sleeping_in(pid: Pid) -> Option<&'static str> {
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
/// "waitid"]`); `false` if it does not within `within`, or ends first.
pub fn until_sleeping_in(run: &Run, pid: Pid, calls: &[&str], within: Duration) -> bool {
    run.poll(within, || {
        if ended(pid) {
            return Some(false);
        }
        sleeping_in(pid).filter(|c| calls.contains(c)).map(|_| true)
    })
    .unwrap_or(false)
}

/// Whether `pid` is gone or a zombie.
pub fn ended(pid: Pid) -> bool {
    procfs::stat(pid).is_none_or(|s| s.is_zombie())
}

/// [`Run::expect_asleep`] over two windows of 350 ms in a row: a busy
/// loop fails if either shows it. On a loaded machine a spinning process
/// may get so little CPU that one window sees no clock tick of it (the
/// `cpu` of `usage.rs` counts whole ticks); two windows make that miss
/// rare enough for a racy fixture to be caught every time.
pub fn expect_asleep_twice(
    run: &Run,
    pid: Pid,
    who: &str,
    waiting_for: &str,
) -> crate::scenario::Outcome {
    for _ in 0..2 {
        if ended(pid) {
            break;
        }
        run.expect_asleep(pid, Duration::from_millis(350), who, waiting_for)?;
    }
    Ok(())
}

/// The descriptor (first argument) of the call `pid` sleeps in, with the
/// call's name: `("read", 5)`.
pub fn sleeping_in_with_fd(pid: Pid) -> Option<(&'static str, i32)> {
    let name = sleeping_in(pid)?;
    let (_, args) = procfs::blocked(pid).syscall?;
    Some((name, args[0] as i32))
}
