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
//!
//! Read chapter 4 of the book first; `cargo lab hint 4` helps when stuck.

use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, bail};

pub mod epoll;
pub mod given;
pub mod poll;
pub mod select;

use given::Lines;

/// Puts `fd` in non-blocking mode: from now on a read that would have to
/// wait fails with EAGAIN instead.
///
/// The flag belongs to the open file description, not to this descriptor
/// number: every process holding a copy of it (after fork or dup) sees the
/// change too.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    // TODO: read the flags with `fcntl(fd, FcntlArg::F_GETFL)`, add
    // `OFlag::O_NONBLOCK` (`OFlag::from_bits_retain` turns the number into
    // flags), and write them back with `FcntlArg::F_SETFL`. F_SETFL
    // replaces every flag, so keep the ones that were there.
    let _ = fd;
    todo!("set_nonblocking: add O_NONBLOCK with fcntl")
}

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

/// Reads what `fd` holds right now, up to `buf.len()` bytes.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Read> {
    // TODO: call `nix::unistd::read(fd, buf)` and sort out what it says:
    // Ok(0) is end of file, Ok(n) is data, Err(Errno::EAGAIN) means "empty
    // for now" (not an error, not the end), Err(Errno::EINTR) means try
    // again. Give other errors some context.
    let _ = (fd, buf);
    todo!("read_some: one read, with EAGAIN as Read::WouldBlock")
}

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

/// Reads every source at once until all of them reach end of file, and
/// reports each line, each end of file and each quiet spell to `report`
/// as soon as it happens.
pub fn multiplex<'fd>(
    sources: &[BorrowedFd<'fd>],
    waiter: &mut dyn Waiter<'fd>,
    timeout: Option<Duration>,
    mut report: impl FnMut(Event<'_>) -> Result<()>,
) -> Result<()> {
    // TODO:
    // 1. Make every source non-blocking and `watch` it, with its index in
    //    `sources` as its token.
    // 2. While some source is still open: `waiter.wait(timeout)`.
    //    - `Woke::TimedOut`: report `Event::Timeout` and wait again.
    //    - `Woke::Ready(tokens)`: read each of those sources once with
    //      `read_some`. Push the bytes into that source's `given::Lines`
    //      and report every complete line it returns. On `Read::Eof`,
    //      report any last unfinished line, `unwatch` the source, and
    //      report `Event::Eof`. `Read::WouldBlock` is a false alarm.
    // 3. Return once every source has reached end of file.
    // Never read a source the waiter did not report: that read would wait.
    let _ = (sources, waiter, timeout, &mut report, Lines::default());
    todo!("multiplex: wait, read what is ready, report lines, ends and timeouts")
}
