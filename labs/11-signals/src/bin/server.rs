//! The forking server: reads `ID TEXT` requests from the FIFO `requests`
//! and answers each one in a worker process of its own, which prints
//! `reply ID TXET`. Workers wait at a gate (standard input) first. SIGTERM
//! or SIGINT stops the server gracefully.
//!
//! Usage: `server [self-pipe|signalfd]`

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use nix::sys::signal::Signal;
use signals::given::{self, me};
use signals::{Server, Signals};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let mode = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "self-pipe".into());
        let watched = [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT];
        // Signals first: a SIGTERM that comes while the server sets up
        // must not kill it before it can clean up.
        let mut signals = match mode.as_str() {
            "self-pipe" => Signals::self_pipe(&watched)?,
            "signalfd" => Signals::signalfd(&watched)?,
            other => bail!("unknown mode {other:?}\nusage: server [self-pipe|signalfd]"),
        };
        let mut server = Server::open(Path::new("."))?;
        println!("server pid={} ready ({mode})", me());
        let answered = server.serve(&mut signals)?;
        // Dropping the server removes its FIFO and its status object.
        drop(server);
        println!("server pid={} stopped: {answered} requests answered", me());
        Ok(())
    })
}
// ANCHOR_END: main
