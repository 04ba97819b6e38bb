//! Given code shared by the programs in `src/bin/`. You do not need to edit it.
//!
//! Shared memory (lab 05) and starting processes (lab 01) are not this lab's
//! lesson, so they are done for you here: [`Shared`] puts a value in memory
//! that every process maps, [`start_workers`] and [`join_workers`] run
//! worker processes.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, ipc_name, main_with, number};

use std::fs::File;
use std::io::Write;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap, shm_open, shm_unlink};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, fstat};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, ftruncate};

use crate::SharedMutex;

// ANCHOR: counter
/// The shared counter, as it lies in memory. The checker reads `total`
/// itself: it is the first 8 bytes of the segment, in native byte order.
#[repr(C)]
pub struct Counter {
    /// An atomic only so that even the wrong, unlocked versions of this lab
    /// are defined behaviour in Rust: a `load` then a `store` is still two
    /// steps, and another process can come in between.
    pub total: AtomicU64,
    /// The lock that guards `total` for [`crate::add_locked`].
    pub lock: SharedMutex,
}
// ANCHOR_END: counter

/// A type that can be made ready in place, in zero-filled shared memory.
///
/// # Safety
///
/// `init` must leave a valid `Self` at `place`, and the all-zero bytes
/// must already be a valid `Self` for the fields `init` does not set.
pub unsafe trait InShared: Sized {
    /// Makes the zero-filled value at `place` ready for use.
    ///
    /// # Safety
    ///
    /// `place` is valid, aligned and writable, and no other process uses
    /// the value yet.
    unsafe fn init(place: *mut Self) -> Result<()>;
}

// SAFETY: `SharedMutex::init` initialises the whole mutex.
unsafe impl InShared for SharedMutex {
    unsafe fn init(place: *mut Self) -> Result<()> {
        // SAFETY: passed on from our caller.
        unsafe { SharedMutex::init(place) }
    }
}

// SAFETY: zero is a valid AtomicU64 (the total is kept as it is); the lock
// is initialised by SharedMutex::init.
unsafe impl InShared for Counter {
    unsafe fn init(place: *mut Self) -> Result<()> {
        // SAFETY: `place` is valid and unused (our caller's promise), so
        // its `lock` field is too.
        unsafe { SharedMutex::init(&raw mut (*place).lock) }
    }
}

/// A `T` in memory mapped `MAP_SHARED`: after `fork`, parent and children
/// see the very same bytes. Unmapped when dropped; the named segment is
/// also removed if this process created it.
pub struct Shared<T: InShared> {
    ptr: NonNull<T>,
    len: NonZeroUsize,
    /// The segment's name, if this process created it (and must unlink it).
    created: Option<String>,
}

impl<T: InShared> Shared<T> {
    /// A `T` in an anonymous shared mapping, for this process and the
    /// children it forks from now on.
    pub fn anonymous() -> Result<Shared<T>> {
        let len = Self::len()?;
        // SAFETY: a fresh mapping, no address hint: nothing is overwritten.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .context("mmap(MAP_SHARED | MAP_ANONYMOUS)")?;
        Self::ready(ptr.cast(), len, None)
    }

    /// The `T` in the named POSIX shared memory segment `name` (such as
    /// `/lab-12-3-counter`), created zero-filled if it does not exist yet.
    /// Its lock is made ready either way; the rest is kept as it is.
    pub fn named(name: &str) -> Result<Shared<T>> {
        let rw = Mode::S_IRUSR | Mode::S_IWUSR;
        let (fd, created) = match shm_open(name, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, rw)
        {
            Ok(fd) => (fd, true),
            Err(Errno::EEXIST) => (
                shm_open(name, OFlag::O_RDWR, rw).with_context(|| format!("shm_open({name})"))?,
                false,
            ),
            Err(e) => return Err(e).with_context(|| format!("shm_open({name}, O_CREAT)")),
        };
        let len = Self::len()?;
        if created {
            ftruncate(&fd, len.get() as i64).with_context(|| format!("ftruncate({name})"))?;
        } else {
            let size = fstat(fd.as_fd())
                .with_context(|| format!("fstat({name})"))?
                .st_size;
            ensure!(
                size >= len.get() as i64,
                "the segment {name} has {size} bytes, fewer than the {len} it must hold"
            );
        }
        // SAFETY: a fresh mapping of a segment at least `len` bytes long.
        let mapped = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        };
        let ptr = match mapped {
            Ok(ptr) => ptr,
            Err(e) => {
                if created {
                    let _ = shm_unlink(name);
                }
                return Err(e).with_context(|| format!("mmap({name})"));
            }
        };
        // The mapping stays valid once the descriptor is closed (dropped).
        Self::ready(ptr.cast(), len, created.then(|| name.to_string()))
    }

    fn len() -> Result<NonZeroUsize> {
        NonZeroUsize::new(size_of::<T>()).context("a shared value needs at least one byte")
    }

    /// Runs `T::init` on the mapping, or undoes it.
    fn ready(ptr: NonNull<T>, len: NonZeroUsize, created: Option<String>) -> Result<Shared<T>> {
        // SAFETY: the mapping is page-aligned, zero-filled (or holds a T
        // from an earlier run), `len` bytes long, and no child exists yet.
        if let Err(e) = unsafe { T::init(ptr.as_ptr()) } {
            // SAFETY: our own mapping, used by nobody else.
            let _ = unsafe { munmap(ptr.cast(), len.get()) };
            if let Some(name) = &created {
                let _ = shm_unlink(name.as_str());
            }
            return Err(e);
        }
        Ok(Shared { ptr, len, created })
    }
}

