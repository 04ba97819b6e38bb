//! The string-reversing server over a POSIX message queue (exercise 2 of
//! the tutorials this course grew from): requests come in on one queue, each reply goes out on the
//! queue of the client who asked, and the request `end` stops it.
//!
//! Usage: `server`, then run `client` in other terminals.

use std::process::ExitCode;

use queues::Server;
use queues::given::{self, me, request_queue_name};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let server = Server::create()?;
        println!("server ready pid={} queue={}", me(), request_queue_name());
        let answered = server.serve(|client, text| println!("request from {client}: {text}"))?;
        println!("server: answered {answered} requests, stopping");
        // Dropping the server removes its queue.
        drop(server);
        Ok(())
    })
}
// ANCHOR_END: main
