//! Signals do not queue: blocks SIGUSR1, sends it to itself N times, then
//! unblocks it and counts how many times the handler ran (once).
//!
//! Usage: `pending N`

use std::process::ExitCode;

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal, raise};
use signals::Signals;
use signals::given;

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let n: u32 = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .context("usage: pending N")?;
        let mut signals = Signals::self_pipe(&[Signal::SIGUSR1])?;
        let mut usr1 = SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        // While blocked, a signal sent is only marked pending: one bit.
        usr1.thread_block().context("blocking SIGUSR1")?;
        for _ in 0..n {
            raise(Signal::SIGUSR1).context("raise")?;
        }
        // Unblocked, the pending signal is delivered: the handler runs
        // before thread_unblock returns.
        usr1.thread_unblock().context("unblocking SIGUSR1")?;
        let ran = signals.take()?.len();
        println!("sent SIGUSR1 {n} times, the handler ran {ran} time(s)");
        Ok(())
    })
}
// ANCHOR_END: main
