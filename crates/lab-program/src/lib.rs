//! What every lab program shares, written once for the whole course.
//!
//! - [`env`]: the contract between the checker and the programs it runs:
//!   the environment variables it sets ([`env::IPC_PREFIX`],
//!   [`env::TMP`]) and the gates it holds a program at ([`hold`],
//!   [`pause_point`]). The checker reads the same names from here.
//! - a program's frame: [`main_with`], its arguments ([`args`],
//!   [`number`], [`numbers`]), who it is ([`me`], [`parent`]);
//! - the string-reversing servers' answer: [`reverse`];
//! - its children, the way lab 01 teaches them: [`run_child`], [`join`],
//!   [`Ending`].
//!
//! Each lab's `src/given.rs` re-exports what its programs use and keeps
//! only what is specific to the lab.

use std::fmt;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// The environment the checker gives every program it runs.
pub mod env {
    /// The prefix of every named IPC object a program makes (shared
    /// memory, semaphores, message queues), e.g. `/lab-4242-3-`: the
    /// checker removes whatever carries it once the scenario is over.
    pub const IPC_PREFIX: &str = "LAB_IPC_PREFIX";
    /// The scenario's own fresh directory, also the programs' current
    /// directory: files (FIFOs, sockets) go there.
    pub const TMP: &str = "LAB_TMP";
    /// A gate `NAME` is the Unix socket `NAME` + this suffix in the
    /// current directory (see [`pause_point`](crate::pause_point)).
    pub const GATE_SUFFIX: &str = ".gate";
}

/// The name of a named IPC object for this run: the prefix the checker
/// sets in `LAB_IPC_PREFIX`, followed by `what`. Run by hand (no
/// variable), the prefix is `/lab-` and your user name, so that two users
/// of one machine do not share an object by accident.
pub fn ipc_name(what: &str) -> String {
    match std::env::var(env::IPC_PREFIX) {
        Ok(prefix) => format!("{prefix}{what}"),
        Err(_) => {
            let user = std::env::var("USER").unwrap_or_else(|_| "me".into());
            format!("/lab-{user}-{what}")
        }
    }
}

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: the programs call `hold()` where it
/// wants to look at the processes in `/proc` while they are still alive,
/// and it closes their standard input when it has seen enough. Run by
/// hand, a program waits here until you press Ctrl-D.
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
    match std::os::unix::net::UnixStream::connect(format!("{name}{}", env::GATE_SUFFIX)) {
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

/// The command-line arguments after the program name.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// The command-line arguments after the program name, parsed as numbers.
pub fn numbers<T: std::str::FromStr>(usage: &str) -> Result<Vec<T>> {
    let args = args();
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

/// Parses one argument as a number, saying which argument was wrong.
pub fn number<T: std::str::FromStr>(text: &str, usage: &str) -> Result<T> {
    text.parse()
        .ok()
        .with_context(|| format!("not a number: {text:?}\nusage: {usage}"))
}

/// What the string-reversing servers answer: the characters of `text` in
/// reverse order (characters, not bytes, so that UTF-8 stays valid).
pub fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// This process's parent's id.
pub fn parent() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// How a child process ended, as its parent learns it from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The child called `exit` (or returned from `main`) with this status.
    Exited(i32),
    /// A signal killed the child.
    Killed(Signal),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exited with {code}"),
            Ending::Killed(signal) => write!(f, "killed by {}", signal.as_str()),
        }
    }
}

/// Waits for the child `pid` to end and says how it ended (lab 01's `join`).
pub fn join(pid: Pid) -> Result<Ending> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ending::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Ending::Killed(signal)),
            Ok(other) => bail!("unexpected wait status {other:?}"),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("waitpid({pid})")),
        }
    }
}

/// Ends a child process after its work: flushes stdout and calls `_exit`
/// with the status `work` returned (101 if it panicked). Call it in the
/// child right after `fork`; it never returns, so the child cannot go on
/// running its parent's code.
pub fn run_child(work: impl FnOnce() -> i32) -> ! {
    let status = catch_unwind(AssertUnwindSafe(work)).unwrap_or(101);
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; it is always safe to call.
    unsafe { libc::_exit(status) }
}
