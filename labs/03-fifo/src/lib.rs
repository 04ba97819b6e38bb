//! Lab 03 — named pipes (FIFOs): the string-reversing server and its clients.
//!
//! A FIFO is a pipe with a name in the file system, so processes that are
//! not parent and child can find it. The server and its clients talk like
//! this, all in one directory:
//!
//! - the server creates the FIFO `requests` and reads requests from it, one
//!   per line: `PID TEXT`;
//! - each client creates a FIFO of its own, `reply-PID`, and writes its
//!   request to `requests` in a single write() of at most PIPE_BUF bytes;
//! - the server writes TEXT reversed, one line, to `reply-PID`: only that
//!   client reads it, so no reply can reach the wrong client;
//! - the text `end` stops the server, which removes `requests`.
//!
//! The programs in `src/bin/` are given: `server` and `client` call the
//! functions below, and the checker runs them (`cargo lab check 3`).
//! Edit this file only.
//!
//! Read chapter 3 of the book first; `cargo lab hint 3` helps when stuck.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{FcntlArg, OFlag, fcntl};

pub mod given;

/// Creates a FIFO at `path` that only its owner may read and write.
///
/// A FIFO left behind by a run that crashed (a stale FIFO) is replaced. One
/// that a live process still reads is not: that would steal its name.
pub fn make_fifo(path: &Path) -> Result<()> {
    // TODO:
    // 1. `nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)`.
    // 2. If it fails with `Errno::EEXIST`, something is already there. If
    //    it is a FIFO (`std::fs::symlink_metadata`, `FileTypeExt::is_fifo`)
    //    that nobody reads (`open_for_writing` returns `None`), it is stale:
    //    remove it and call mkfifo again. Otherwise fail with a clear error.
    // 3. Any other error: fail, with the path in the context.
    let _ = path;
    todo!("make_fifo: mkfifo, replacing a stale FIFO")
}

/// Opens `path` for writing without waiting for a reader: `None` if nobody
/// has it open for reading (the open fails with ENXIO).
pub fn open_for_writing(path: &Path) -> Result<Option<File>> {
    // TODO: `OpenOptions::new().write(true)`, with
    // `.custom_flags(OFlag::O_NONBLOCK.bits())` (from
    // `std::os::unix::fs::OpenOptionsExt`): without O_NONBLOCK, opening a
    // FIFO for writing waits until someone opens it for reading. Return
    // `Ok(None)` when the error is ENXIO (`e.raw_os_error()`), the file
    // otherwise.
    let _ = (path, OpenOptions::new());
    todo!("open_for_writing: a non-blocking open, ENXIO means no reader")
}

/// Clears O_NONBLOCK: reads and writes on `file` wait again.
pub fn make_blocking(file: &File) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL).context("F_GETFL")?);
    fcntl(file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).context("F_SETFL")?;
    Ok(())
}

/// The read end of a FIFO, held so that reading waits for the next message
/// instead of returning end of file whenever no writer is left.
pub struct Listener {
    reader: BufReader<File>,
    /// A write end of our own, never written to. While it is open the FIFO
    /// always has a writer, so a read waits for data rather than returning
    /// end of file between two clients.
    _writer: File,
}

impl Listener {
    /// Opens the FIFO at `path` for reading, without waiting for a writer.
    pub fn open(path: &Path) -> Result<Listener> {
        // TODO:
        // 1. Open `path` for reading with O_NONBLOCK: a plain open would
        //    wait until some process opens the FIFO for writing.
        // 2. Check that it is a FIFO (`file.metadata()`).
        // 3. Open it for writing too, and keep that end (`_writer`): then
        //    read() never returns end of file when a client closes.
        // 4. `make_blocking` on the read end, so that reads wait for data.
        let _ = path;
        todo!("Listener::open: read end without waiting, plus a write end of our own")
    }

    /// Waits for the next message and returns it without its newline.
    pub fn receive(&mut self) -> Result<String> {
        // TODO: one read() may return half a message, or several. Read up
        // to the newline with `BufRead::read_until(b'\n', ...)` on
        // `self.reader` (it keeps what follows for the next call), fail if
        // the line does not end with '\n', and return it without the
        // newline (`String::from_utf8_lossy`).
        let _ = &mut self.reader;
        todo!("Listener::receive: read one line")
    }
}

