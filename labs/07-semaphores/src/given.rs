//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::ptr::NonNull;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: a program waits here until the checker
/// closes its standard input. Run by hand, it waits until you press Ctrl-D.
pub fn hold() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// The command-line arguments after the program name, parsed as numbers.
pub fn numbers<T: std::str::FromStr>(usage: &str) -> Result<Vec<T>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        bail!("usage: {usage}");
    }
    args.iter()
        .map(|a| {
            a.parse::<T>()
                .ok()
                .with_context(|| format!("not a number: {a:?}\nusage: {usage}"))
        })
        .collect()
}

/// Runs a program's body, printing its error (with context) on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    let result = body();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// The name of a named IPC object: `LAB_IPC_PREFIX` (set by the checker,
/// e.g. `/lab-4242-3-`) followed by `what`. Without the variable, the
/// prefix is `/lab07-` and your user name, so that two users of one
/// machine do not share a semaphore by accident.
pub fn ipc_name(what: &str) -> String {
    match std::env::var("LAB_IPC_PREFIX") {
        Ok(prefix) => format!("{prefix}{what}"),
        Err(_) => {
            let user = std::env::var("USER").unwrap_or_else(|_| "me".into());
            format!("/lab07-{user}-{what}")
        }
    }
}

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

/// A place where the checker may hold this process: `name` says where
/// ("put": halfway through copying a message into a slot).
///
/// When the socket `NAME.gate` exists in the current directory (the
/// checker makes one to stop a process at the dangerous moment on
/// purpose), this connects to it and waits until the checker closes the
/// connection. Otherwise, as when you run a program by hand, it returns
/// at once.
pub fn pause_point(name: &str) {
    use std::sync::Mutex;
    // The names that had no gate: not looked for again, as this may be
    // called for every message.
    static NO_GATE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut absent = NO_GATE.lock().unwrap_or_else(|e| e.into_inner());
    if absent.iter().any(|n| n == name) {
        return;
    }
    match std::os::unix::net::UnixStream::connect(format!("{name}.gate")) {
        Ok(mut gate) => {
            drop(absent);
            let mut sink = [0u8; 16];
            loop {
                match gate.read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                }
            }
        }
        Err(_) => absent.push(name.to_string()),
    }
}
