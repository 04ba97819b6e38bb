//! Lab 01 — processes: fork, exit and wait.
//!
//! You write four functions, the smallest process toolkit there is:
//!
//! - [`start`] makes a child process that runs some work and exits;
//! - [`join`] waits for one child and tells how it ended;
//! - [`join_any`] waits for whichever child ends first;
//! - [`run_parallel`] starts many children, then waits for all of them.
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 1`). Edit this file only.

use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

pub mod given;

// ANCHOR: ending
/// How a child process ended, as its parent learns it from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The child called `exit` (or returned from `main`) with this status.
    Exited(i32),
    /// A signal killed the child.
    Killed(Signal),
}
// ANCHOR_END: ending

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exited with {code}"),
            Ending::Killed(signal) => write!(f, "killed by {}", signal.as_str()),
        }
    }
}

// ANCHOR: start
/// Starts a child process that runs `work` and exits with the status `work`
/// returns. Returns the child's pid, in the parent only: the child never
/// returns from this function.
pub fn start(work: impl FnOnce() -> i32) -> Result<Pid> {
    // Anything still sitting in stdout's buffer would be copied into the
    // child and printed twice, once by each process. Empty it first.
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;

    // SAFETY: the programs of this lab are single-threaded, so the child
    // may run arbitrary code after fork.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // A panic must not unwind out of here: the frames above us are
            // the parent's code, which the child has a copy of.
            let status = catch_unwind(AssertUnwindSafe(work)).unwrap_or(101);
            let _ = std::io::stdout().flush();
            // _exit, not exit: end this process now, without running the
            // clean-up that belongs to the parent's copy of the program.
            // SAFETY: _exit is always safe to call; it does not return.
            unsafe { libc::_exit(status) }
        }
    }
}
// ANCHOR_END: start

// ANCHOR: join
/// Waits for the child `pid` to end and says how it ended.
pub fn join(pid: Pid) -> Result<Ending> {
    loop {
        match waitpid(pid, None) {
            Ok(status) => return ending(status),
            // A signal handler ran while we waited: just wait again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}
// ANCHOR_END: join

// ANCHOR: join_any
/// Waits for whichever child ends first. Returns `None` when this process
/// has no children left to wait for.
pub fn join_any() -> Result<Option<(Pid, Ending)>> {
    loop {
        // `None` means pid -1: any child of ours.
        match waitpid(None, None) {
            Ok(status) => {
                let pid = status.pid().context("waitpid(-1) returned no pid")?;
                return Ok(Some((pid, ending(status)?)));
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(None),
            Err(e) => return Err(e).context("waitpid(-1)"),
        }
    }
}
// ANCHOR_END: join_any

// ANCHOR: wait_status
/// Translates what `waitpid` reported into an [`Ending`].
fn ending(status: WaitStatus) -> Result<Ending> {
    match status {
        WaitStatus::Exited(_, code) => Ok(Ending::Exited(code)),
        WaitStatus::Signaled(_, signal, _core_dumped) => Ok(Ending::Killed(signal)),
        // Without WUNTRACED or WCONTINUED, waitpid reports nothing else.
        other => bail!("unexpected wait status {other:?}"),
    }
}
// ANCHOR_END: wait_status

/// One piece of work for a child process: returns the child's exit status.
pub type Job = Box<dyn FnOnce() -> i32>;

// ANCHOR: run_parallel
/// Runs every job in a child process of its own, all at the same time, and
/// waits for all of them. Returns each child's pid and ending, in the order
/// of `jobs`.
pub fn run_parallel(jobs: Vec<Job>) -> Result<Vec<(Pid, Ending)>> {
    // First start them all...
    let mut pids = Vec::with_capacity(jobs.len());
    for job in jobs {
        match start(job) {
            Ok(pid) => pids.push(pid),
            Err(e) => {
                // Do not leave the children we did start behind.
                for pid in pids {
                    let _ = join(pid);
                }
                return Err(e);
            }
        }
    }
    // ...then wait for them all. Waiting inside the first loop would run
    // the jobs one at a time.
    pids.into_iter().map(|pid| Ok((pid, join(pid)?))).collect()
}
// ANCHOR_END: run_parallel
