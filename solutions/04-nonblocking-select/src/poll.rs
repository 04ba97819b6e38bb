//! Waiting with poll(2): a list of descriptors instead of a bitmap.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::given::{millis_rounded_up, time_left};
use crate::{Waiter, Woke};

/// The array poll takes, and the token of each entry.
pub struct PollWaiter<'fd> {
    fds: Vec<PollFd<'fd>>,
    tokens: Vec<usize>,
}

impl PollWaiter<'_> {
    pub fn new() -> Self {
        PollWaiter {
            fds: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

impl Default for PollWaiter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

// ANCHOR: poll
impl<'fd> Waiter<'fd> for PollWaiter<'fd> {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        self.fds.push(PollFd::new(fd, PollFlags::POLLIN));
        self.tokens.push(token);
        Ok(())
    }

    fn unwatch(&mut self, token: usize, _fd: BorrowedFd<'fd>) -> Result<()> {
        if let Some(i) = self.tokens.iter().position(|&t| t == token) {
            self.fds.swap_remove(i);
            self.tokens.swap_remove(i);
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // Ready to read: data (POLLIN), or no writer left (POLLHUP, with
        // no POLLIN once the pipe is empty), or trouble (POLLERR).
        // poll reports POLLHUP and POLLERR even when not asked for.
        let wanted = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        loop {
            let ms = match time_left(deadline) {
                None => PollTimeout::NONE,
                Some(left) => {
                    PollTimeout::try_from(millis_rounded_up(left)).context("poll timeout")?
                }
            };
            match poll(&mut self.fds, ms) {
                Ok(0) => return Ok(Woke::TimedOut),
                Ok(_) => {
                    let ready = self
                        .fds
                        .iter()
                        .zip(&self.tokens)
                        .filter(|(fd, _)| fd.revents().is_some_and(|r| r.intersects(wanted)))
                        .map(|(_, &token)| token);
                    return Ok(Woke::Ready(ready.collect()));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("poll"),
            }
        }
    }
}
// ANCHOR_END: poll
