//! Waiting with poll(2): a list of descriptors instead of a bitmap.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use anyhow::Result;
use nix::poll::PollFd;

use crate::{Waiter, Woke};

/// The array poll takes, and the token of each entry.
// You may change the fields; remove this `allow` once you use them.
#[allow(dead_code)]
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

impl<'fd> Waiter<'fd> for PollWaiter<'fd> {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: push `PollFd::new(fd, PollFlags::POLLIN)` and its token.
        let _ = (token, fd);
        todo!("PollWaiter::watch")
    }

    fn unwatch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: remove the entry with this token from both vectors.
        let _ = (token, fd);
        todo!("PollWaiter::unwatch")
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        // TODO: call `poll(&mut self.fds, t)`, where t is `PollTimeout::NONE`
        // without a timeout, or the milliseconds left. 0 means timed out.
        // Otherwise the ready entries are those whose `revents()` hold
        // POLLIN, POLLHUP or POLLERR: a pipe whose writers are gone says
        // POLLHUP (and no POLLIN), and it must be read to see the end of
        // file. On EINTR, wait again for the time left.
        let _ = timeout;
        todo!("PollWaiter::wait: one poll(2) call")
    }
}
