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

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{ForkResult, Pid, fork};

pub mod given;

pub use given::{Ending, join, reverse};

/// The request that stops the server (the tutorials' `end`).
pub const STOP: &str = "end";

/// The longest request or reply, in bytes, newline excluded. A line that
/// never ends must not eat all the server's memory.
pub const MAX_MESSAGE: usize = 64 * 1024;

// ANCHOR: bind_fresh
/// Binds a listening socket at `path`. A socket file left there by a run
/// that crashed is removed first; a server that is still listening there
/// is left alone, and that is an error.
pub fn bind_fresh(path: &Path) -> Result<UnixListener> {
    match UnixListener::bind(path) {
        Ok(listener) => return Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(e).with_context(|| format!("bind {}", path.display())),
    }
    // Something is at `path`. Only a socket may be removed: never delete a
    // file that merely has the wrong name.
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("looking at {}", path.display()))?;
    ensure!(
        meta.file_type().is_socket(),
        "{} exists and is not a socket: not removing it",
        path.display()
    );
    // Is anybody listening? A live server accepts the connection; a socket
    // file whose server is gone refuses it.
    match UnixStream::connect(path) {
        Ok(_) => bail!("another server is already listening on {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) => return Err(e).with_context(|| format!("connect {}", path.display())),
    }
    std::fs::remove_file(path)
        .with_context(|| format!("removing the stale socket file {}", path.display()))?;
    UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))
}
// ANCHOR_END: bind_fresh

// ANCHOR: send
/// Sends `message` as one line. `write_all` goes on after a short write
/// and retries when a signal interrupts it.
pub fn send(mut to: impl Write, message: &str) -> Result<()> {
    ensure!(!message.contains('\n'), "a message cannot hold a newline");
    ensure!(message.len() <= MAX_MESSAGE, "a message is too long");
    let mut line = Vec::with_capacity(message.len() + 1);
    line.extend_from_slice(message.as_bytes());
    line.push(b'\n');
    to.write_all(&line).context("sending a message")
}
// ANCHOR_END: send

// ANCHOR: receive
/// Receives one line sent by [`send`]; `None` when the other side has hung
/// up. However the bytes arrive (one at a time, or two messages in one
/// `read`), the buffered reader keeps them until the newline is in.
pub fn receive(from: &mut impl BufRead) -> Result<Option<String>> {
    let mut line = Vec::new();
    // At most MAX_MESSAGE bytes and the newline.
    let n = from
        .take(MAX_MESSAGE as u64 + 1)
        .read_until(b'\n', &mut line)
        .context("receiving a message")?;
    if n == 0 {
        return Ok(None);
    }
    let Some(b'\n') = line.pop() else {
        // The limit cut the line (the byte just popped was not its end).
        if n > MAX_MESSAGE {
            bail!("a message longer than {MAX_MESSAGE} bytes");
        }
        bail!("the other side hung up in the middle of a message");
    };
    // Only a whole line is decoded: a character cut in two by the network
    // (or by a slow writer) is whole again by now.
    String::from_utf8(line)
        .map(Some)
        .context("a message that is not UTF-8")
}
// ANCHOR_END: receive

/// How a conversation with one client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed its end after this many requests.
    HungUp(usize),
    /// The client sent [`STOP`] after this many requests.
    Stop(usize),
}

// ANCHOR: answer
/// Answers one client: reads each request from `stream` and sends the
/// reversed text back on the same stream, until the client hangs up or
/// asks the server to stop.
pub fn answer(stream: &UnixStream) -> Result<Ended> {
    // `&UnixStream` reads and writes: one socket carries both directions.
    let mut requests = BufReader::new(stream);
    let mut answered = 0;
    while let Some(request) = receive(&mut requests)? {
        if request == STOP {
            return Ok(Ended::Stop(answered));
        }
        send(stream, &reverse(&request))?;
        answered += 1;
    }
    Ok(Ended::HungUp(answered))
}
// ANCHOR_END: answer

