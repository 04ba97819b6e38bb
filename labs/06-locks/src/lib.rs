//! Lab 06 — locks: critical sections shared by processes.
//!
//! Several processes add to one total, or print to one terminal. Each
//! addition (read, add, write back) and each line is a critical section:
//! while one process is inside, no other may enter. You write three ways to
//! make that so, and one use of them:
//!
//! - [`SharedMutex`]: a pthread mutex that lives in shared memory and is
//!   marked process-shared, and [`add_locked`], which uses it;
//! - [`FileTotal`]: a total kept in a file, guarded by `flock`;
//! - [`add_atomic`]: one atomic instruction, no lock at all;
//! - [`print_lines`]: lines that never mix, with the lock held for one
//!   line at a time and no longer.
//!
//! The programs in `src/bin/` are given: each one calls your code, and the
//! checker runs them (`cargo lab check 6`). Edit this file only.
//! Read chapter 6 of the book first; `cargo lab hint 6` helps when stuck.

use std::cell::UnsafeCell;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Result;

pub mod given;

use given::Counter;

/// A mutex for processes: a pthread mutex placed in shared memory and
/// marked `PTHREAD_PROCESS_SHARED`. It is only ever made in place, inside
/// a [`given::Shared`] mapping, never moved.
#[repr(C)]
pub struct SharedMutex {
    raw: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a pthread mutex is made to be used by many threads (and, marked
// process-shared, many processes) at once.
unsafe impl Sync for SharedMutex {}

impl SharedMutex {
    /// Makes the mutex at `place` ready for every process that maps it.
    ///
    /// # Safety
    ///
    /// `place` is valid, aligned and writable, lies in memory mapped
    /// `MAP_SHARED`, and no process uses the mutex yet.
    pub unsafe fn init(place: *mut SharedMutex) -> Result<()> {
        // TODO:
        // 1. Make a `libc::pthread_mutexattr_t` with `pthread_mutexattr_init`
        //    (start from `std::mem::MaybeUninit`).
        // 2. Mark it process-shared: `pthread_mutexattr_setpshared(attr,
        //    libc::PTHREAD_PROCESS_SHARED)`. Without it, the mutex only works
        //    between the threads of one process.
        // 3. `pthread_mutex_init(UnsafeCell::raw_get(&raw const (*place).raw),
        //    attr)`, then `pthread_mutexattr_destroy`.
        // The pthread functions return 0 or an error number (they do not set
        // errno): turn a non-zero one into an error with `Errno::from_raw`.
        // Optional: `pthread_mutexattr_setrobust(attr, PTHREAD_MUTEX_ROBUST)`,
        // so that a process dying with the lock held does not block the rest.
        let _ = place;
        todo!("SharedMutex::init: a pthread mutex marked PTHREAD_PROCESS_SHARED")
    }

    /// Waits until this process holds the lock. The lock is released when
    /// the returned guard is dropped.
    pub fn lock(&self) -> Result<SharedGuard<'_>> {
        // TODO: call `libc::pthread_mutex_lock(self.raw.get())`; fail on a
        // non-zero result (with the robust attribute, EOWNERDEAD means you
        // hold the lock but its last holder died: call
        // `pthread_mutex_consistent` and go on). Return a `SharedGuard`.
        todo!("SharedMutex::lock: pthread_mutex_lock, and a guard")
    }
}

impl Drop for SharedMutex {
    fn drop(&mut self) {
        // SAFETY: initialised, and nobody holds it any more (`&mut self`).
        unsafe { libc::pthread_mutex_destroy(self.raw.get()) };
    }
}

/// Proof that this process holds a [`SharedMutex`]; dropping it unlocks.
pub struct SharedGuard<'a> {
    mutex: &'a SharedMutex,
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        // TODO: `libc::pthread_mutex_unlock(self.mutex.raw.get())`.
        let _ = self.mutex;
        todo!("SharedGuard::drop: pthread_mutex_unlock")
    }
}

/// Adds one to the shared total, with the counter's lock held around the
/// whole read-modify-write.
pub fn add_locked(counter: &Counter) -> Result<()> {
    // TODO: lock `counter.lock`, read `counter.total` (`load`), write back
    // the value + 1 (`store`), and only then let the guard go.
    // (`given::add_unlocked` does the same without the lock: the race.)
    let _ = counter;
    todo!("add_locked: lock, read, write back, unlock")
}

/// Adds one to the shared total with a single atomic instruction: the
/// processor does the read, the addition and the write as one step.
pub fn add_atomic(counter: &Counter) -> Result<()> {
    // TODO: one call on `counter.total` (an `AtomicU64`) that reads, adds
    // and writes in one indivisible step. No lock.
    let _ = counter;
    todo!("add_atomic: one atomic addition")
}

/// A total kept as text in a file, shared by every process that opens the
/// file, and guarded by an exclusive `flock` on it.
pub struct FileTotal {
    path: PathBuf,
    /// `None` only if an error lost the file in the middle of `add`.
    file: Option<File>,
}

impl FileTotal {
    /// Opens the total kept in the file at `path`, creating an empty file
    /// (a total of 0) if there is none.
    pub fn open(path: impl AsRef<Path>) -> Result<FileTotal> {
        // TODO: open the file for reading and writing, creating it if it is
        // missing but never truncating it (`std::fs::OpenOptions`). Keep the
        // path too: `reopen` needs it.
        let _ = path.as_ref();
        todo!("FileTotal::open: open (or create) the file")
    }

    /// The same total for another process: call it in each worker, after
    /// fork. It must give the worker a lock of its own.
    pub fn reopen(&self) -> Result<FileTotal> {
        // TODO: open the file again, by its path. Not `try_clone`: a flock
        // lock belongs to the open file description, which a clone (dup) or
        // a descriptor inherited over fork shares with the parent.
        let _ = (&self.path, &self.file);
        todo!("FileTotal::reopen: an open file description of the worker's own")
    }

    /// Adds `amount` to the total and returns the new total. The read and
    /// the write back happen with the file locked.
    pub fn add(&mut self, amount: u64) -> Result<u64> {
        // TODO:
        // 1. Take the file out of `self.file` and lock it:
        //    `nix::fcntl::Flock::lock(file, FlockArg::LockExclusive)`. On
        //    failure it gives the file back with the error: retry on EINTR.
        // 2. `given::read_total(&locked)`, then
        //    `given::write_total(&locked, total + amount)`.
        // 3. `locked.unlock()` gives the file back: put it in `self.file`.
        let _ = amount;
        todo!("FileTotal::add: flock, read, write back, unlock")
    }

    /// The total now.
    pub fn get(&mut self) -> Result<u64> {
        // TODO: like `add`, but only read the total (with the file locked,
        // so that no half-written number is read).
        todo!("FileTotal::get: read the total with the file locked")
    }
}

/// Prints `count` lines of `len` copies of `letter`. Each line is a
/// critical section: the lock is held while it is written, and released
/// before the work between two lines, which runs in parallel.
pub fn print_lines(lock: &SharedMutex, letter: u8, count: usize, len: usize) -> Result<()> {
    // TODO: make the line (`len` times `letter`, then b'\n'). For each of
    // the `count` lines: `given::work_outside()` without the lock, then,
    // with the lock held, `given::write_slowly(&line)`.
    let _ = (lock, letter, count, len);
    todo!("print_lines: one line per turn of the lock")
}
