//! Lab 11 — signals: a graceful shutdown on SIGTERM, reaping on SIGCHLD,
//! and handlers that stay async-signal-safe under a storm of signals.
//!
//! The checker sends the signals itself, at moments it chooses with gates:
//! the workers of the server wait on their standard input, so SIGTERM lands
//! while requests are in hand, and the checker can stop the server, let 20+
//! workers end together, and watch one SIGCHLD stand for all of them.
//! Leftovers (the FIFO, the shared-memory status object, zombies) are looked
//! for in the file system and in /proc, never taken from what is printed.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::pid::Pid;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use rand::Rng;
use rand::rngs::StdRng;

use crate::labs::Lab;
use crate::peers::calls;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Kind, Outcome, Run, Scenario, Variant};

mod burst;
mod shutdown;

pub static LAB: Lab = Lab {
    number: 11,
    slug: "signals",
    title: "Signals: handlers, shutdown and reaping",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "graceful-shutdown",
            points: 3,
            limit: Duration::from_secs(10),
            does: "runs `server`, sends it requests whose workers wait at a gate, sends SIGTERM while they are in hand, then opens the gate",
            expects: "every request in hand answered, then the server to exit 0 with its FIFO `requests`, its shared-memory status object and its workers all gone",
            hints: &[
                "Without a handler, SIGTERM's default action kills the server on the spot: no destructor runs, and the FIFO and the status object stay behind. Install a handler (Signals::self_pipe) that only records the signal.",
                "The handler writes a byte to the self-pipe; the main loop polls the pipe's read end with the FIFO, and when SIGTERM was taken it stops accepting requests but keeps reaping until no worker is left.",
                "poll fails with EINTR whenever a handler has run, even with SA_RESTART: that is not an error, call poll again (wait_readable).",
                "Clean up in `impl Drop for Server`: remove_file for the FIFO, shm_unlink for the status object. Drop runs when serve returns, not when a signal kills the process.",
            ],
            max_procs: 12,
            run: shutdown::graceful_shutdown,
        },
        Scenario {
            name: "shutdown-with-signalfd",
            points: 2,
            limit: Duration::from_secs(10),
            does: "the same as graceful-shutdown, with `server signalfd`: no handler, signals read from a signalfd",
            expects: "every request in hand answered, then exit 0 with nothing left behind",
            hints: &[
                "A signalfd only reports signals that are blocked: block them with SigSet::thread_block before making the signalfd, or SIGTERM still kills the server.",
                "Make the signalfd non-blocking (SFD_NONBLOCK) and read it until read_signal() returns Ok(None): poll tells when it is readable.",
            ],
            max_procs: 12,
            run: shutdown::shutdown_with_signalfd,
        },
        Scenario {
            name: "shutdown-while-connected",
            points: 2,
            limit: Duration::from_secs(10),
            does: "connects to `server` as a client that keeps the FIFO open throughout, watches the idle server's CPU, sends requests whose workers wait at a gate, kills one worker, sends SIGINT (Ctrl-C), then one more request, then opens the gate",
            expects: "the server asleep while idle; the killed worker reaped at once, without waiting for the others; after SIGINT, the requests in hand answered, the late request not taken, and the server gone (exit 0, nothing left) although the client is still connected",
            hints: &[
                "SIGINT (Ctrl-C) asks for the same graceful stop as SIGTERM.",
                "Once stopping, the server waits for signals only (its workers' SIGCHLD): a client that keeps the FIFO open, or keeps sending, must not keep it running.",
                "While idle, the server must sleep in poll without a time-out: no loop that checks a flag again and again.",
            ],
            max_procs: 12,
            run: shutdown::shutdown_while_connected,
        },
        Scenario {
            name: "no-zombies-after-burst",
            points: 3,
            limit: Duration::from_secs(12),
            does: "sends 20 to 28 requests, stops the server (SIGSTOP), opens the gate so that every worker ends at once, then lets the server go on (SIGCONT)",
            expects: "every worker reaped while the server still runs: no zombie child left, although the server gets only one SIGCHLD for all of them",
            hints: &[
                "Signals do not queue: while a SIGCHLD is pending, more SIGCHLDs add nothing. One SIGCHLD can stand for any number of ended children.",
                "So never call waitpid once per SIGCHLD: loop waitpid(-1, WNOHANG) until it reports StillAlive or ECHILD (reap_children).",
            ],
            max_procs: 40,
            run: burst::no_zombies_after_burst,
        },
        Scenario {
            name: "signal-storm",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `storm LINES`, which prints thousands of lines while the checker sends it SIGUSR1 every few microseconds",
            expects: "every line, in order and whole, nothing else printed, and exit status 0",
            hints: &[
                "A handler may run in the middle of any instruction of the program, for example inside println!, which holds stdout's lock. A handler that prints, allocates or takes a lock can find that lock taken by the very code it interrupted.",
                "The handler only does what is async-signal-safe: add to an atomic counter and write one byte to the self-pipe (libc::write). The main loop does the rest.",
            ],
            max_procs: 4,
            run: burst::signal_storm,
        },
    ],
    fixtures: &[
        Fixture {
            name: "sigterm-not-handled",
            caught_by: "graceful-shutdown",
            says: "left behind",
        },
        Fixture {
            name: "eintr-is-an-error",
            caught_by: "graceful-shutdown",
            says: "EINTR",
        },
        Fixture {
            name: "stops-at-once",
            caught_by: "graceful-shutdown",
            says: "in hand",
        },
        Fixture {
            name: "status-never-unlinked",
            caught_by: "graceful-shutdown",
            says: "left behind",
        },
        Fixture {
            name: "signalfd-not-blocked",
            caught_by: "shutdown-with-signalfd",
            says: "block",
        },
        Fixture {
            name: "one-wait-per-sigchld",
            caught_by: "no-zombies-after-burst",
            says: "zombie",
        },
        Fixture {
            name: "println-in-handler",
            caught_by: "signal-storm",
            says: "handler",
        },
        Fixture {
            name: "busy-poll",
            caught_by: "shutdown-while-connected",
            says: "busy loop",
        },
        Fixture {
            name: "accepts-after-signal",
            caught_by: "shutdown-while-connected",
            says: "took a new request",
        },
        Fixture {
            name: "ignores-sigint",
            caught_by: "shutdown-while-connected",
            says: "did not take SIGINT",
        },
        Fixture {
            name: "reap-blocks",
            caught_by: "shutdown-while-connected",
            says: "still busy",
        },
        Fixture {
            name: "blocking-self-pipe",
            caught_by: "graceful-shutdown",
            says: "self-pipe",
        },
    ],
    variants: &[Variant {
        name: "eventfd-wakeup",
        design: "an eventfd instead of a self-pipe: the handler adds 1 to its counter with one 8-byte write",
    }],
};

