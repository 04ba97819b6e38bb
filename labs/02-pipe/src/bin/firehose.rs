//! A writer whose reader goes away: the child reads N bytes and exits, the
//! parent keeps writing until the kernel says nobody will read (EPIPE).
//!
//! Usage: `firehose N`

use std::io::{ErrorKind, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use pipe::given::{self, me};
use pipe::{join, spawn_reader};

fn main() -> ExitCode {
    given::main_with(|| {
        let n: usize = given::args()
            .first()
            .and_then(|a| a.parse().ok())
            .context("usage: firehose N")?;
        let (reader, mut to_reader) = spawn_reader(|mut from_writer| {
            let mut buf = vec![0u8; n];
            match from_writer.read_exact(&mut buf) {
                Ok(()) => {
                    println!("reader pid={} read {n} bytes and leaves", me());
                    0
                }
                Err(e) => {
                    eprintln!("reader: {e}");
                    1
                }
            }
        })?;
        println!("writer pid={} reader={reader}", me());

        let chunk = [b'x'; 4096];
        let mut written: u64 = 0;
        loop {
            match to_reader.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                // Rust programs ignore SIGPIPE, so a write to a pipe with
                // no reader left fails with EPIPE instead of killing us.
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                    println!("writer: EPIPE after {written} bytes: the reader is gone");
                    break;
                }
                Err(e) => return Err(e).context("writing to the pipe"),
            }
        }
        drop(to_reader);
        let ending = join(reader)?;
        println!("writer: reader {reader} {ending}");
        Ok(())
    })
}
