//! Given code shared by the programs in `src/bin/`. You do not need to edit it.
//!
//! Lab 01 was about processes; here `start` and `join` are given, so that
//! this lab can be about the memory those processes share.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, ipc_name, main_with, me, number, pause_point};

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Starts a child process that runs `work` and exits with the status it
/// returns. Returns the child's pid, in the parent only.
pub fn start(work: impl FnOnce() -> i32) -> Result<Pid> {
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status = catch_unwind(AssertUnwindSafe(work)).unwrap_or(101);
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child without running the parent's
            // clean-up (destructors, atexit handlers); it does not return.
            unsafe { libc::_exit(status) }
        }
    }
}

/// Waits for the child `pid` and fails unless it exited with status 0.
pub fn join(pid: Pid) -> Result<()> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(other) => bail!("worker {pid} ended badly: {other:?}"),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}

/// The average of some grades (0.0 for none).
pub fn average(grades: &[u32]) -> f64 {
    if grades.is_empty() {
        return 0.0;
    }
    let sum: u64 = grades.iter().map(|&g| u64::from(g)).sum();
    sum as f64 / grades.len() as f64
}

/// The command-line arguments after the program name.
pub fn args(usage: &str, at_least: usize) -> Result<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < at_least {
        bail!("usage: {usage}");
    }
    Ok(args)
}
