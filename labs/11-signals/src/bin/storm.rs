//! A storm of signals: waits for the first SIGUSR1, then prints LINES
//! numbered lines while SIGUSR1 keeps coming, then `storm done ...`, and
//! waits at the gate (standard input) before it exits.
//!
//! Usage: `storm LINES` (then, from another terminal,
//! `while kill -USR1 PID; do :; done`).

use std::process::ExitCode;

use anyhow::Context;
use nix::sys::signal::Signal;
use signals::given::{self, hold, me};
use signals::{Signals, wait_readable};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let lines: u64 = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .context("usage: storm LINES")?;
        let mut signals = Signals::self_pipe(&[Signal::SIGUSR1])?;
        println!("storm pid={} ready", me());
        let mut handled = 0;
        while handled == 0 {
            wait_readable(&[signals.fd()])?;
            handled += signals.take()?.len();
        }
        for i in 0..lines {
            // Each println! takes stdout's lock: a handler that printed
            // too would find it taken, by the very code it interrupted.
            println!("line {i}");
            if i % 64 == 0 {
                handled += signals.take()?.len();
            }
        }
        handled += signals.take()?.len();
        println!("storm done lines={lines} handled={handled}");
        hold();
        Ok(())
    })
}
// ANCHOR_END: main
