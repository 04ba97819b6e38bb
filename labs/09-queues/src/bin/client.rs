//! A client of `server`: each line typed is a request, and the reply (the
//! line reversed) is printed. The line `end` stops the server; Ctrl-D
//! stops only this client.
//!
//! Usage: `client` (with `server` running).

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use queues::Client;
use queues::given::{self, END, me, reply_queue_name};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let client = Client::connect()?;
        println!("client pid={} replies={}", me(), reply_queue_name(me()));
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            if line == END {
                client.stop_server()?;
                println!("client: asked the server to stop");
                break;
            }
            let reply = client.ask(&line)?;
            println!("reply: {reply}");
        }
        // Dropping the client removes its reply queue.
        drop(client);
        Ok(())
    })
}
// ANCHOR_END: main
