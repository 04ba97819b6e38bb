//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

/// The server's well-known FIFO: every client writes its requests here.
pub const REQUESTS: &str = "requests";

/// The largest write the kernel promises to keep in one piece on a pipe or
/// a FIFO (4096 bytes on Linux). A longer write may be split, and the pieces
/// mixed with other writers' data.
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// Where the server's request FIFO lives in `dir`.
pub fn requests_fifo(dir: &Path) -> PathBuf {
    dir.join(REQUESTS)
}

/// Where the reply FIFO of the client with process id `pid` lives in `dir`:
/// `reply-PID`.
pub fn reply_fifo(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("reply-{pid}"))
}

/// Runs a program's body, printing its error (with context) on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    let result = body();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// This process's id.
pub fn me() -> u32 {
    std::process::id()
}
