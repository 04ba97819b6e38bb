//! Waiting with epoll(7): the kernel keeps the list between waits.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use anyhow::Result;
use nix::sys::epoll::{Epoll, EpollEvent};

use crate::{Waiter, Woke};

/// An epoll instance (itself a descriptor) and room for the events one
/// wait returns.
// You may change the fields; remove this `allow` once you use them.
#[allow(dead_code)]
pub struct EpollWaiter {
    epoll: Epoll,
    events: Vec<EpollEvent>,
}

impl EpollWaiter {
    pub fn new() -> Result<Self> {
        // TODO: `Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)`, and room for
        // a few events: `vec![EpollEvent::empty(); 16]`.
        todo!("EpollWaiter::new: create the epoll instance")
    }
}

impl<'fd> Waiter<'fd> for EpollWaiter {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: `self.epoll.add(fd, EpollEvent::new(EpollFlags::EPOLLIN,
        // token as u64))`: epoll gives the token back with each event.
        let _ = (token, fd);
        todo!("EpollWaiter::watch")
    }

    fn unwatch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // TODO: `self.epoll.delete(fd)`.
        let _ = (token, fd);
        todo!("EpollWaiter::unwatch")
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        // TODO: `self.epoll.wait(&mut self.events, t)` with t
        // `EpollTimeout::NONE` or the milliseconds left. It fills the first
        // n events: 0 means timed out; otherwise each event's `data()` is a
        // token. EPOLLHUP comes without being asked for, with no EPOLLIN
        // once the pipe is empty: count it as ready. Retry on EINTR.
        let _ = timeout;
        todo!("EpollWaiter::wait: one epoll_wait(2) call")
    }
}
