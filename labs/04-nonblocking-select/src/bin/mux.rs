//! Reads several pipes at once and prints each line as it arrives.
//!
//! Usage: `mux select|poll|epoll [--timeout MS] FD...`, where each FD is a
//! descriptor this program inherits, as in
//! `mux poll 3 4 3< <(producer a 5 300) 4< <(producer b 3 700)`.
//!
//! It prints `fd N: TEXT` for each line, `fd N: eof` when the writers of
//! fd N are gone, `timeout: nothing for MS ms` after each quiet spell, and
//! `all done` once every source has ended.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use nonblocking_select::given::{self, inherited_fd};
use nonblocking_select::{Backend, Event, multiplex};

const USAGE: &str = "usage: mux select|poll|epoll [--timeout MS] FD...";

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let (backend, timeout, numbers) = arguments()?;
        let owned: Vec<OwnedFd> = numbers
            .iter()
            .map(|&n| inherited_fd(n))
            .collect::<Result<_>>()?;
        let sources: Vec<BorrowedFd<'_>> = owned.iter().map(|fd| fd.as_fd()).collect();
        let mut waiter = backend.waiter()?;

        multiplex(&sources, waiter.as_mut(), timeout, |event| {
            match event {
                Event::Line { source, text } => println!("fd {}: {text}", numbers[source]),
                Event::Eof { source } => println!("fd {}: eof", numbers[source]),
                Event::Timeout => {
                    let ms = timeout.map(|t| t.as_millis()).unwrap_or(0);
                    println!("timeout: nothing for {ms} ms");
                }
            }
            Ok(())
        })?;
        println!("all done");
        Ok(())
    })
}
// ANCHOR_END: main

/// The backend, the timeout and the descriptor numbers.
fn arguments() -> Result<(Backend, Option<Duration>, Vec<i32>)> {
    let mut args = std::env::args().skip(1);
    let backend: Backend = args.next().context(USAGE)?.parse()?;
    let mut timeout = None;
    let mut numbers = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--timeout" {
            let ms: u64 = args.next().context(USAGE)?.parse().context(USAGE)?;
            timeout = Some(Duration::from_millis(ms));
        } else {
            let n: i32 = arg
                .parse()
                .with_context(|| format!("not a descriptor number: {arg:?}\n{USAGE}"))?;
            if numbers.contains(&n) {
                bail!("fd {n} given twice");
            }
            numbers.push(n);
        }
    }
    ensure!(!numbers.is_empty(), "no descriptor to read\n{USAGE}");
    Ok((backend, timeout, numbers))
}
