//! Lab 11 — signals: handlers, the self-pipe trick, signalfd, reaping on
//! SIGCHLD and a graceful shutdown on SIGTERM.
//!
//! You write:
//!
//! - [`on_signal`], the handler: it only counts and writes one byte;
//! - [`Signals::self_pipe`] and [`Signals::signalfd`], two ways to turn
//!   signals into something `poll` can wait for, and [`Signals::take`];
//! - [`wait_readable`], `poll` that survives EINTR;
//! - [`reap_children`], which reaps every child that has ended;
//! - [`Server::serve`] and the server's clean-up ([`Drop`] for [`Server`]).
//!
//! The programs in `src/bin/` are given: the checker runs them
//! (`cargo lab check 11`). Edit this file only.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, mkfifo, pipe2};

pub mod given;

// ANCHOR: handler_state
/// The write end of the self-pipe, for the handler to find. -1: none yet.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// How many times the handler ran for each signal number since the main
/// loop last looked ([`Signals::take`] resets them).
static COUNTS: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];
// ANCHOR_END: handler_state

// ANCHOR: handler
/// The signal handler. It may run between any two instructions of the
/// program, even in the middle of `println!` or `malloc`, so it only does
/// what is async-signal-safe: atomics and one `write(2)`. No printing, no
/// allocation, no lock.
pub extern "C" fn on_signal(signo: libc::c_int) {
    // write() may change errno, and the code we interrupted may be about
    // to look at errno: put it back as it was.
    let saved = Errno::last_raw();
    if let Some(count) = COUNTS.get(signo as usize) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = [signo as u8];
        // The pipe is non-blocking: if it is full (EAGAIN), a wake-up is
        // already waiting for the main loop, and the count above is kept.
        // SAFETY: write(2) is async-signal-safe; `byte` outlives the call.
        unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
    }
    Errno::set_raw(saved);
}
// ANCHOR_END: handler

/// Where the signals arrive: a self-pipe written by [`on_signal`], or a
/// signalfd that the kernel fills.
enum Source {
    SelfPipe {
        read: OwnedFd,
        /// Kept open for the handler; closed on drop.
        _write: OwnedFd,
    },
    SignalFd(SignalFd),
}

/// Signals turned into a descriptor that `poll` can wait on.
pub struct Signals {
    source: Source,
    watched: Vec<Signal>,
}

// ANCHOR: self_pipe
impl Signals {
    /// Installs [`on_signal`] for every signal in `signals`, with a
    /// self-pipe: the handler writes a byte, the main loop polls the
    /// read end.
    pub fn self_pipe(signals: &[Signal]) -> Result<Signals> {
        // Both ends non-blocking: the handler must never block, and the
        // main loop empties the pipe until EAGAIN.
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).context("pipe2")?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        // SA_RESTART: read() and write() on pipes resume after the
        // handler instead of failing with EINTR. (poll never resumes.)
        // SA_NOCLDSTOP: no SIGCHLD when a child is merely stopped.
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        for &sig in signals {
            // SAFETY: on_signal only does async-signal-safe work.
            unsafe { sigaction(sig, &action) }
                .with_context(|| format!("sigaction({})", sig.as_str()))?;
        }
        Ok(Signals {
            source: Source::SelfPipe {
                read,
                _write: write,
            },
            watched: signals.to_vec(),
        })
    }

    // ANCHOR: signalfd
    /// Blocks every signal in `signals` and reads them from a signalfd
    /// instead: no handler at all.
    pub fn signalfd(signals: &[Signal]) -> Result<Signals> {
        let mut mask = SigSet::empty();
        for &sig in signals {
            mask.add(sig);
        }
        // Blocked, a signal stays pending instead of running its default
        // action (SIGTERM would kill us), and the signalfd reports it.
        mask.thread_block().context("blocking the signals")?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
        Ok(Signals {
            source: Source::SignalFd(fd),
            watched: signals.to_vec(),
        })
    }
    // ANCHOR_END: signalfd

    /// The descriptor to poll: readable when a signal has arrived.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::SelfPipe { read, .. } => read.as_fd(),
            Source::SignalFd(fd) => fd.as_fd(),
        }
    }

    // ANCHOR: take
    /// The signals that arrived since the last call, one entry per
    /// delivery. Several deliveries of the same signal may have merged
    /// into one: signals do not queue.
    pub fn take(&mut self) -> Result<Vec<Signal>> {
        match &self.source {
            Source::SelfPipe { read, .. } => take_from_pipe(read, &self.watched),
            Source::SignalFd(fd) => take_from_signalfd(fd),
        }
    }
    // ANCHOR_END: take
}
// ANCHOR_END: self_pipe

