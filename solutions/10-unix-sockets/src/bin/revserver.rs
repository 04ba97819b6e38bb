//! The string-reversing server over a Unix stream socket: every line a
//! client sends comes back reversed, on that client's own connection.
//! The request `end` stops the server.
//!
//! Usage: `revserver PATH` (try `revclient PATH` in another terminal).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use unix_sockets::given::{self, me};
use unix_sockets::{bind_fresh, serve};

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let path = PathBuf::from(given::args().first().context("usage: revserver PATH")?);
        let listener = bind_fresh(&path)?;
        println!("server pid={} listening on {}", me(), path.display());
        let served = serve(&listener, &path)?;
        println!("server: stopped after {served} connections");
        Ok(())
    })
}
// ANCHOR_END: main
