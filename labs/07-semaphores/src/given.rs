//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, ipc_name, main_with, me, numbers, pause_point};

use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// "Prints" job `job` on a printer: the part of a job that must hold a
/// printer.
///
/// Under the checker, this connects to the socket `printer.sock` in the
/// current directory and stays connected until the checker lets the job
/// finish, so the checker counts exactly how many jobs print at once. Run
/// by hand (no socket there), it takes a few hundred milliseconds.
pub fn print(job: usize) -> Result<()> {
    println!("[START] job {job} pid={}", me());
    match UnixStream::connect("printer.sock") {
        Ok(mut printer) => {
            writeln!(printer, "job {job}").context("telling the printer our job number")?;
            // The checker closes its end when the page is "printed".
            let mut sink = [0u8; 16];
            loop {
                match printer.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context("waiting for the printer"),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Some variety without a random number generator.
            let ms = 300 + (me() as u64 * 7919) % 700;
            std::thread::sleep(Duration::from_millis(ms));
        }
        Err(e) => return Err(e).context("connecting to printer.sock"),
    }
    println!("[END]   job {job} pid={}", me());
    Ok(())
}

/// Starts a child process that runs `work` and exits with the status it
/// returns (lab 01's `start`). Returns the child's pid, in the parent.
pub fn start(work: impl FnOnce() -> i32) -> Result<Pid> {
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or(101);
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child here, without running the
            // parent's clean-up (Drop of what the parent owns).
            unsafe { libc::_exit(status) }
        }
    }
}

/// Waits for each child in `pids`; fails if one did not exit with 0.
pub fn join_all(pids: &[Pid]) -> Result<()> {
    let mut failed = Vec::new();
    for &pid in pids {
        let status = loop {
            match waitpid(pid, None) {
                Ok(status) => break status,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
            }
        };
        if !matches!(status, WaitStatus::Exited(_, 0)) {
            failed.push(format!("{pid}: {status:?}"));
        }
    }
    if !failed.is_empty() {
        bail!("children failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs `work` in a child; the child exits with 0 on `Ok`, with 1 after
/// printing the error on `Err`.
pub fn start_fallible(work: impl FnOnce() -> Result<()>) -> Result<Pid> {
    start(|| match work() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error in pid {}: {e:#}", me());
            1
        }
    })
}

/// A `T` in memory shared with every child forked after it was made: an
/// anonymous `MAP_SHARED` mapping (lab 05), zero-filled, unmapped on drop.
///
/// `T` must be valid when all its bytes are zero (numbers, arrays of
/// numbers, `libc::sem_t`).
pub struct Shared<T> {
    ptr: NonNull<T>,
}

impl<T> Shared<T> {
    /// Maps a new zero-filled `T`, shared with future children.
    pub fn zeroed() -> Result<Shared<T>> {
        let len = NonZeroUsize::new(std::mem::size_of::<T>().max(1)).expect("not zero");
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .context("mmap of a shared anonymous mapping")?;
        Ok(Shared { ptr: ptr.cast() })
    }

    /// Where the `T` is. Every process that forked after `zeroed` sees the
    /// same memory at this address.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and of this size; nothing uses it
        // after the owner is dropped.
        let _ = unsafe { munmap(self.ptr.cast(), std::mem::size_of::<T>().max(1)) };
    }
}
