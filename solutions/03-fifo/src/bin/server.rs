//! The string-reversing server: reads `PID TEXT` requests from the FIFO
//! `requests` in the current directory and answers each one, reversed, on
//! the client's FIFO `reply-PID`. The request text `end` stops it.
//!
//! Usage: `server` (then, in another terminal, `client`).

use std::path::Path;
use std::process::ExitCode;

use fifo::Server;
use fifo::given::{self, me};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let mut server = Server::open(Path::new("."))?;
        println!("server pid={} ready", me());
        let answered = server.serve()?;
        // Dropping the server removes its FIFO.
        drop(server);
        println!("server pid={} done: {answered} requests answered", me());
        Ok(())
    })
}
// ANCHOR_END: main
