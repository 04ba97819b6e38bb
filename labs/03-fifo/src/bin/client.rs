//! A client of the string-reversing server: sends each line it reads on
//! standard input and prints the server's reply. The line `end` stops the
//! server.
//!
//! Usage: `client` (with `server` running in the same directory).

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use fifo::Client;
use fifo::given::{self, me};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let mut client = Client::connect(Path::new("."))?;
        println!("client pid={} ready", me());
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading standard input")?;
            if line == "end" {
                client.stop_server()?;
                println!("client pid={} stopped the server", me());
                break;
            }
            match client.ask(&line) {
                Ok(reply) => println!("reverse: {reply}"),
                Err(e) => println!("refused: {e:#}"),
            }
        }
        Ok(())
    })
}
// ANCHOR_END: main
