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

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, write};

pub mod given;

use given::{PIPE_BUF, reply_fifo, requests_fifo};

// ANCHOR: make_fifo
/// Creates a FIFO at `path` that only its owner may read and write.
///
/// A FIFO left behind by a run that crashed (a stale FIFO) is replaced. One
/// that a live process still reads is not: that would steal its name.
pub fn make_fifo(path: &Path) -> Result<()> {
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    match mkfifo(path, mode) {
        Ok(()) => return Ok(()),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).with_context(|| format!("mkfifo {}", path.display())),
    }
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("looking at the existing {}", path.display()))?;
    ensure!(
        meta.file_type().is_fifo(),
        "{} exists and is not a FIFO: not touching it",
        path.display()
    );
    // Is anyone reading it? A non-blocking open for writing succeeds only
    // if some process has the FIFO open for reading.
    if open_for_writing(path)?.is_some() {
        bail!("{} is in use: another process is reading it", path.display());
    }
    // Stale: nobody has it open, so it holds no data either. Replace it.
    std::fs::remove_file(path)
        .with_context(|| format!("removing the stale FIFO {}", path.display()))?;
    mkfifo(path, mode).with_context(|| format!("mkfifo {}", path.display()))
}
// ANCHOR_END: make_fifo

// ANCHOR: open_for_writing
/// Opens `path` for writing without waiting for a reader: `None` if nobody
/// has it open for reading (the open fails with ENXIO).
pub fn open_for_writing(path: &Path) -> Result<Option<File>> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {} for writing", path.display())),
    }
}
// ANCHOR_END: open_for_writing

/// Clears O_NONBLOCK: reads and writes on `file` wait again.
pub fn make_blocking(file: &File) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL).context("F_GETFL")?);
    fcntl(file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).context("F_SETFL")?;
    Ok(())
}

