//! Waiting with epoll(7): the kernel keeps the list between waits.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::given::{millis_rounded_up, time_left};
use crate::{Waiter, Woke};

/// An epoll instance (itself a descriptor) and room for the events one
/// wait returns.
pub struct EpollWaiter {
    epoll: Epoll,
    events: Vec<EpollEvent>,
}

// ANCHOR: epoll
impl EpollWaiter {
    pub fn new() -> Result<Self> {
        // CLOEXEC: a program we might exec must not inherit it.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
        Ok(EpollWaiter {
            epoll,
            events: vec![EpollEvent::empty(); 16],
        })
    }
}

impl<'fd> Waiter<'fd> for EpollWaiter {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // The token travels with the event: epoll hands it back to us.
        let event = EpollEvent::new(EpollFlags::EPOLLIN, token as u64);
        self.epoll.add(fd, event).context("epoll_ctl(ADD)")
    }

    fn unwatch(&mut self, _token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        self.epoll.delete(fd).context("epoll_ctl(DEL)")
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // EPOLLHUP and EPOLLERR come whether asked for or not.
        let wanted = EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        loop {
            let ms = match time_left(deadline) {
                None => EpollTimeout::NONE,
                Some(left) => {
                    EpollTimeout::try_from(millis_rounded_up(left)).context("epoll timeout")?
                }
            };
            match self.epoll.wait(&mut self.events, ms) {
                Ok(0) => return Ok(Woke::TimedOut),
                // Only the first n entries were filled in, and only
                // the ready descriptors are there: no scan of the rest.
                Ok(n) => {
                    let ready = self.events[..n]
                        .iter()
                        .filter(|e| e.events().intersects(wanted))
                        .map(|e| e.data() as usize);
                    return Ok(Woke::Ready(ready.collect()));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("epoll_wait"),
            }
        }
    }
}
// ANCHOR_END: epoll
