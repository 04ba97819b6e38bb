//! A non-blocking read in a loop: it never waits, so it never sleeps. It
//! prints every chunk it reads and, at end of file, how many reads it made
//! and how much CPU they burnt.
//!
//! Usage: `producer a 5 300 | spin` (or `spin NAP_MS` to nap between
//! empty reads). Its stdin must be a pipe, not your terminal.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use nonblocking_select::given::{self, cpu_time, shown};
use nonblocking_select::{Read, read_some, set_nonblocking};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let nap = match std::env::args().nth(1) {
            Some(ms) => Some(Duration::from_millis(ms.parse()?)),
            None => None,
        };
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            // O_NONBLOCK would land on the terminal the shell shares.
            bail!("stdin is a terminal: pipe something in, as in `producer a 5 300 | spin`");
        }
        let fd = stdin.as_fd();
        set_nonblocking(fd)?;

        let (began, cpu_before) = (Instant::now(), cpu_time()?);
        let (mut reads, mut empty) = (0u64, 0u64);
        let mut buf = [0u8; 1024];
        loop {
            reads += 1;
            match read_some(fd, &mut buf)? {
                Read::Data(n) => println!("read {n} bytes: {}", shown(&buf[..n])),
                Read::WouldBlock => {
                    empty += 1;
                    if let Some(nap) = nap {
                        std::thread::sleep(nap);
                    }
                }
                Read::Eof => break,
            }
        }
        let wall = began.elapsed();
        let cpu = cpu_time()? - cpu_before;
        println!("eof after {reads} reads, {empty} of them EAGAIN");
        println!(
            "cpu {} ms in {} ms of wall time ({}%)",
            cpu.as_millis(),
            wall.as_millis(),
            cpu.as_millis() * 100 / wall.as_millis().max(1)
        );
        Ok(())
    })
}
// ANCHOR_END: main
