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
//! Read chapter 11 of the book first; `cargo lab hint 11` helps when stuck.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::signal::{SigHandler, SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::stat::Mode;
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, mkfifo};

pub mod given;

/// The write end of the self-pipe, for the handler to find. -1: none yet.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// How many times the handler ran for each signal number since the main
/// loop last looked ([`Signals::take`] resets them).
static COUNTS: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

/// The signal handler. It may run between any two instructions of the
/// program, even in the middle of `println!` or `malloc`, so it only does
/// what is async-signal-safe: atomics and one `write(2)`. No printing, no
/// allocation, no lock.
pub extern "C" fn on_signal(signo: libc::c_int) {
    // TODO: add one to `COUNTS[signo]` (if signo is in range), then, if
    // `WAKE_FD` holds a descriptor (>= 0), write one byte to it with
    // `libc::write`. Nothing else: no println!, no format!, no lock, no
    // Vec. Save errno first (`nix::errno::Errno::last_raw`) and restore it at
    // the end (`Errno::set_raw`): the code you interrupted may be reading it.
    let _ = (signo, &WAKE_FD, &COUNTS);
    todo!("on_signal: count the signal and write one byte to the self-pipe")
}

/// Where the signals arrive: a self-pipe written by [`on_signal`], or a
/// signalfd that the kernel fills.
#[allow(dead_code)] // made by the functions you write
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

impl Signals {
    /// Installs [`on_signal`] for every signal in `signals`, with a
    /// self-pipe: the handler writes a byte, the main loop polls the
    /// read end.
    pub fn self_pipe(signals: &[Signal]) -> Result<Signals> {
        // TODO:
        // 1. Make a pipe with `nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)`:
        //    the handler must never block on a full pipe.
        // 2. Store the write end's raw fd (`as_raw_fd`) in `WAKE_FD`.
        // 3. Install `on_signal` for each signal with
        //    `nix::sys::signal::sigaction` (it is `unsafe`: say why it is fine) and
        //    `SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty())`;
        //    `SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP` are good flags (the book says why).
        // 4. Return `Signals { source: Source::SelfPipe { .. }, watched }`.
        let _ = signals;
        todo!("Signals::self_pipe: a pipe, and on_signal installed for each signal")
    }

    /// Blocks every signal in `signals` and reads them from a signalfd
    /// instead: no handler at all.
    pub fn signalfd(signals: &[Signal]) -> Result<Signals> {
        // TODO: put the signals in a `SigSet`, BLOCK them
        // (`SigSet::thread_block`), then make a
        // `SignalFd::with_flags(&mask, nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)`.
        // Why block them first? Chapter 11 tells.
        let _ = signals;
        todo!("Signals::signalfd: block the signals, then make a signalfd")
    }

    /// The descriptor to poll: readable when a signal has arrived.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::SelfPipe { read, .. } => read.as_fd(),
            Source::SignalFd(fd) => fd.as_fd(),
        }
    }

    /// The signals that arrived since the last call, one entry per
    /// delivery. Several deliveries of the same signal may have merged
    /// into one: signals do not queue.
    pub fn take(&mut self) -> Result<Vec<Signal>> {
        // TODO:
        // - Self-pipe: read the pipe until it is empty (EAGAIN; retry on
        //   EINTR), THEN swap each watched signal's counter in `COUNTS`
        //   to 0 and push the signal that many times.
        // - signalfd: `read_signal()` until it returns `Ok(None)`; each
        //   `siginfo` has the signal number in `ssi_signo`.
        let _ = (&self.source, &self.watched);
        todo!("Signals::take: empty the self-pipe or the signalfd")
    }
}

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

/// Waits until at least one of `fds` is readable (or at end of file).
/// Returns, for each descriptor, whether it is.
pub fn wait_readable(fds: &[BorrowedFd<'_>]) -> Result<Vec<bool>> {
    // TODO: one `nix::poll::PollFd::new(fd, PollFlags::POLLIN)` per
    // descriptor, then `nix::poll::poll(&mut fds, PollTimeout::NONE)`. poll fails with EINTR whenever
    // a handler runs: that is no error, poll again. A descriptor is ready
    // when its `revents()` has POLLIN, POLLHUP or POLLERR.
    let _ = fds;
    todo!("wait_readable: poll, retrying on EINTR")
}

/// Reaps every child that has ended, without blocking. Returns who ended
/// and how.
pub fn reap_children() -> Result<Vec<(Pid, WaitStatus)>> {
    // TODO: call `nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG))`
    // in a loop:
    // `WaitStatus::StillAlive` or ECHILD mean nobody else to reap; retry on
    // EINTR. Never only once: one SIGCHLD may stand for many children.
    todo!("reap_children: waitpid(-1, WNOHANG) until no ended child is left")
}

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
        // TODO: loop until stopping and no worker is left:
        // - wait with `wait_readable` on `signals.fd()` and, unless
        //   stopping, on `self.requests.as_fd()` too;
        // - if the signals' fd is ready, go through `signals.take()`:
        //   SIGCHLD -> `self.reap()`; SIGTERM or SIGINT -> start stopping
        //   (print `server: SIGTERM, finishing N request(s) in hand`);
        // - if the requests' fd is ready, `self.accept()`.
        // Return `self.answered`.
        let _ = (signals, Self::accept, Self::reap);
        todo!("Server::serve: the poll loop, and a graceful stop on SIGTERM")
    }
}

impl Drop for Server {
    /// Removes the FIFO and the status object, whatever happened. Workers
    /// still running (after an error) are stopped and reaped.
    fn drop(&mut self) {
        // TODO: stop (SIGTERM) and reap the workers still in `self.workers`
        // (there are some only after an error), then remove the FIFO
        // (`std::fs::remove_file`) and the status object (`nix::sys::mman::shm_unlink`).
        // Report failures with eprintln!.
        let _ = (&self.fifo, &self.status_name);
        todo!("Server's drop: remove the FIFO and the status object")
    }
}
