//! Lab 02 — anonymous pipes.
//!
//! You write the plumbing that connects a parent and its children:
//!
//! - [`spawn_reader`] and [`spawn_writer`] start a child at the other end
//!   of a new pipe, each process keeping only the end it uses;
//! - [`collect`] gathers everything a child writes, however much it is;
//! - [`send`] and [`receive`] frame messages as lines, [`produce`] and
//!   [`consume`] chat until a sentinel;
//! - [`spawn_server`] holds a conversation over two pipes;
//! - [`pipeline`] is the shell's `ls -l | wc -l`: pipe, fork, dup2, exec.
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 2`). Edit this file only.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid, dup2_stdin, dup2_stdout, execvp, fork, pipe};

pub mod given;

pub use given::{Ending, join};

// ANCHOR: spawn_reader
/// Starts a child process that runs `consume` on the read end of a new
/// pipe, and exits with the status it returns. The parent gets the child's
/// pid and the write end: what it writes there, the child reads.
pub fn spawn_reader(consume: impl FnOnce(File) -> i32) -> Result<(Pid, File)> {
    let (read_end, write_end) = pipe().context("pipe")?;
    // Text still in stdout's buffer would be printed by both processes.
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // The child only reads. While any write end stays open
            // anywhere, even here, read() can never return end of file.
            drop(write_end);
            given::run_child(|| consume(File::from(read_end)))
        }
        ForkResult::Parent { child } => {
            // The parent only writes. Closing its read end lets the kernel
            // tell it when the reader is gone (EPIPE) instead of filling
            // the pipe and blocking forever.
            drop(read_end);
            Ok((child, File::from(write_end)))
        }
    }
}
// ANCHOR_END: spawn_reader

// ANCHOR: spawn_writer
/// Starts a child process that runs `produce` on the write end of a new
/// pipe. The parent gets the child's pid and the read end.
pub fn spawn_writer(produce: impl FnOnce(File) -> i32) -> Result<(Pid, File)> {
    let (read_end, write_end) = pipe().context("pipe")?;
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(read_end);
            given::run_child(|| produce(File::from(write_end)))
        }
        ForkResult::Parent { child } => {
            // If the parent kept the write end, its own read() would wait
            // for itself at the end of the data.
            drop(write_end);
            Ok((child, File::from(read_end)))
        }
    }
}
// ANCHOR_END: spawn_writer

// ANCHOR: collect
/// Runs `produce` in a child that writes into a pipe, and returns every
/// byte it wrote and how it ended.
pub fn collect(produce: impl FnOnce(File) -> i32) -> Result<(Vec<u8>, Ending)> {
    let (pid, mut from_child) = spawn_writer(produce)?;
    // Read first, wait after. A pipe holds 64 KiB: a child with more to
    // say blocks in write() until someone reads, so waiting for it to exit
    // before reading would wait forever.
    let mut data = Vec::new();
    let read = from_child.read_to_end(&mut data);
    drop(from_child);
    // Reap the child even if reading failed.
    let ending = join(pid)?;
    read.context("reading the pipe")?;
    Ok((data, ending))
}
// ANCHOR_END: collect

/// The longest message [`send`] accepts: with its newline, one message is
/// at most `PIPE_BUF` bytes, which the kernel writes all at once.
pub const MAX_MESSAGE: usize = libc::PIPE_BUF - 1;

// ANCHOR: send
/// Sends `message` as one line, in one `write()`.
pub fn send(to: &mut File, message: &str) -> Result<()> {
    ensure!(!message.contains('\n'), "a message cannot hold a newline");
    ensure!(
        message.len() <= MAX_MESSAGE,
        "a message is at most {MAX_MESSAGE} bytes, this one has {}",
        message.len()
    );
    let mut line = Vec::with_capacity(message.len() + 1);
    line.extend_from_slice(message.as_bytes());
    line.push(b'\n');
    // A write of at most PIPE_BUF bytes to a pipe is atomic: all of it
    // goes in at once, never mixed with another writer's bytes, never cut
    // short. So one write() is one whole message.
    loop {
        match nix::unistd::write(&*to, &line) {
            Ok(n) if n == line.len() => return Ok(()),
            Ok(n) => bail!("short write: {n} of {} bytes", line.len()),
            // A signal arrived before anything was written: try again.
            Err(Errno::EINTR) => continue,
            // EPIPE: every read end is closed, nobody will ever read this.
            Err(e) => return Err(e).context("writing a message to the pipe"),
        }
    }
}
// ANCHOR_END: send

// ANCHOR: receive
/// Receives one message sent by [`send`]; `None` at end of file.
pub fn receive(from: &mut impl BufRead) -> Result<Option<String>> {
    let mut line = String::new();
    // read_line returns as soon as one whole line is in: it does not wait
    // for more messages, nor for end of file. (It retries EINTR itself.)
    let n = from
        .read_line(&mut line)
        .context("reading a message from the pipe")?;
    if n == 0 {
        return Ok(None);
    }
    match line.strip_suffix('\n') {
        Some(message) => Ok(Some(message.to_string())),
        None => bail!("the writer closed the pipe in the middle of a message: {line:?}"),
    }
}
// ANCHOR_END: receive

/// The message that ends a chat.
pub const SENTINEL: &str = "END";

// ANCHOR: produce
/// Sends each message in turn, as soon as it comes, and stops after
/// sending [`SENTINEL`]. Returns how many messages were sent before it.
pub fn produce(to: &mut File, messages: impl IntoIterator<Item = Result<String>>) -> Result<usize> {
    // `sent` counts the messages before this one.
    for (sent, message) in messages.into_iter().enumerate() {
        let message = message?;
        send(to, &message)?;
        if message == SENTINEL {
            return Ok(sent);
        }
    }
    bail!("the messages ran out before the sentinel {SENTINEL:?}")
}
// ANCHOR_END: produce

// ANCHOR: consume
/// Receives messages and hands each one to `on_message` as soon as it
/// arrives, until [`SENTINEL`]. Returns how many came before it.
pub fn consume(from: File, mut on_message: impl FnMut(&str)) -> Result<usize> {
    let mut from = BufReader::new(from);
    let mut received = 0;
    // Stop at the sentinel, not at end of file: the producer may keep
    // its end open for a while (it does in this lab's `chat`).
    while let Some(message) = receive(&mut from)? {
        if message == SENTINEL {
            return Ok(received);
        }
        on_message(&message);
        received += 1;
    }
    bail!("the producer closed the pipe before sending the sentinel {SENTINEL:?}")
}
// ANCHOR_END: consume

// ANCHOR: server
/// A child process that answers requests: one pipe carries the requests
/// to it, another carries its replies back.
pub struct Server {
    pub pid: Pid,
    requests: File,
    replies: BufReader<File>,
}

/// Starts a server child that runs `serve` with its two ends: the read
/// end of the requests pipe and the write end of the replies pipe.
pub fn spawn_server(serve: impl FnOnce(BufReader<File>, File) -> i32) -> Result<Server> {
    // A pipe goes one way. A conversation needs two.
    let (requests_in, requests_out) = pipe().context("pipe for requests")?;
    let (replies_in, replies_out) = pipe().context("pipe for replies")?;
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // The server reads requests and writes replies; nothing else.
            drop(requests_out);
            drop(replies_in);
            given::run_child(|| {
                serve(
                    BufReader::new(File::from(requests_in)),
                    File::from(replies_out),
                )
            })
        }
        ForkResult::Parent { child } => {
            drop(requests_in);
            drop(replies_out);
            Ok(Server {
                pid: child,
                requests: File::from(requests_out),
                replies: BufReader::new(File::from(replies_in)),
            })
        }
    }
}

impl Server {
    /// Sends one request and waits for its reply.
    pub fn ask(&mut self, request: &str) -> Result<String> {
        send(&mut self.requests, request)?;
        receive(&mut self.replies)?.context("the server closed its end before replying")
    }

    /// Closes the requests pipe (the server reads end of file and ends),
    /// then waits for the server.
    pub fn stop(self) -> Result<Ending> {
        let Server {
            pid,
            requests,
            replies,
        } = self;
        drop(requests);
        drop(replies);
        join(pid)
    }
}
// ANCHOR_END: server

// ANCHOR: pipeline
/// Runs `left | right`, like the shell: `left`'s standard output goes into
/// a pipe, `right` reads it as its standard input. Waits for both and says
/// how each ended.
pub fn pipeline(left: &[String], right: &[String]) -> Result<(Ending, Ending)> {
    // Build the C strings before fork: the children only dup2 and exec.
    let left = c_strings(left)?;
    let right = c_strings(right)?;
    let (read_end, write_end) = pipe().context("pipe")?;
    std::io::stdout().flush().context("flushing stdout")?;

    // SAFETY: the programs of this lab are single-threaded.
    let writer = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // fd 1 becomes a copy of the write end...
            let redirected = dup2_stdout(&write_end);
            // ...and the originals go: exec keeps every descriptor that is
            // not close-on-exec, and destructors never run after exec.
            drop(read_end);
            drop(write_end);
            exec(&left, redirected)
        }
        ForkResult::Parent { child } => child,
    };
    // ANCHOR_END: pipeline
    // ANCHOR: pipeline_rest
    // SAFETY: as above.
    let reader = match unsafe { fork() }.context("fork") {
        Ok(ForkResult::Child) => {
            let redirected = dup2_stdin(&read_end);
            drop(read_end);
            drop(write_end);
            exec(&right, redirected)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            drop(write_end);
            let _ = join(writer);
            return Err(e);
        }
    };
    // The parent uses neither end. Above all it must close the write end:
    // `wc` counts until end of file, and there is no end of file while
    // any process holds a write end open.
    drop(read_end);
    drop(write_end);
    Ok((join(writer)?, join(reader)?))
}
// ANCHOR_END: pipeline_rest

fn c_strings(argv: &[String]) -> Result<Vec<CString>> {
    ensure!(!argv.is_empty(), "an empty command");
    argv.iter()
        .map(|a| CString::new(a.as_str()).with_context(|| format!("{a:?} holds a NUL byte")))
        .collect()
}

// ANCHOR: exec
/// In a child: replaces the process with `argv`. Never returns.
fn exec(argv: &[CString], redirected: nix::Result<()>) -> ! {
    if let Err(e) = redirected {
        eprintln!("dup2: {e}");
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(126) }
    }
    // Rust programs ignore SIGPIPE, and an ignored signal stays ignored
    // across exec. Give the new program the default, as a shell would: a
    // writer whose reader has gone away should die quietly.
    // SAFETY: no handler is installed, only the default disposition.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let e = execvp(&argv[0], argv).unwrap_err();
    eprintln!("cannot run {:?}: {e}", argv[0]);
    // SAFETY: ends the child at once, as a failed exec must.
    unsafe { libc::_exit(127) }
}
// ANCHOR_END: exec