// ---------------------------------------------------------------------------
// Helpers.

/// A random word of lowercase letters.
fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(3..=9);
    (0..n)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// Requests `(id, text)` with distinct random ids.
fn requests(rng: &mut StdRng, n: usize) -> Vec<(u64, String)> {
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < n {
        ids.insert(rng.random_range(1..100_000u64));
    }
    ids.into_iter()
        .map(|id| (id, format!("{}-{}", word(rng), word(rng))))
        .collect()
}

fn is_fifo(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// The first `error: ...` line the program wrote on stderr.
fn error_line(run: &Run, pid: Pid) -> Option<String> {
    let spawned = run.spawned.iter().find(|s| s.pid == pid)?;
    let text = spawned.stderr.text();
    text.lines()
        .find(|l| l.starts_with("error:"))
        .map(str::to_string)
}

/// Everything the program wrote on stderr.
fn stderr_of(run: &Run, pid: Pid) -> String {
    run.spawned
        .iter()
        .find(|s| s.pid == pid)
        .map(|s| s.stderr.text())
        .unwrap_or_default()
}

/// Runs `server MODE` and waits for `server pid=P ready (MODE)`; checks
/// that the FIFO and the status object exist.
fn start_server(run: &mut Run, mode: &str) -> Result<Proc, Failure> {
    let mut server = run.spawn("server", &[mode.to_string()])?;
    let line = run
        .line(&mut server, "the server's line `server pid=P ready (MODE)`")?
        .text;
    if Pid::field(&line, "pid") != Some(server.pid) || !line.contains("ready") {
        return Err(Failure::wrong(
            format!("`server pid={} ready ({mode})`", server.pid),
            format!("`{line}`"),
        ));
    }
    if !is_fifo(&run.sandbox.tmp.join("requests")) {
        return Err(Failure::internal(
            "the server is ready but there is no FIFO `requests` (Server::open is given code: did it change?)",
        ));
    }
    if run.sandbox.ipc_objects().is_empty() {
        return Err(Failure::internal(
            "the server is ready but there is no status object (Server::open is given code: did it change?)",
        ));
    }
    Ok(server)
}

/// Writes the requests to the server's FIFO, one line each.
fn send_requests(run: &Run, requests: &[(u64, String)]) -> Outcome {
    let path = run.sandbox.tmp.join("requests");
    let fifo = OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(|e| {
            Failure::wrong(
                "the server to hold its FIFO `requests` open for reading",
                format!("the checker could not open it for writing: {e}"),
            )
        })?;
    let text: String = requests
        .iter()
        .map(|(id, text)| format!("{id} {text}\n"))
        .collect();
    let bytes = text.as_bytes();
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(&fifo, &bytes[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if Instant::now() >= run.deadline {
                    return Err(run.timed_out("the server to read its requests"));
                }
                let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(50u16));
            }
            Err(e) => {
                return Err(Failure::wrong(
                    "to write the requests to `requests`",
                    format!("writing failed: {e}"),
                ));
            }
        }
    }
    Ok(())
}