// ANCHOR: listener
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
        // A plain open for reading would block until some process opens
        // the FIFO for writing. O_NONBLOCK returns at once.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .with_context(|| format!("opening {} for reading", path.display()))?;
        let kind = reader.metadata().context("fstat")?.file_type();
        ensure!(kind.is_fifo(), "{} is not a FIFO", path.display());
        // The FIFO has a reader now (us), so this open does not wait.
        let writer = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {} for writing", path.display()))?;
        // Reads must wait for data, not fail with EAGAIN.
        make_blocking(&reader)?;
        Ok(Listener {
            reader: BufReader::new(reader),
            _writer: writer,
        })
    }
    // ANCHOR_END: listener

    // ANCHOR: receive
    /// Waits for the next message and returns it without its newline.
    pub fn receive(&mut self) -> Result<String> {
        // One read() may return half a message, or several messages:
        // messages end with a newline, and BufReader keeps what follows
        // one for the next call. (read_until retries EINTR itself.)
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .context("reading a FIFO")?;
        if line.pop() != Some(b'\n') {
            bail!("end of file in the middle of a message");
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
    // ANCHOR_END: receive
}

// ANCHOR: send
/// Writes `message` and a newline to the FIFO at `path`, in one write().
///
/// Fails at once, instead of waiting forever, if nobody reads the FIFO.
pub fn send(path: &Path, message: &str) -> Result<()> {
    ensure!(!message.contains('\n'), "a message cannot contain a newline");
    let line = format!("{message}\n");
    ensure!(
        line.len() <= PIPE_BUF,
        "a message of {} bytes is longer than PIPE_BUF ({PIPE_BUF} bytes): \
         the kernel could split it and mix it with other clients' messages",
        line.len()
    );
    let Some(fifo) = open_for_writing(path)? else {
        bail!("nobody is reading {}", path.display());
    };
    // If the FIFO is full, wait for room rather than fail with EAGAIN.
    make_blocking(&fifo)?;
    // A write() of at most PIPE_BUF bytes to a FIFO is atomic: all of it
    // lands in one piece, never mixed with another writer's bytes. So it
    // must be ONE write() call, not a message written in parts.
    loop {
        match write(&fifo, line.as_bytes()) {
            Ok(n) if n == line.len() => return Ok(()),
            Ok(n) => bail!("wrote {n} of {} bytes to {}", line.len(), path.display()),
            // Interrupted before anything was written: try again.
            Err(Errno::EINTR) => continue,
            Err(Errno::EPIPE) => bail!("the reader of {} went away", path.display()),
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
}
// ANCHOR_END: send

// ANCHOR: protocol
/// Splits a request `PID TEXT` at its first space. The text may contain
/// spaces of its own.
pub fn parse_request(request: &str) -> Option<(u32, &str)> {
    let (pid, text) = request.split_once(' ')?;
    let pid = pid.parse::<u32>().ok().filter(|&pid| pid > 0)?;
    Some((pid, text))
}

/// The text backwards, character by character: reversing the bytes would
/// tear apart the UTF-8 encoding of `ñ` or `é`.
pub fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}
// ANCHOR_END: protocol

/// The string-reversing server.
pub struct Server {
    dir: PathBuf,
    path: PathBuf,
    requests: Listener,
}

impl Server {
    // ANCHOR: server_open
    /// Creates the FIFO `requests` in `dir` and starts listening on it.
    pub fn open(dir: &Path) -> Result<Server> {
        let path = requests_fifo(dir);
        make_fifo(&path)?;
        let requests = match Listener::open(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(Server {
            dir: dir.to_path_buf(),
            path,
            requests,
        })
    }
    // ANCHOR_END: server_open

    // ANCHOR: serve
    /// Answers requests until one says `end`. Returns how many it answered.
    pub fn serve(&mut self) -> Result<u64> {
        let mut answered = 0;
        loop {
            let request = self.requests.receive()?;
            let Some((pid, text)) = parse_request(&request) else {
                eprintln!("server: ignoring a malformed request: {request:?}");
                continue;
            };
            if text == "end" {
                return Ok(answered);
            }
            // The reply goes to this client's own FIFO: no other client
            // reads it, so no other client can take it.
            match send(&reply_fifo(&self.dir, pid), &reverse(text)) {
                Ok(()) => answered += 1,
                // A client that went away must not stop the server.
                Err(e) => eprintln!("server: no reply for client {pid}: {e:#}"),
            }
        }
    }
    // ANCHOR_END: serve
}

// ANCHOR: server_drop
impl Drop for Server {
    /// Removes `requests` when the server stops, whether it stops at `end`
    /// or on an error: the name must not outlive the server.
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!("server: removing {}: {e}", self.path.display());
        }
    }
}
// ANCHOR_END: server_drop

/// A client of the string-reversing server.
pub struct Client {
    pid: u32,
    requests: PathBuf,
    path: PathBuf,
    replies: Listener,
}

impl Client {
    // ANCHOR: client_connect
    /// Creates this client's reply FIFO `reply-PID` in `dir` and listens on
    /// it, before any request is sent: the server's reply then always finds
    /// its reader there.
    pub fn connect(dir: &Path) -> Result<Client> {
        let pid = std::process::id();
        let path = reply_fifo(dir, pid);
        make_fifo(&path)?;
        let replies = match Listener::open(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(Client {
            pid,
            requests: requests_fifo(dir),
            path,
            replies,
        })
    }
    // ANCHOR_END: client_connect

    // ANCHOR: ask
    /// Sends `text` to the server and waits for its reply. No sleep: the
    /// read blocks until the reply is there, and only this client reads
    /// this FIFO.
    pub fn ask(&mut self, text: &str) -> Result<String> {
        ensure!(text != "end", "`end` gets no reply: use stop_server");
        send(&self.requests, &format!("{} {text}", self.pid))?;
        self.replies.receive()
    }
    // ANCHOR_END: ask

    /// Asks the server to stop (the request `end`, which gets no reply).
    pub fn stop_server(&mut self) -> Result<()> {
        send(&self.requests, &format!("{} end", self.pid))
    }
}

// ANCHOR: client_drop
impl Drop for Client {
    /// Removes the reply FIFO: it belongs to this client alone.
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!("client: removing {}: {e}", self.path.display());
        }
    }
}
// ANCHOR_END: client_drop
