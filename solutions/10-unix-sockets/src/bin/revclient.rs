//! A client of `revserver`: sends each line of its standard input as a
//! request and prints the reply. The line `end` stops the server.
//!
//! Usage: `revclient PATH`

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::Context;
use unix_sockets::given;
use unix_sockets::{STOP, receive, send};

fn main() -> ExitCode {
    given::main_with(|| {
        let path = given::args()
            .first()
            .cloned()
            .context("usage: revclient PATH")?;
        let stream = UnixStream::connect(&path).with_context(|| format!("connect {path}"))?;
        let mut replies = BufReader::new(&stream);
        for line in std::io::stdin().lock().lines() {
            let request = line.context("reading stdin")?;
            send(&stream, &request)?;
            if request == STOP {
                break;
            }
            let reply = receive(&mut replies)?.context("the server hung up")?;
            println!("{reply}");
        }
        Ok(())
    })
}
