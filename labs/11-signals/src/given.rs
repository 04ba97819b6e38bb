//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, ipc_name, main_with, me, reverse};

use std::io::Write;

use anyhow::{Context, Result};
use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::unistd::{ForkResult, Pid, fork};

/// The server's request FIFO, in its current directory.
pub const REQUESTS: &str = "requests";

/// A request is one line: `ID TEXT`. Returns the id and the text.
pub fn parse_request(line: &str) -> Option<(u64, &str)> {
    let (id, text) = line.split_once(' ')?;
    Some((id.parse().ok()?, text))
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
