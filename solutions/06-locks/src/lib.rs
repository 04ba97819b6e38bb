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

use std::cell::UnsafeCell;
use std::fs::{File, OpenOptions};
use std::mem::MaybeUninit;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

pub mod given;

use given::{Counter, read_total, write_total};

// ANCHOR: shared_mutex
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
// ANCHOR_END: shared_mutex

/// Turns a pthread function's return value (0, or an error number) into a
/// `Result`. Unlike most system calls, they do not set `errno`.
fn check(code: libc::c_int, what: &str) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(code)).with_context(|| what.to_string())
    }
}

impl SharedMutex {
    // ANCHOR: init
    /// Makes the mutex at `place` ready for every process that maps it.
    ///
    /// # Safety
    ///
    /// `place` is valid, aligned and writable, lies in memory mapped
    /// `MAP_SHARED`, and no process uses the mutex yet.
    pub unsafe fn init(place: *mut SharedMutex) -> Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: initialises the attribute object we own.
        let code = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
        check(code, "pthread_mutexattr_init")?;
        let attr = attr.as_mut_ptr();
        // SAFETY: `attr` is initialised; `place` is valid (our caller's
        // promise), and `raw_get` gives the mutex inside without a `&`.
        let made = unsafe {
            // Without this, the mutex would wait on a futex private to each
            // process: one process's unlock would never wake another.
            check(
                libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED),
                "pthread_mutexattr_setpshared",
            )
            // Robust: if a process dies holding the lock, the next one to
            // lock it is told so (EOWNERDEAD) instead of waiting forever.
            .and_then(|()| {
                check(
                    libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST),
                    "pthread_mutexattr_setrobust",
                )
            })
            .and_then(|()| {
                check(
                    libc::pthread_mutex_init(UnsafeCell::raw_get(&raw const (*place).raw), attr),
                    "pthread_mutex_init",
                )
            })
        };
        // SAFETY: initialised above; the mutex keeps no reference to it.
        unsafe { libc::pthread_mutexattr_destroy(attr) };
        made
    }
    // ANCHOR_END: init

    // ANCHOR: lock
    /// Waits until this process holds the lock. The lock is released when
    /// the returned guard is dropped.
    pub fn lock(&self) -> Result<SharedGuard<'_>> {
        // pthread_mutex_lock never fails with EINTR: a signal handler runs,
        // and the wait goes on.
        // SAFETY: the mutex was initialised in place by `init`.
        match unsafe { libc::pthread_mutex_lock(self.raw.get()) } {
            0 => {}
            libc::EOWNERDEAD => {
                // The holder died inside its critical section. We hold the
                // lock now; say it is usable again. (A half-done update
                // would be ours to repair: ours are single stores.)
                // SAFETY: we hold the mutex.
                let code = unsafe { libc::pthread_mutex_consistent(self.raw.get()) };
                check(code, "pthread_mutex_consistent")?;
            }
            code => check(code, "pthread_mutex_lock")?,
        }
        Ok(SharedGuard { mutex: self })
    }
    // ANCHOR_END: lock
}

impl Drop for SharedMutex {
    fn drop(&mut self) {
        // SAFETY: initialised, and nobody holds it any more (`&mut self`).
        unsafe { libc::pthread_mutex_destroy(self.raw.get()) };
    }
}

// ANCHOR: guard
/// Proof that this process holds a [`SharedMutex`]; dropping it unlocks.
pub struct SharedGuard<'a> {
    mutex: &'a SharedMutex,
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this process locked the mutex when it made the guard.
        unsafe { libc::pthread_mutex_unlock(self.mutex.raw.get()) };
    }
}
// ANCHOR_END: guard

// ANCHOR: add_locked
/// Adds one to the shared total, with the counter's lock held around the
/// whole read-modify-write.
pub fn add_locked(counter: &Counter) -> Result<()> {
    let _guard = counter.lock.lock()?;
    let value = counter.total.load(Ordering::Relaxed);
    counter.total.store(value + 1, Ordering::Relaxed);
    Ok(())
    // `_guard` is dropped here, after the write-back: the lock is released.
}
// ANCHOR_END: add_locked

// ANCHOR: add_atomic
/// Adds one to the shared total with a single atomic instruction: the
/// processor does the read, the addition and the write as one step.
pub fn add_atomic(counter: &Counter) -> Result<()> {
    counter.total.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
// ANCHOR_END: add_atomic

// ANCHOR: file_total
/// A total kept as text in a file, shared by every process that opens the
/// file, and guarded by an exclusive `flock` on it.
pub struct FileTotal {
    path: PathBuf,
    /// `None` only if an error lost the file in the middle of `add`.
    file: Option<File>,
}
// ANCHOR_END: file_total

impl FileTotal {
    /// Opens the total kept in the file at `path`, creating an empty file
    /// (a total of 0) if there is none.
    pub fn open(path: impl AsRef<Path>) -> Result<FileTotal> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(FileTotal {
            path,
            file: Some(file),
        })
    }

    // ANCHOR: reopen
    /// The same total for another process: call it in each worker, after
    /// fork. It opens the file again, so the worker gets an open file
    /// description of its own, and with it a lock of its own.
    pub fn reopen(&self) -> Result<FileTotal> {
        FileTotal::open(&self.path)
    }
    // ANCHOR_END: reopen

    // ANCHOR: add
    /// Adds `amount` to the total and returns the new total. The read and
    /// the write back happen with the file locked.
    pub fn add(&mut self, amount: u64) -> Result<u64> {
        let locked = self.lock()?;
        let result = read_total(&locked).and_then(|value| {
            write_total(&locked, value + amount)?;
            Ok(value + amount)
        });
        // Unlock only now, after the write back.
        self.file = Some(
            locked
                .unlock()
                .map_err(|(_, e)| e)
                .context("flock(LOCK_UN)")?,
        );
        result
    }
    // ANCHOR_END: add

    /// The total now.
    pub fn get(&mut self) -> Result<u64> {
        let locked = self.lock()?;
        let value = read_total(&locked);
        self.file = Some(
            locked
                .unlock()
                .map_err(|(_, e)| e)
                .context("flock(LOCK_UN)")?,
        );
        value
    }

    // ANCHOR: flock
    /// Takes the file out of `self` and locks it: the `Flock` owns the file
    /// while it is locked, and gives it back when unlocked.
    fn lock(&mut self) -> Result<Flock<File>> {
        let mut file = self
            .file
            .take()
            .context("the total's file was lost by an earlier error")?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(locked) => return Ok(locked),
                // A signal interrupted the wait: wait again.
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => {
                    return Err(e).with_context(|| format!("flock({})", self.path.display()));
                }
            }
        }
    }
    // ANCHOR_END: flock
}

// ANCHOR: print_lines
/// Prints `count` lines of `len` copies of `letter`. Each line is a
/// critical section: the lock is held while it is written, and released
/// before the work between two lines, which runs in parallel.
pub fn print_lines(lock: &SharedMutex, letter: u8, count: usize, len: usize) -> Result<()> {
    let mut line = vec![letter; len];
    line.push(b'\n');
    for _ in 0..count {
        given::work_outside();
        let _guard = lock.lock()?;
        given::write_slowly(&line)?;
        // The guard is dropped at the end of each turn of the loop.
    }
    Ok(())
}
// ANCHOR_END: print_lines