// ANCHOR: take_pipe
/// Empties the self-pipe, then reads (and resets) the handler's counters.
fn take_from_pipe(read: &OwnedFd, watched: &[Signal]) -> Result<Vec<Signal>> {
    // Pipe first, counters second: a signal that comes in between
    // leaves a byte for the next round, so no wake-up is ever lost.
    let mut buf = [0u8; 256];
    loop {
        match nix::unistd::read(read, &mut buf) {
            Ok(0) | Err(Errno::EAGAIN) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading the self-pipe"),
        }
    }
    let mut got = Vec::new();
    for &sig in watched {
        let n = COUNTS[sig as usize].swap(0, Ordering::SeqCst);
        got.extend(std::iter::repeat_n(sig, n as usize));
    }
    Ok(got)
}
// ANCHOR_END: take_pipe

// ANCHOR: take_signalfd
/// Reads every pending signal from a non-blocking signalfd.
fn take_from_signalfd(fd: &SignalFd) -> Result<Vec<Signal>> {
    let mut got = Vec::new();
    loop {
        match fd.read_signal() {
            Ok(Some(info)) => {
                let sig = Signal::try_from(info.ssi_signo as i32)
                    .context("signalfd reported an unknown signal")?;
                got.push(sig);
            }
            // None: nothing is pending any more.
            Ok(None) => return Ok(got),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading the signalfd"),
        }
    }
}
// ANCHOR_END: take_signalfd

impl Drop for Signals {
    fn drop(&mut self) {
        match &self.source {
            Source::SelfPipe { .. } => {
                // Default actions back first, then forget the pipe: the
                // handler must never write to a closed (or reused) fd.
                for &sig in &self.watched {
                    // SAFETY: the default disposition is always sound.
                    let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
                }
                WAKE_FD.store(-1, Ordering::SeqCst);
            }
            Source::SignalFd(_) => {
                let mut mask = SigSet::empty();
                for &sig in &self.watched {
                    mask.add(sig);
                }
                let _ = mask.thread_unblock();
            }
        }
    }
}

// ANCHOR: wait_readable
/// Waits until at least one of `fds` is readable (or at end of file).
/// Returns, for each descriptor, whether it is.
pub fn wait_readable(fds: &[BorrowedFd<'_>]) -> Result<Vec<bool>> {
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    loop {
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) => break,
            // A handler ran while we waited. poll is never restarted, not
            // even with SA_RESTART: that is not an error, wait again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
    }
    let ready = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
    Ok(polled
        .iter()
        .map(|p| p.revents().is_some_and(|r| r.intersects(ready)))
        .collect())
}
// ANCHOR_END: wait_readable

// ANCHOR: reap_children
/// Reaps every child that has ended, without blocking. Returns who ended
/// and how.
pub fn reap_children() -> Result<Vec<(Pid, WaitStatus)>> {
    let mut reaped = Vec::new();
    // One SIGCHLD may stand for many children: loop until none is left.
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            // Children remain, but none of them has ended yet.
            Ok(WaitStatus::StillAlive) => break,
            Ok(status) => {
                let pid = status.pid().context("waitpid returned no pid")?;
                reaped.push((pid, status));
            }
            // No child at all.
            Err(Errno::ECHILD) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waitpid(-1, WNOHANG)"),
        }
    }
    Ok(reaped)
}
// ANCHOR_END: reap_children

/// A server that answers each request in a worker process of its own.
/// Requests arrive on the FIFO `requests`; the server publishes its state
/// in a shared-memory object named from `LAB_IPC_PREFIX`.
pub struct Server {
    fifo: PathBuf,
    requests: File,
    /// Our own write end: the FIFO never reports end of file.
    _writer: File,
    status_name: String,
    status: File,
    /// Bytes read from the FIFO that do not make a whole line yet.
    pending: Vec<u8>,
    workers: BTreeSet<Pid>,
    answered: u64,
}

