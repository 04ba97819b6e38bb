//! Waiting with select(2), the oldest of the three.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::given::time_left;
use crate::{Waiter, Woke};

/// select keeps nothing between calls: the waiter remembers the
/// descriptors and builds the sets again for every wait.
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

// ANCHOR: select
impl<'fd> Waiter<'fd> for SelectWaiter<'fd> {
    fn watch(&mut self, token: usize, fd: BorrowedFd<'fd>) -> Result<()> {
        // An fd_set is a bitmap of FD_SETSIZE (1024) bits: larger
        // descriptor numbers do not fit. poll and epoll have no such limit.
        if fd.as_raw_fd() as usize >= FD_SETSIZE {
            bail!("select cannot watch fd {}", fd.as_raw_fd());
        }
        self.watched.push((token, fd));
        Ok(())
    }

    fn unwatch(&mut self, token: usize, _fd: BorrowedFd<'fd>) -> Result<()> {
        self.watched.retain(|&(t, _)| t != token);
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<Woke> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            // select overwrites the set with the answer: build it anew
            // every time, or the next call only watches what was ready.
            let mut readable = FdSet::new();
            for &(_, fd) in &self.watched {
                readable.insert(fd);
            }
            let mut tv = time_left(deadline).map(|d| TimeVal::microseconds(d.as_micros() as i64));
            // nfds None: nix passes the highest descriptor in the set + 1.
            match select(None, &mut readable, None, None, tv.as_mut()) {
                Ok(0) => return Ok(Woke::TimedOut),
                // A closed pipe counts as readable: read() then returns 0.
                Ok(_) => {
                    let ready = self.watched.iter().filter(|(_, fd)| readable.contains(*fd));
                    return Ok(Woke::Ready(ready.map(|&(token, _)| token).collect()));
                }
                // A signal arrived: wait again for what is left of the time.
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("select"),
            }
        }
    }
}
// ANCHOR_END: select
