//! N processes print K lines each, of LEN copies of their own letter (A, B,
//! C...). Each line is written in small pieces; a shared mutex keeps the
//! lines whole.
//!
//! Usage: `lines N K LEN`, then Ctrl-D to let the printers start.

use std::process::ExitCode;

use anyhow::ensure;
use locks::given::{self, Shared, hold, join_workers, start_workers};
use locks::{SharedMutex, print_lines};

const USAGE: &str = "lines N K LEN";

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args(USAGE, 3)?;
        let n: usize = given::number(&args[0], USAGE)?;
        let k: usize = given::number(&args[1], USAGE)?;
        let len: usize = given::number(&args[2], USAGE)?;
        ensure!((1..=26).contains(&n), "N is 1 to 26: one letter each");
        // Made before fork, so every printer maps the same mutex.
        let lock = Shared::<SharedMutex>::anonymous()?;
        let printers = start_workers(n, |i| {
            hold();
            print_lines(&lock, b'A' + i as u8, k, len)
        })?;
        join_workers(printers)
    })
}
// ANCHOR_END: main