/// Writes `message` and a newline to the FIFO at `path`, in one write().
///
/// Fails at once, instead of waiting forever, if nobody reads the FIFO.
pub fn send(path: &Path, message: &str) -> Result<()> {
    // TODO:
    // 1. Refuse a message with a newline in it, and one whose line
    //    (message + "\n") is longer than `given::PIPE_BUF` bytes.
    // 2. `open_for_writing`; `None` means nobody reads: fail.
    // 3. `make_blocking`, so that a full FIFO makes us wait.
    // 4. Write the whole line with ONE `nix::unistd::write` call (not
    //    `write!`, which may write it in pieces): at most PIPE_BUF bytes in
    //    one write() arrive in one piece. Try again on EINTR.
    let _ = (path, message);
    todo!("send: one atomic write of one line")
}

/// Splits a request `PID TEXT` at its first space. The text may contain
/// spaces of its own.
pub fn parse_request(request: &str) -> Option<(u32, &str)> {
    // TODO: `split_once(' ')`, then parse the pid (a number above 0).
    let _ = request;
    todo!("parse_request: `PID TEXT`")
}

/// The text backwards, character by character: reversing the bytes would
/// tear apart the UTF-8 encoding of `ñ` or `é`.
pub fn reverse(text: &str) -> String {
    // TODO: reverse the characters (`chars()`), not the bytes.
    let _ = text;
    todo!("reverse: the characters in reverse order")
}

/// The string-reversing server.
pub struct Server {
    dir: PathBuf,
    path: PathBuf,
    requests: Listener,
}

impl Server {
    /// Creates the FIFO `requests` in `dir` and starts listening on it.
    pub fn open(dir: &Path) -> Result<Server> {
        // TODO: `make_fifo(&given::requests_fifo(dir))`, then
        // `Listener::open` on it (remove the FIFO again if that fails).
        let _ = dir;
        todo!("Server::open: make the request FIFO and listen on it")
    }

    /// Answers requests until one says `end`. Returns how many it answered.
    pub fn serve(&mut self) -> Result<u64> {
        // TODO: loop: receive a request, `parse_request` it (skip a
        // malformed one with a message on stderr), return at `end`, and
        // `send` the reversed text to the client's own FIFO
        // (`given::reply_fifo(&self.dir, pid)`). A client that is gone
        // must not stop the server: report it on stderr and go on.
        let _ = (&self.dir, &mut self.requests);
        todo!("Server::serve: answer each request on its client's FIFO")
    }
}

impl Drop for Server {
    /// Removes `requests` when the server stops, whether it stops at `end`
    /// or on an error: the name must not outlive the server.
    fn drop(&mut self) {
        // TODO: remove `self.path` (`std::fs::remove_file`); report an
        // error on stderr, a destructor cannot return it.
        let _ = &self.path;
        todo!("Server's drop: remove the request FIFO")
    }
}

/// A client of the string-reversing server.
pub struct Client {
    pid: u32,
    requests: PathBuf,
    path: PathBuf,
    replies: Listener,
}

impl Client {
    /// Creates this client's reply FIFO `reply-PID` in `dir` and listens on
    /// it, before any request is sent: the server's reply then always finds
    /// its reader there.
    pub fn connect(dir: &Path) -> Result<Client> {
        // TODO: the FIFO is `given::reply_fifo(dir, std::process::id())`:
        // make it, listen on it (remove it again if that fails), and
        // remember where the server's FIFO is (`given::requests_fifo`).
        let _ = dir;
        todo!("Client::connect: make this client's reply FIFO and listen on it")
    }

    /// Sends `text` to the server and waits for its reply. No sleep: the
    /// read blocks until the reply is there, and only this client reads
    /// this FIFO.
    pub fn ask(&mut self, text: &str) -> Result<String> {
        // TODO: refuse `end` (it gets no reply); `send` "PID TEXT" to the
        // server's FIFO; then receive the reply from this client's own.
        let _ = (text, &mut self.replies);
        todo!("Client::ask: send the request, then wait for the reply")
    }

    /// Asks the server to stop (the request `end`, which gets no reply).
    pub fn stop_server(&mut self) -> Result<()> {
        send(&self.requests, &format!("{} end", self.pid))
    }
}

impl Drop for Client {
    /// Removes the reply FIFO: it belongs to this client alone.
    fn drop(&mut self) {
        // TODO: remove `self.path`, reporting an error on stderr.
        let _ = &self.path;
        todo!("Client's drop: remove the reply FIFO")
    }
}
