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
//! Read chapter 1 of the book first; `cargo lab hint 1` helps when stuck.

use std::fmt;

use anyhow::Result;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

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

/// Starts a child process that runs `work` and exits with the status `work`
/// returns. Returns the child's pid, in the parent only: the child never
/// returns from this function.
pub fn start(work: impl FnOnce() -> i32) -> Result<Pid> {
    // TODO:
    // 1. Flush stdout (`std::io::Write::flush`): whatever is still in its
    //    buffer would be copied into the child and printed twice.
    // 2. Call `nix::unistd::fork()` (it is `unsafe`: say why it is fine here).
    // 3. In the parent, return the child's pid.
    // 4. In the child, run `work` inside `std::panic::catch_unwind` (a
    //    panic becomes status 101), flush stdout, and end the process with
    //    `libc::_exit(status)`, not `exit`: the exit handlers and stdio
    //    buffers belong to the parent. The child must never return from
    //    here, or it would go on running the parent's code.
    let _ = work;
    todo!("start: fork a child that runs `work` and exits")
}

/// Waits for the child `pid` to end and says how it ended.
pub fn join(pid: Pid) -> Result<Ending> {
    // TODO: call `nix::sys::wait::waitpid(pid, None)`; wait again if it
    // fails with EINTR; turn `WaitStatus::Exited` and `WaitStatus::Signaled`
    // into an `Ending`. Give errors some context (`anyhow::Context`).
    let _ = pid;
    todo!("join: wait for one child with waitpid")
}

/// Waits for whichever child ends first. Returns `None` when this process
/// has no children left to wait for.
pub fn join_any() -> Result<Option<(Pid, Ending)>> {
    // TODO: `waitpid(None, None)` waits for any child (pid -1). It fails
    // with ECHILD when there is none left: that is `Ok(None)`, not an error.
    todo!("join_any: wait for any child with waitpid(-1)")
}

/// One piece of work for a child process: returns the child's exit status.
pub type Job = Box<dyn FnOnce() -> i32>;

/// Runs every job in a child process of its own, all at the same time, and
/// waits for all of them. Returns each child's pid and ending, in the order
/// of `jobs`.
pub fn run_parallel(jobs: Vec<Job>) -> Result<Vec<(Pid, Ending)>> {
    // TODO: start every job first, and only then join them all. If a start
    // fails half way, join the children already started before you return
    // the error.
    let _ = jobs;
    todo!("run_parallel: start all the jobs, then join them all")
}