impl<T: InShared> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: initialised by `ready`, mapped until `self` is dropped.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: InShared> Drop for Shared<T> {
    fn drop(&mut self) {
        // Workers end with _exit and never get here: only the process that
        // made the mapping drops it, once the workers are done.
        // SAFETY: initialised, and nobody uses it any more.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: our own mapping; no reference into it outlives `self`.
        let _ = unsafe { munmap(self.ptr.cast(), self.len.get()) };
        if let Some(name) = &self.created {
            let _ = shm_unlink(name.as_str());
        }
    }
}

/// A starting line: processes wait at it until one opens it, so that
/// they all start at about the same time (`bench` times them this way).
#[repr(C)]
pub struct Gate {
    open: AtomicU32,
}

// SAFETY: zero (closed) is a valid AtomicU32; nothing else to set up.
unsafe impl InShared for Gate {
    unsafe fn init(_place: *mut Self) -> Result<()> {
        Ok(())
    }
}

impl Gate {
    /// Waits, giving the processor away, until the gate is open.
    pub fn wait(&self) {
        while self.open.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
    }

    /// Lets every waiting process go.
    pub fn open(&self) {
        self.open.store(1, Ordering::Release);
    }
}

/// Starts `n` worker processes; worker `i` runs `work(i)` and exits, with
/// status 0 if it returned `Ok`. Returns their pids, in order.
pub fn start_workers(n: usize, work: impl Fn(usize) -> Result<()>) -> Result<Vec<Pid>> {
    let mut pids = Vec::with_capacity(n);
    for i in 0..n {
        std::io::stdout()
            .flush()
            .context("flushing stdout before fork")?;
        // SAFETY: the programs of this lab are single-threaded.
        match unsafe { fork() } {
            Ok(ForkResult::Parent { child }) => pids.push(child),
            Ok(ForkResult::Child) => {
                let status = match catch_unwind(AssertUnwindSafe(|| work(i))) {
                    Ok(Ok(())) => 0,
                    Ok(Err(e)) => {
                        eprintln!("worker {i}: error: {e:#}");
                        1
                    }
                    Err(_) => 101,
                };
                let _ = std::io::stdout().flush();
                // SAFETY: ends this process at once, as a worker must.
                unsafe { libc::_exit(status) }
            }
            Err(e) => {
                // Do not leave the workers already started behind.
                for &pid in &pids {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                let _ = join_workers(pids);
                return Err(e).context("fork");
            }
        }
    }
    Ok(pids)
}

/// Waits for every worker; fails if one of them did not exit with 0.
pub fn join_workers(pids: Vec<Pid>) -> Result<()> {
    let mut failed = Vec::new();
    for pid in pids {
        let status = loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                other => break other.with_context(|| format!("waitpid({pid})"))?,
            }
        };
        match status {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(_, code) => failed.push(format!("{pid} exited with {code}")),
            WaitStatus::Signaled(_, sig, _) => {
                failed.push(format!("{pid} was killed by {}", sig.as_str()))
            }
            other => failed.push(format!("{pid}: {other:?}")),
        }
    }
    if !failed.is_empty() {
        bail!("workers failed: {}", failed.join(", "));
    }
    Ok(())
}

// ANCHOR: add_unlocked
/// Adds one to the total with no lock at all: read, then write back.
/// Between the two steps another process may write its own total, which
/// this write then overwrites: its addition is lost.
pub fn add_unlocked(counter: &Counter) -> Result<()> {
    let value = counter.total.load(Ordering::Relaxed);
    counter.total.store(value + 1, Ordering::Relaxed);
    Ok(())
}
// ANCHOR_END: add_unlocked

/// Reads the total kept as decimal text in `file` (an empty file is 0).
pub fn read_total(file: &File) -> Result<u64> {
    let mut text = Vec::with_capacity(32);
    let mut buf = [0u8; 64];
    loop {
        match file.read_at(&mut buf, text.len() as u64) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the total"),
        }
        ensure!(
            text.len() <= 64,
            "the total's file holds more than a number"
        );
    }
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
        .with_context(|| format!("the total's file holds {text:?}, not a number"))
}

/// Replaces the content of `file` with `total`, as decimal text.
pub fn write_total(file: &File, total: u64) -> Result<()> {
    let text = format!("{total}\n");
    file.write_all_at(text.as_bytes(), 0)
        .context("writing the total")?;
    file.set_len(text.len() as u64)
        .context("truncating the total's file")
}

/// Writes `line` to standard output the slow way: in small pieces, one
/// `write()` each, with a pause between them, like a printer that takes
/// its time. Other processes writing meanwhile land between the pieces.
pub fn write_slowly(line: &[u8]) -> Result<()> {
    const PIECE: usize = 16;
    let stdout = std::io::stdout();
    for (i, piece) in line.chunks(PIECE).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        let mut rest = piece;
        while !rest.is_empty() {
            // Straight to the descriptor: Rust's stdout would keep the
            // pieces in its buffer and write the line in one go.
            match nix::unistd::write(stdout.as_fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("write(stdout)"),
            }
        }
    }
    Ok(())
}

/// The work a printer does between two lines, outside the critical
/// section: other printers may print meanwhile.
pub fn work_outside() {
    std::thread::sleep(Duration::from_micros(500));
}

/// The command-line arguments after the program name.
pub fn args(usage: &str, count: usize) -> Result<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != count {
        bail!("usage: {usage}");
    }
    Ok(args)
}
