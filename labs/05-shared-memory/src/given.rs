//! Given code shared by the programs in `src/bin/`. You do not need to edit it.
//!
//! Lab 01 was about processes; here `start` and `join` are given, so that
//! this lab can be about the memory those processes share.

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Starts a child process that runs `work` and exits with the status it
/// returns. Returns the child's pid, in the parent only.
pub fn start(work: impl FnOnce() -> i32) -> Result<Pid> {
    std::io::stdout()
        .flush()
        .context("flushing stdout before fork")?;
    // SAFETY: the programs of this lab are single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status = catch_unwind(AssertUnwindSafe(work)).unwrap_or(101);
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child without running the parent's
            // clean-up (destructors, atexit handlers); it does not return.
            unsafe { libc::_exit(status) }
        }
    }
}

/// Waits for the child `pid` and fails unless it exited with status 0.
pub fn join(pid: Pid) -> Result<()> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(other) => bail!("worker {pid} ended badly: {other:?}"),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}

/// The average of some grades (0.0 for none).
pub fn average(grades: &[u32]) -> f64 {
    if grades.is_empty() {
        return 0.0;
    }
    let sum: u64 = grades.iter().map(|&g| u64::from(g)).sum();
    sum as f64 / grades.len() as f64
}

/// The name of a named IPC object for this run: `LAB_IPC_PREFIX` (set by
/// the checker, e.g. `/lab-123-4-`) followed by `what`. Run by hand, the
/// prefix is `/lab05-`.
pub fn ipc_name(what: &str) -> String {
    let prefix = std::env::var("LAB_IPC_PREFIX").unwrap_or_else(|_| "/lab05-".to_string());
    format!("{prefix}{what}")
}

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: it looks at the processes (and reads
/// their memory) while they wait here, then closes their standard input.
/// Run by hand, a program waits here until you press Ctrl-D.
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

/// The command-line arguments after the program name.
pub fn args(usage: &str, at_least: usize) -> Result<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < at_least {
        bail!("usage: {usage}");
    }
    Ok(args)
}

/// Parses a number, saying which argument was wrong.
pub fn number<T: std::str::FromStr>(arg: &str, usage: &str) -> Result<T> {
    arg.parse::<T>()
        .ok()
        .with_context(|| format!("not a number: {arg:?}\nusage: {usage}"))
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

/// A place where the checker may hold this process: `name` says where
/// ("copy": halfway through copying a message).
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
