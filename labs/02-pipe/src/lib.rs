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
//! Read chapter 2 of the book first; `cargo lab hint 2` helps when stuck.

use std::fs::File;
use std::io::{BufRead, BufReader};

use anyhow::Result;
use nix::unistd::Pid;

pub mod given;

pub use given::{Ending, join};

/// Starts a child process that runs `consume` on the read end of a new
/// pipe, and exits with the status it returns. The parent gets the child's
/// pid and the write end: what it writes there, the child reads.
pub fn spawn_reader(consume: impl FnOnce(File) -> i32) -> Result<(Pid, File)> {
    // TODO:
    // 1. `nix::unistd::pipe()` gives (read end, write end), two OwnedFd.
    // 2. Flush stdout, then `unsafe { nix::unistd::fork() }`.
    // 3. In the child: drop the write end (or read() never sees end of
    //    file), then `given::run_child(|| consume(File::from(read_end)))`.
    // 4. In the parent: drop the read end (or writes never get EPIPE),
    //    and return the child's pid and `File::from(write_end)`.
    let _ = consume;
    todo!("spawn_reader: pipe, fork, and keep only the end each side uses")
}

/// Starts a child process that runs `produce` on the write end of a new
/// pipe. The parent gets the child's pid and the read end.
pub fn spawn_writer(produce: impl FnOnce(File) -> i32) -> Result<(Pid, File)> {
    // TODO: the mirror image of `spawn_reader`: the child keeps the write
    // end, the parent the read end.
    let _ = produce;
    todo!("spawn_writer: pipe, fork, child writes, parent reads")
}

/// Runs `produce` in a child that writes into a pipe, and returns every
/// byte it wrote and how it ended.
pub fn collect(produce: impl FnOnce(File) -> i32) -> Result<(Vec<u8>, Ending)> {
    // TODO: `spawn_writer`, read the pipe to its end (`Read::read_to_end`),
    // then `join` the child. Mind the order: a pipe holds 64 KiB, and a
    // child with more to write cannot exit before someone reads.
    let _ = produce;
    todo!("collect: read everything the child writes, then wait for it")
}

/// The longest message [`send`] accepts: with its newline, one message is
/// at most `PIPE_BUF` bytes, which the kernel writes all at once.
pub const MAX_MESSAGE: usize = libc::PIPE_BUF - 1;

/// Sends `message` as one line, in one `write()`.
pub fn send(to: &mut File, message: &str) -> Result<()> {
    // TODO: refuse a message holding '\n' or longer than MAX_MESSAGE; put
    // the message and its '\n' in one buffer and write it with a single
    // `nix::unistd::write` (retry on EINTR). Up to PIPE_BUF bytes, one
    // write() is atomic: never split, never mixed with another writer's.
    let _ = (to, message);
    todo!("send: one message, one line, one write()")
}

/// Receives one message sent by [`send`]; `None` at end of file.
pub fn receive(from: &mut impl BufRead) -> Result<Option<String>> {
    // TODO: `read_line` into a String: 0 bytes means end of file (`None`);
    // otherwise strip the '\n'. A line without its '\n' means the writer
    // closed the pipe in the middle of a message: that is an error. Do not
    // read more than one line: the next message may not exist yet.
    let _ = from;
    todo!("receive: one line, as soon as it is in")
}

/// The message that ends a chat.
pub const SENTINEL: &str = "END";

/// Sends each message in turn, as soon as it comes, and stops after
/// sending [`SENTINEL`]. Returns how many messages were sent before it.
pub fn produce(to: &mut File, messages: impl IntoIterator<Item = Result<String>>) -> Result<usize> {
    // TODO: `send` each message; after sending the sentinel, stop and
    // return the count. Running out of messages first is an error.
    let _ = (to, messages);
    todo!("produce: send until the sentinel")
}

/// Receives messages and hands each one to `on_message` as soon as it
/// arrives, until [`SENTINEL`]. Returns how many came before it.
pub fn consume(from: File, on_message: impl FnMut(&str)) -> Result<usize> {
    // TODO: wrap `from` in a BufReader and `receive` in a loop; stop at
    // the sentinel (do not wait for end of file: the producer keeps its
    // end open). End of file before the sentinel is an error.
    let _ = (from, on_message);
    todo!("consume: receive and hand on each message until the sentinel")
}

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
    // TODO: two pipes, one fork. The child keeps the read end of the
    // requests pipe and the write end of the replies pipe, drops the
    // other two, and runs `serve` with `given::run_child`. The parent
    // keeps the opposite two ends in a `Server`.
    let _ = serve;
    todo!("spawn_server: two pipes, each side keeps two ends")
}

impl Server {
    /// Sends one request and waits for its reply.
    pub fn ask(&mut self, request: &str) -> Result<String> {
        // TODO: `send` on the requests pipe, `receive` on the replies
        // pipe; the server closing its end before replying is an error.
        let _ = (&mut self.requests, &mut self.replies, request);
        todo!("ask: send a request, receive its reply")
    }

    /// Closes the requests pipe (the server reads end of file and ends),
    /// then waits for the server.
    pub fn stop(self) -> Result<Ending> {
        // TODO: drop both ends, then `join` the server.
        todo!("stop: close the requests pipe and wait for the server")
    }
}

/// Runs `left | right`, like the shell: `left`'s standard output goes into
/// a pipe, `right` reads it as its standard input. Waits for both and says
/// how each ended.
pub fn pipeline(left: &[String], right: &[String]) -> Result<(Ending, Ending)> {
    // TODO:
    // 1. Turn both commands into Vec<CString> (before fork), make a pipe,
    //    flush stdout.
    // 2. Fork the left child: `nix::unistd::dup2_stdout(&write_end)`, drop
    //    both original ends (exec keeps every descriptor, and destructors
    //    never run after exec), reset SIGPIPE to SigDfl (Rust ignores it
    //    and exec would keep it ignored), then `execvp`. If exec fails,
    //    print why and `libc::_exit(127)`.
    // 3. Fork the right child the same way with `dup2_stdin(&read_end)`.
    // 4. The parent drops both ends, then joins both children.
    let _ = (left, right);
    todo!("pipeline: pipe, fork twice, dup2, exec")
}
