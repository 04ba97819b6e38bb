//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::unistd::{ForkResult, Pid, fork};

/// The server's request FIFO, in its current directory.
pub const REQUESTS: &str = "requests";

/// The name of a named IPC object for this run: `LAB_IPC_PREFIX` (set by
/// the checker, e.g. `/lab-123-4-`) followed by `what`. Run by hand, the
/// prefix is `/lab11-`.
pub fn ipc_name(what: &str) -> String {
    let prefix = std::env::var("LAB_IPC_PREFIX").unwrap_or_else(|_| "/lab11-".to_string());
    format!("{prefix}{what}")
}

/// A request is one line: `ID TEXT`. Returns the id and the text.
pub fn parse_request(line: &str) -> Option<(u64, &str)> {
    let (id, text) = line.split_once(' ')?;
    Some((id.parse().ok()?, text))
}

/// The text with its characters in reverse order.
pub fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: every worker waits here, so the checker
/// can send signals while requests are in hand, and then release all the
/// workers at the same moment by closing their standard input. Run by hand,
/// the workers wait until you press Ctrl-D.
pub fn hold() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

// ANCHOR: start_worker
/// Forks a worker that answers one request: it waits at the gate, prints
/// `reply ID TEXT-REVERSED` and exits. Returns the worker's pid.
pub fn start_worker(id: u64, text: &str) -> Result<Pid> {
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // The child inherits the parent's handlers and signal mask. A
            // handler here would write into the *parent's* self-pipe, and
            // a blocked SIGTERM would make the worker deaf to it: start
            // the worker with default dispositions and nothing blocked.
            for sig in [
                Signal::SIGCHLD,
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGUSR1,
            ] {
                // SAFETY: setting the default disposition is always sound.
                let _ = unsafe { signal(sig, SigHandler::SigDfl) };
            }
            let _ = SigSet::empty().thread_set_mask();
            hold();
            println!("reply {id} {}", reverse(text));
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child without running the parent's
            // clean-up (its Drop would remove the parent's FIFO).
            unsafe { libc::_exit(0) }
        }
    }
}
// ANCHOR_END: start_worker

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

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}