// ANCHOR: serve
/// Serves clients on `listener`, each in a thread of its own, until one of
/// them sends [`STOP`]. Then it accepts no one else, removes the socket
/// file at `path`, waits for the clients still connected to hang up, and
/// returns how many connections it served.
pub fn serve(listener: &UnixListener, path: &Path) -> Result<usize> {
    let stop = AtomicBool::new(false);
    let mut served = 0;
    std::thread::scope(|scope| {
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A client that gave up, or no descriptor left (EMFILE):
                // that one connection fails, the server goes on.
                Err(e) => {
                    eprintln!("server: accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            if stop.load(Ordering::SeqCst) {
                break;
            }
            served += 1;
            let stop = &stop;
            // One thread per client: a client that is slow to finish its
            // request holds up its own thread, nobody else.
            scope.spawn(move || match answer(&stream) {
                Ok(Ended::HungUp(_)) => {}
                Ok(Ended::Stop(_)) => {
                    stop.store(true, Ordering::SeqCst);
                    // The main thread sits in accept(): wake it with a
                    // connection of our own, so that it sees the flag.
                    let _ = UnixStream::connect(path);
                }
                Err(e) => eprintln!("server: a client: {e:#}"),
            });
        }
        // The path goes first, so no new client can connect; the scope
        // then waits for the clients still being served.
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
    })?;
    Ok(served)
}
// ANCHOR_END: serve

// ANCHOR: spawn_worker
/// Starts a child process that runs `work` on one end of a new socket
/// pair, and exits with the status it returns. The parent gets the child's
/// pid and the other end. Unlike a pipe, each end reads and writes.
pub fn spawn_worker(work: impl FnOnce(UnixStream) -> i32) -> Result<(Pid, UnixStream)> {
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    std::io::stdout().flush().context("flushing stdout")?;
    // SAFETY: the programs that call this are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // Each side keeps one end. If the child kept the parent's end
            // too, it would never read end of file when the parent leaves.
            drop(parent_end);
            given::run_child(|| work(UnixStream::from(child_end)))
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            Ok((child, UnixStream::from(parent_end)))
        }
    }
}
// ANCHOR_END: spawn_worker

// ANCHOR: send_fd
/// Sends the open descriptor `fd` over the Unix socket `over`, with
/// `payload` (at least one byte) as the message it travels with. The
/// receiver gets a new descriptor for the same open file.
pub fn send_fd(over: &UnixStream, fd: BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
    ensure!(
        !payload.is_empty(),
        "a descriptor travels with at least one byte"
    );
    let fds = [fd.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    // MSG_NOSIGNAL: if the receiver has gone, an EPIPE error, not SIGPIPE.
    let sent = loop {
        match sendmsg::<()>(
            over.as_raw_fd(),
            &iov,
            &control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("sendmsg with SCM_RIGHTS"),
        }
    };
    // The descriptor went with the first bytes; the rest is plain data.
    let mut rest = over;
    rest.write_all(&payload[sent..])
        .context("sending the rest of the payload")
}
// ANCHOR_END: send_fd

// ANCHOR: recv_fd
/// Receives a descriptor sent by [`send_fd`], and the first bytes of its
/// payload into `buf`. Returns how many bytes arrived, and the descriptor.
pub fn recv_fd(over: &UnixStream, buf: &mut [u8]) -> Result<(usize, OwnedFd)> {
    let mut space = nix::cmsg_space!(std::os::fd::RawFd);
    let (n, mut fds) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        // MSG_CMSG_CLOEXEC: the new descriptor is close-on-exec, like every
        // descriptor Rust opens.
        let msg = match recvmsg::<()>(
            over.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("recvmsg"),
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().context("the control message was cut short")? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel has just installed these descriptors
                // in our table; nothing else owns them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        break (msg.bytes, fds);
    };
    ensure!(
        n > 0 || !fds.is_empty(),
        "the other side hung up before sending a descriptor"
    );
    ensure!(
        !fds.is_empty(),
        "{n} bytes arrived, but no descriptor with them"
    );
    // Keep the first; any extra ones are closed when `fds` is dropped.
    Ok((n, fds.swap_remove(0)))
}
// ANCHOR_END: recv_fd
