//! Waiting with select(2), the oldest of the three.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use anyhow::Result;

use crate::{Waiter, Woke};

/// select keeps nothing between calls: the waiter remembers the
/// descriptors and builds the sets again for every wait.
// You may change the fields; remove this `allow` once you use them.
#[allow(dead_code)]
pub struct SelectWaiter<'fd> {
    watched: Vec<(usize, BorrowedFd<'fd>)>,
}

impl SelectWaiter<'_> {
    pub fn new() -> Self {
        SelectWaiter {
            watched: Vec::new(),
        }
    }
}

impl Default for SelectWaiter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'fd> Waiter<'fd> for SelectWaiter<'fd> {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: remember (token, fd). An fd_set holds descriptors below
        // FD_SETSIZE (1024) only: refuse larger ones with an error.
        let _ = (token, fd);
        todo!("SelectWaiter::watch")
    }

    fn unwatch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: forget the entry with this token.
        let _ = (token, fd);
        todo!("SelectWaiter::unwatch")
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        // TODO: build an `FdSet` with every watched descriptor (again for
        // every call: select overwrites it with the answer), turn what is
        // left of the timeout into a `TimeVal` (`TimeVal::microseconds`),
        // and call `select(None, &mut set, None, None, tv.as_mut())`.
        // 0 means timed out; otherwise the ready ones are those still in
        // the set. On EINTR, wait again for the time left.
        let _ = timeout;
        todo!("SelectWaiter::wait: one select(2) call")
    }
}
