//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{main_with, me};

use std::path::{Path, PathBuf};

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