// ANCHOR: serve
impl Server {
    /// Makes the FIFO `requests` in `dir` (replacing a stale one) and the
    /// status object, and opens both.
    pub fn open(dir: &Path) -> Result<Server> {
        let fifo = dir.join(given::REQUESTS);
        match std::fs::remove_file(&fifo) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", fifo.display()));
            }
            _ => {}
        }
        mkfifo(&fifo, Mode::from_bits_truncate(0o600))
            .with_context(|| format!("mkfifo {}", fifo.display()))?;
        let requests = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(&fifo)
            .with_context(|| format!("opening {} for reading", fifo.display()))?;
        let writer = OpenOptions::new()
            .write(true)
            .open(&fifo)
            .with_context(|| format!("opening {} for writing", fifo.display()))?;
        let status_name = given::ipc_name("status");
        let status = shm_open(
            status_name.as_str(),
            OFlag::O_CREAT | OFlag::O_RDWR | OFlag::O_TRUNC,
            Mode::from_bits_truncate(0o600),
        )
        .with_context(|| format!("shm_open {status_name}"))?;
        let mut server = Server {
            fifo,
            requests,
            _writer: writer,
            status_name,
            status: File::from(status),
            pending: Vec::new(),
            workers: BTreeSet::new(),
            answered: 0,
        };
        server.publish()?;
        Ok(server)
    }

    /// Writes `pid=P workers=W answered=N` into the status object, for
    /// anyone who wants to watch the server.
    fn publish(&mut self) -> Result<()> {
        let text = format!(
            "pid={} workers={} answered={}\n",
            given::me(),
            self.workers.len(),
            self.answered
        );
        self.status.set_len(0).context("truncating the status")?;
        self.status
            .write_all_at(text.as_bytes(), 0)
            .context("writing the status")
    }

    /// Reads what the FIFO holds and starts a worker for each whole
    /// request line.
    fn accept(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            match self.requests.read(&mut buf) {
                // Never 0 while we hold a write end; stop anyway.
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading requests"),
            }
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            match given::parse_request(&line) {
                Some((id, text)) => {
                    let pid = given::start_worker(id, text)?;
                    self.workers.insert(pid);
                }
                None => eprintln!("server: ignoring the malformed request {line:?}"),
            }
        }
        self.publish()
    }

    /// Reaps the workers that have ended.
    fn reap(&mut self) -> Result<()> {
        for (pid, status) in reap_children()? {
            self.workers.remove(&pid);
            match status {
                WaitStatus::Exited(_, 0) => self.answered += 1,
                other => eprintln!("server: worker {pid} failed: {other:?}"),
            }
        }
        self.publish()
    }

    /// Serves until SIGTERM (or SIGINT), then finishes the requests in
    /// hand and returns how many requests were answered.
    pub fn serve(&mut self, signals: &mut Signals) -> Result<u64> {
        let mut stopping = false;
        while !(stopping && self.workers.is_empty()) {
            // While stopping, take no new request: only signals matter.
            let ready = if stopping {
                wait_readable(&[signals.fd()])?
            } else {
                wait_readable(&[signals.fd(), self.requests.as_fd()])?
            };
            if ready[0] {
                for sig in signals.take()? {
                    match sig {
                        Signal::SIGCHLD => self.reap()?,
                        Signal::SIGTERM | Signal::SIGINT if !stopping => {
                            stopping = true;
                            println!(
                                "server: {}, finishing {} request(s) in hand",
                                sig.as_str(),
                                self.workers.len()
                            );
                        }
                        _ => {}
                    }
                }
            }
            if ready.get(1) == Some(&true) {
                self.accept()?;
            }
        }
        Ok(self.answered)
    }
}
// ANCHOR_END: serve

// ANCHOR: server_drop
impl Drop for Server {
    /// Removes the FIFO and the status object, whatever happened. Workers
    /// still running (after an error) are stopped and reaped.
    fn drop(&mut self) {
        for &pid in &self.workers {
            let _ = kill(pid, Signal::SIGTERM);
            while waitpid(pid, None) == Err(Errno::EINTR) {}
        }
        if let Err(e) = std::fs::remove_file(&self.fifo) {
            eprintln!("server: removing {}: {e}", self.fifo.display());
        }
        if let Err(e) = shm_unlink(self.status_name.as_str()) {
            eprintln!("server: shm_unlink {}: {e}", self.status_name);
        }
    }
}
// ANCHOR_END: server_drop