/// The live (not zombie) children of `pid`.
fn live_children(pid: Pid) -> Vec<Pid> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| procfs::stat(c).is_some_and(|s| !s.is_zombie()))
        .collect()
}

/// The zombie children of `pid`.
fn zombie_children(pid: Pid) -> Vec<Pid> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| procfs::stat(c).is_some_and(|s| s.is_zombie()))
        .collect()
}

/// Whether `pid` sleeps in a system call (waiting), as /proc tells.
fn sleeping(pid: Pid) -> bool {
    procfs::stat(pid).is_some_and(|s| s.state == 'S') && procfs::blocked(pid).syscall.is_some()
}

/// Whether `sig` is pending for `pid` (sent, not yet delivered or read).
fn pending(pid: Pid, sig: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let bit = 1u64 << (sig as i32 - 1);
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("SigPnd:")
                .or_else(|| l.strip_prefix("ShdPnd:"))
        })
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .any(|mask| mask & bit != 0)
}

/// Waits until the server has `n` workers, each asleep at the gate, and
/// the server itself is asleep, waiting for its next event.
fn workers_at_gate(run: &Run, server: &mut Proc, n: usize) -> Result<Vec<Pid>, Failure> {
    let found = run.poll(Duration::from_secs(5), || {
        let workers = live_children(server.pid);
        (workers.len() == n && workers.iter().all(|&w| sleeping(w)) && sleeping(server.pid))
            .then_some(workers)
    });
    match found {
        Some(workers) => Ok(workers),
        None => {
            if let Ok(exit) = server.wait(Instant::now()) {
                let said = error_line(run, server.pid).unwrap_or_default();
                return Err(Failure::wrong(
                    format!("the server to start {n} workers and keep running"),
                    format!("it ended with {exit} {said}"),
                ));
            }
            let seen = live_children(server.pid).len();
            Err(run
                .timed_out(&format!(
                    "{n} workers of the server waiting at the gate (saw {seen})"
                ))
                .because(
                    "the server must read every request line from `requests` and start a worker for each (Server::accept, called when poll says the FIFO is readable)",
                ))
        }
    }
}

/// Why the server ended when it did, in words, from its exit and stderr.
fn why_it_ended(run: &Run, server: &Proc, exit: Exit, signal: Signal) -> String {
    let stderr = stderr_of(run, server.pid);
    if stderr.contains("EINTR") || stderr.contains("nterrupted system call") {
        return "a system call interrupted by a signal (EINTR) was treated as an error. poll returns EINTR whenever a handler has run, even with SA_RESTART: that is no error, call it again".to_string();
    }
    match exit {
        Exit::Signal(s) if s == signal => format!(
            "nothing handled {0}, so its default action killed the server on the spot: no destructor ran. Install a handler for {0} (Signals::self_pipe), or block it and read it from a signalfd",
            signal.as_str()
        ),
        _ => "see its error above".to_string(),
    }
}

/// What the server left behind: the FIFO, IPC objects.
fn leftovers(run: &Run) -> Vec<String> {
    let mut left = Vec::new();
    if run.sandbox.tmp.join("requests").exists() {
        left.push("the FIFO `requests`".to_string());
    }
    for path in run.sandbox.ipc_objects() {
        left.push(format!("the shared-memory object {}", path.display()));
    }
    left
}

/// A stuck wait explained when the server sleeps in read() on a pipe whose
/// write end it holds itself: its self-pipe, read in blocking mode.
fn explain_stuck(server: Pid, failure: Failure) -> Failure {
    if failure.kind != Kind::TimedOut || failure.why.is_some() {
        return failure;
    }
    let Some((call, fd)) = calls::sleeping_in_with_fd(server) else {
        return failure;
    };
    if call != "read" {
        return failure;
    }
    let Some(target) = procfs::fd_target(server, fd).filter(|t| t.starts_with("pipe:")) else {
        return failure;
    };
    let own_writer = procfs::fds(server).into_iter().any(|(other, t)| {
        other != fd && t == target && procfs::fd_access(server, other) == Some(1)
    });
    if !own_writer {
        return failure;
    }
    failure
        .because(format!(
            "the server sleeps in read() on fd {fd}, its self-pipe ({target}: it holds the write \
             end itself). The pipe is in blocking mode, so emptying it blocks once it is empty, \
             and only the handler could ever write to it again"
        ))
        .hint("Make both ends of the self-pipe non-blocking (pipe2 with O_NONBLOCK): the main loop reads until EAGAIN, and the handler's write can never block either.")
}
