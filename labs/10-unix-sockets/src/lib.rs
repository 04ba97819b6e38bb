//! Lab 10 — Unix domain sockets.
//!
//! You write the tutorials' string-reversing server again, this time over a
//! Unix stream socket, and a few things only sockets can do:
//!
//! - [`bind_fresh`] claims the socket's path, even when a crashed run left
//!   its socket file behind, but never from a server that is still alive;
//! - [`send`] and [`receive`] frame requests and replies as lines, so that
//!   a request that arrives in pieces is still read whole;
//! - [`answer`] holds one client's conversation, [`serve`] serves many
//!   clients at once and removes the socket file when it stops;
//! - [`spawn_worker`] connects a parent and its child with `socketpair`;
//! - [`send_fd`] and [`recv_fd`] pass an open file descriptor to another
//!   process (`SCM_RIGHTS`).
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 10`). Edit this file only.
//! Read chapter 10 of the book first; `cargo lab hint 10` helps when stuck.

use std::io::{BufRead, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::Result;
use nix::unistd::Pid;

pub mod given;

pub use given::{Ending, join, reverse};

/// The request that stops the server (the tutorials' `end`).
pub const STOP: &str = "end";

/// The longest request or reply, in bytes, newline excluded. A line that
/// never ends must not eat all the server's memory.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Binds a listening socket at `path`. A socket file left there by a run
/// that crashed is removed first; a server that is still listening there
/// is left alone, and that is an error.
pub fn bind_fresh(path: &Path) -> Result<UnixListener> {
    // TODO:
    // 1. `UnixListener::bind(path)`; if it works, done.
    // 2. On `ErrorKind::AddrInUse` a file is in the way. Remove it only if
    //    it is a socket (`symlink_metadata`, `FileTypeExt::is_socket`) and
    //    nobody listens there: `UnixStream::connect(path)` fails with
    //    `ErrorKind::ConnectionRefused` when the server is gone. If the
    //    connection works, a live server owns the path: return an error.
    // 3. `std::fs::remove_file(path)`, then bind again.
    let _ = path;
    todo!("bind_fresh: bind, and replace a stale socket file")
}

/// Sends `message` as one line. `write_all` goes on after a short write
/// and retries when a signal interrupts it.
pub fn send(to: impl Write, message: &str) -> Result<()> {
    // TODO: refuse a message with a newline in it or longer than
    // MAX_MESSAGE, then `write_all` the message and a '\n' (one buffer).
    let _ = (to, message);
    todo!("send: write the message and its newline")
}

/// Receives one line sent by [`send`]; `None` when the other side has hung
/// up. However the bytes arrive (one at a time, or two messages in one
/// `read`), the buffered reader keeps them until the newline is in.
pub fn receive(from: &mut impl BufRead) -> Result<Option<String>> {
    // TODO: a stream has no message boundaries: one read() may return half
    // a request, or two. Read up to the newline with `read_until(b'\n')`
    // (through `.take(MAX_MESSAGE as u64 + 1)`): 0 bytes means the other
    // side hung up (`None`); a line without its '\n' at the end is an
    // error. Decode the whole line with `String::from_utf8`.
    let _ = from;
    todo!("receive: read one whole line")
}

/// How a conversation with one client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed its end after this many requests.
    HungUp(usize),
    /// The client sent [`STOP`] after this many requests.
    Stop(usize),
}

/// Answers one client: reads each request from `stream` and sends the
/// reversed text back on the same stream, until the client hangs up or
/// asks the server to stop.
pub fn answer(stream: &UnixStream) -> Result<Ended> {
    // TODO: `&UnixStream` reads and writes. Wrap it in a `BufReader` for
    // `receive`, and `send(stream, &reverse(&request))` each reply. Stop
    // at `None` (Ended::HungUp) or at the request STOP (Ended::Stop).
    let _ = stream;
    todo!("answer: receive requests and send their reverse on the same stream")
}

/// Serves clients on `listener`, each in a thread of its own, until one of
/// them sends [`STOP`]. Then it accepts no one else, removes the socket
/// file at `path`, waits for the clients still connected to hang up, and
/// returns how many connections it served.
pub fn serve(listener: &UnixListener, path: &Path) -> Result<usize> {
    // TODO:
    // 1. `std::thread::scope(|scope| ...)`, and in it loop on
    //    `listener.accept()` (on an error, report it and go on).
    // 2. `scope.spawn` a thread per connection that calls `answer`: a
    //    client that is slow to send must not hold up the others.
    // 3. When `answer` returns Ended::Stop, set a shared `AtomicBool` and
    //    wake the accept loop with `UnixStream::connect(path)`; the loop
    //    checks the flag after each accept and breaks.
    // 4. After the loop, `std::fs::remove_file(path)`: a socket file stays
    //    on disk after its server is gone, unless the server removes it.
    let _ = (listener, path);
    todo!("serve: a thread per client, stop on `end`, remove the socket file")
}

/// Starts a child process that runs `work` on one end of a new socket
/// pair, and exits with the status it returns. The parent gets the child's
/// pid and the other end. Unlike a pipe, each end reads and writes.
pub fn spawn_worker(work: impl FnOnce(UnixStream) -> i32) -> Result<(Pid, UnixStream)> {
    // TODO:
    // 1. `nix::sys::socket::socketpair(AddressFamily::Unix,
    //    SockType::Stream, None, SockFlag::SOCK_CLOEXEC)`: two OwnedFd.
    // 2. Flush stdout, then `unsafe { nix::unistd::fork() }`.
    // 3. The child drops the parent's end and calls
    //    `given::run_child(|| work(UnixStream::from(child_end)))`.
    // 4. The parent drops the child's end and returns its own.
    let _ = work;
    todo!("spawn_worker: socketpair, fork, one end each")
}

/// Sends the open descriptor `fd` over the Unix socket `over`, with
/// `payload` (at least one byte) as the message it travels with. The
/// receiver gets a new descriptor for the same open file.
pub fn send_fd(over: &UnixStream, fd: BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
    // TODO: `nix::sys::socket::sendmsg::<()>(over.as_raw_fd(), &[IoSlice::new(payload)],
    // &[ControlMessage::ScmRights(&[fd.as_raw_fd()])], MsgFlags::empty(), None)`.
    // Retry on EINTR; if fewer bytes than the payload went, write the
    // rest with `write_all`. Sending the number of the descriptor as
    // text does not work: a number means nothing in another process.
    let _ = (over, fd, payload);
    todo!("send_fd: sendmsg with an SCM_RIGHTS control message")
}

/// Receives a descriptor sent by [`send_fd`], and the first bytes of its
/// payload into `buf`. Returns how many bytes arrived, and the descriptor.
pub fn recv_fd(over: &UnixStream, buf: &mut [u8]) -> Result<(usize, OwnedFd)> {
    // TODO: `recvmsg::<()>` with `[IoSliceMut::new(buf)]`, a control buffer
    // from `nix::cmsg_space!(RawFd)` and `MsgFlags::MSG_CMSG_CLOEXEC`.
    // Retry on EINTR. Among `msg.cmsgs()?` find
    // `ControlMessageOwned::ScmRights(fds)`, and take ownership of each
    // with `unsafe { OwnedFd::from_raw_fd(fd) }`. No descriptor is an
    // error.
    let _ = (over, buf);
    todo!("recv_fd: recvmsg and take the SCM_RIGHTS descriptor")
}
