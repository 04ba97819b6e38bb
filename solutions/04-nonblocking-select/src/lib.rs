//! Lab 04 — non-blocking I/O, and waiting on several pipes at once.
//!
//! You write:
//!
//! - [`set_nonblocking`] and [`read_some`]: a read that never waits, and
//!   says "nothing yet" (EAGAIN) instead;
//! - [`multiplex`]: read several pipes at once, printing each line as soon
//!   as it arrives, noticing each end of file, and saying when nothing has
//!   come for a while;
//! - three [`Waiter`]s that put the program to sleep until a pipe has
//!   something: [`select::SelectWaiter`], [`poll::PollWaiter`] and
//!   [`epoll::EpollWaiter`].
//!
//! The programs in `src/bin/` are given: each one calls your functions, and
//! the checker runs them (`cargo lab check 4`). Edit this file and
//! `src/select.rs`, `src/poll.rs`, `src/epoll.rs` only.

use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};

pub mod epoll;
pub mod given;
pub mod poll;
pub mod select;

use given::Lines;

// ANCHOR: set_nonblocking
/// Puts `fd` in non-blocking mode: from now on a read that would have to
/// wait fails with EAGAIN instead.
///
/// The flag belongs to the open file description, not to this descriptor
/// number: every process holding a copy of it (after fork or dup) sees the
/// change too.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    // Read the flags first and add ours: F_SETFL replaces all of them.
    let flags = fcntl(fd, FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).context("fcntl(F_SETFL, O_NONBLOCK)")?;
    Ok(())
}
// ANCHOR_END: set_nonblocking

/// What one read from a non-blocking descriptor gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// Nothing to read yet, but the writer is still there (EAGAIN).
    WouldBlock,
    /// Nothing to read, ever again: every write end is closed.
    Eof,
}

// ANCHOR: read_some
/// Reads what `fd` holds right now, up to `buf.len()` bytes.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Read> {
    loop {
        match nix::unistd::read(fd, buf) {
            // 0 is end of file: no writer is left, and nothing is buffered.
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => return Ok(Read::Data(n)),
            // Not an error: the pipe is empty but still has a writer.
            // (EWOULDBLOCK is the same number as EAGAIN on Linux.)
            Err(Errno::EAGAIN) => return Ok(Read::WouldBlock),
            // A signal handler ran before anything was read: try again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("read"),
        }
    }
}
// ANCHOR_END: read_some

// ANCHOR: waiter
/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Woke {
    /// These sources (by token) can be read without blocking: they hold
    /// data, or their writers have all gone (a read then returns 0).
    Ready(Vec<usize>),
    /// The timeout passed and no source became ready.
    TimedOut,
}

/// Something that puts the process to sleep until one of several
/// descriptors can be read: select, poll or epoll behind one interface.
///
/// `'fd` is how long the descriptors live: a waiter may keep them until
/// it is dropped.
pub trait Waiter<'fd> {
    /// Starts watching `fd` for reading; `wait` reports it as `token`.
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()>;

    /// Stops watching `fd`, which was watched as `token`.
    fn unwatch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()>;

    /// Sleeps until at least one watched descriptor is ready, or `timeout`
    /// passes (`None`: wait as long as it takes).
    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke>;
}
// ANCHOR_END: waiter

/// The three ways of waiting, chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Select,
    Poll,
    Epoll,
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Backend> {
        match s {
            "select" => Ok(Backend::Select),
            "poll" => Ok(Backend::Poll),
            "epoll" => Ok(Backend::Epoll),
            other => bail!("unknown backend {other:?}: say select, poll or epoll"),
        }
    }
}

// ANCHOR: backend
impl Backend {
    /// A new, empty waiter of this kind.
    pub fn waiter<'fd>(self) -> Result<Box<dyn Waiter<'fd> + 'fd>> {
        Ok(match self {
            Backend::Select => Box::new(select::SelectWaiter::new()),
            Backend::Poll => Box::new(poll::PollWaiter::new()),
            Backend::Epoll => Box::new(epoll::EpollWaiter::new()?),
        })
    }
}
// ANCHOR_END: backend

/// What [`multiplex`] reports, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete line (without its `\n`) arrived from source number `source`.
    Line { source: usize, text: &'a str },
    /// Source number `source` reached end of file: its writers are gone.
    Eof { source: usize },
    /// Nothing arrived from any source for the whole timeout.
    Timeout,
}

// ANCHOR: multiplex
/// Reads every source at once until all of them reach end of file, and
/// reports each line, each end of file and each quiet spell to `report`
/// as soon as it happens.
pub fn multiplex<'fd>(
    sources: &[BorrowedFd<'fd>],
    waiter: &mut dyn Waiter<'fd>,
    timeout: Option<Duration>,
    mut report: impl FnMut(Event<'_>) -> Result<()>,
) -> Result<()> {
    // ANCHOR: multiplex_start
    // Non-blocking, so that a read after a false alarm cannot hang us.
    for (token, &fd) in sources.iter().enumerate() {
        set_nonblocking(fd)?;
        waiter.watch(token, fd)?;
    }
    let mut lines: Vec<Lines> = sources.iter().map(|_| Lines::default()).collect();
    let mut open = vec![true; sources.len()];
    let mut left = sources.len();
    let mut buf = [0u8; 4096];
    // ANCHOR_END: multiplex_start

    // ANCHOR: multiplex_wait
    while left > 0 {
        // The one place this loop sleeps: until a source is ready.
        let ready = match waiter.wait(timeout)? {
            Woke::Ready(tokens) => tokens,
            Woke::TimedOut => {
                report(Event::Timeout)?;
                continue;
            }
        };
        // ANCHOR_END: multiplex_wait
        // ANCHOR: multiplex_read
        for token in ready {
            if !open[token] {
                continue;
            }
            let fd = sources[token];
            match read_some(fd, &mut buf)? {
                Read::Data(n) => {
                    for text in lines[token].push(&buf[..n]) {
                        report(Event::Line {
                            source: token,
                            text: &text,
                        })?;
                    }
                }
                // Ready, yet nothing there: someone else read it first.
                Read::WouldBlock => {}
                Read::Eof => {
                    if let Some(text) = lines[token].finish() {
                        report(Event::Line {
                            source: token,
                            text: &text,
                        })?;
                    }
                    // Stop watching it, or every wait returns at once.
                    waiter.unwatch(token, fd)?;
                    open[token] = false;
                    left -= 1;
                    report(Event::Eof { source: token })?;
                }
            }
        }
        // ANCHOR_END: multiplex_read
    }
    Ok(())
}
// ANCHOR_END: multiplex
