//! A slow writer to try the other programs by hand: prints COUNT lines
//! `NAME 1`, `NAME 2`, ... one every MS milliseconds, then exits.
//!
//! Usage: `producer NAME COUNT MS`

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nonblocking_select::given;

fn main() -> ExitCode {
    given::main_with(|| {
        let usage = "usage: producer NAME COUNT MS";
        let mut args = std::env::args().skip(1);
        let name = args.next().context(usage)?;
        let count: u32 = args.next().context(usage)?.parse().context(usage)?;
        let ms: u64 = args.next().context(usage)?.parse().context(usage)?;
        let mut out = std::io::stdout().lock();
        for i in 1..=count {
            std::thread::sleep(Duration::from_millis(ms));
            writeln!(out, "{name} {i}")?;
            // A pipe is not a terminal: without a flush the lines would
            // sit in our buffer until the end.
            out.flush().context("writing to stdout")?;
        }
        Ok::<(), anyhow::Error>(())
    })
}
