//! A request/response conversation over two pipes: the parent asks, its
//! child (the server) answers each request with the text reversed.
//!
//! Usage: `ask`, then type one request per line; Ctrl-D ends.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use pipe::given::{self, me};
use pipe::{receive, send, spawn_server};

fn main() -> ExitCode {
    given::main_with(|| {
        let mut server = spawn_server(|mut requests, mut replies| {
            loop {
                match receive(&mut requests) {
                    // End of file: the client has closed its end. Done.
                    Ok(None) => return 0,
                    Ok(Some(request)) => {
                        let reversed: String = request.chars().rev().collect();
                        if let Err(e) = send(&mut replies, &reversed) {
                            eprintln!("server: {e:#}");
                            return 1;
                        }
                    }
                    Err(e) => {
                        eprintln!("server: {e:#}");
                        return 1;
                    }
                }
            }
        })?;
        let pid = server.pid;
        println!("client pid={} server={pid}", me());
        for line in std::io::stdin().lock().lines() {
            let request = line.context("reading stdin")?;
            let reply = server.ask(&request)?;
            println!("reply: {reply}");
        }
        let ending = server.stop()?;
        println!("client: server {pid} {ending}");
        Ok(())
    })
}
