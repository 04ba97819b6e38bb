//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// How a child process ended, as its parent learns it from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The child called `exit` (or returned from `main`) with this status.
    Exited(i32),
    /// A signal killed the child.
    Killed(Signal),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exited with {code}"),
            Ending::Killed(signal) => write!(f, "killed by {}", signal.as_str()),
        }
    }
}

/// Waits for the child `pid` to end and says how it ended (lab 01's `join`).
pub fn join(pid: Pid) -> Result<Ending> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ending::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Ending::Killed(signal)),
            Ok(other) => bail!("unexpected wait status {other:?}"),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}

/// Ends a child process after its work: flushes stdout and calls `_exit`
/// with the status `work` returned (101 if it panicked). Call it in the
/// child right after `fork`; it never returns.
pub fn run_child(work: impl FnOnce() -> i32) -> ! {
    let status = catch_unwind(AssertUnwindSafe(work)).unwrap_or(101);
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; it is always safe to call.
    unsafe { libc::_exit(status) }
}

/// The server's answer to a request: the text reversed, character by
/// character (`abracadabra` -> `arbadacarba`, `ñandú` -> `údnañ`).
pub fn reverse(request: &str) -> String {
    request.chars().rev().collect()
}

/// Runs a program's body, printing its error (with context) on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    let result = body();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command-line arguments after the program name.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}
