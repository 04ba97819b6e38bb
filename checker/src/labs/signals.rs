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
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use rand::rngs::StdRng;

use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num};

pub static LAB: Lab = Lab {
    number: 11,
    slug: "signals",
    title: "Signals: handlers, shutdown and reaping",
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
            run: graceful_shutdown,
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
            run: shutdown_with_signalfd,
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
            run: no_zombies_after_burst,
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
            run: signal_storm,
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
    ],
    variants: &[],
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
fn error_line(run: &Run, pid: i32) -> Option<String> {
    let spawned = run.spawned.iter().find(|s| s.pid == pid)?;
    let text = spawned.stderr.text();
    text.lines()
        .find(|l| l.starts_with("error:"))
        .map(str::to_string)
}

/// Everything the program wrote on stderr.
fn stderr_of(run: &Run, pid: i32) -> String {
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
    if field_num(&line, "pid") != Some(server.pid as i64) || !line.contains("ready") {
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
fn live_children(pid: i32) -> Vec<i32> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| procfs::stat(c).is_some_and(|s| !s.is_zombie()))
        .collect()
}

/// The zombie children of `pid`.
fn zombie_children(pid: i32) -> Vec<i32> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| procfs::stat(c).is_some_and(|s| s.is_zombie()))
        .collect()
}

/// Whether `pid` sleeps in a system call (waiting), as /proc tells.
fn sleeping(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| s.state == 'S') && procfs::blocked(pid).syscall.is_some()
}

/// Whether `sig` is pending for `pid` (sent, not yet delivered or read).
fn pending(pid: i32, sig: Signal) -> bool {
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
fn workers_at_gate(run: &Run, server: &mut Proc, n: usize) -> Result<Vec<i32>, Failure> {
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

fn graceful_shutdown(run: &mut Run) -> Outcome {
    shutdown(run, "self-pipe")
}

fn shutdown_with_signalfd(run: &mut Run) -> Outcome {
    shutdown(run, "signalfd")
}

fn shutdown(run: &mut Run, mode: &str) -> Outcome {
    let mut server = start_server(run, mode)?;
    let n = run.rng.random_range(1..=3);
    let asked = requests(&mut run.rng, n);
    send_requests(run, &asked)?;
    let workers = workers_at_gate(run, &mut server, n)?;

    // SIGTERM while every request is in hand, and the server waits.
    kill(Pid::from_raw(server.pid), Signal::SIGTERM)
        .map_err(|e| Failure::internal(format!("kill: {e}")))?;
    // Let it take the signal: it goes on waiting for its workers, or it
    // exits (wrongly) now.
    let pid = server.pid;
    let taken = run.poll(Duration::from_secs(3), || {
        if let Ok(exit) = server.wait(Instant::now()) {
            return Some(Some(exit));
        }
        (!pending(pid, Signal::SIGTERM) && sleeping(pid)).then_some(None)
    });
    if taken.is_none() {
        return Err(run.timed_out("the server to take SIGTERM and wait for its workers"));
    }
    // A server that stops at once may still be on its way out.
    std::thread::sleep(Duration::from_millis(20));
    let ended = taken.flatten().or_else(|| server.wait(Instant::now()).ok());
    if let Some(exit) = ended {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        let left = leftovers(run);
        let mut happened =
            format!("it ended with {exit}{said} while its {n} worker(s) still held requests");
        if !left.is_empty() {
            happened.push_str(&format!(", and left behind {}", left.join(" and ")));
        }
        let why = match exit {
            Exit::Code(0) => "on SIGTERM the server must stop taking new requests but finish the ones in hand: keep polling and reaping until no worker is left, then return from serve".to_string(),
            _ => why_it_ended(run, &server, exit, Signal::SIGTERM),
        };
        return Err(Failure::wrong(
            "the server to finish the requests in hand after SIGTERM, then exit 0",
            happened,
        )
        .because(why));
    }
    let alive = live_children(server.pid);
    if let Some(gone) = workers.iter().find(|w| !alive.contains(w)) {
        return Err(Failure::wrong(
            "the workers to go on with the requests in hand after SIGTERM",
            format!("worker {gone} was gone before the checker opened the gate"),
        )
        .because("SIGTERM went to the server only; a server that kills its workers on SIGTERM drops the requests in hand"));
    }

    // Open the gate: the workers answer and end.
    server.close_stdin();
    let lines: Vec<String> = run
        .rest(&mut server, "the replies, then the server's last line")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let exit = run.wait(&mut server)?;
    for (id, text) in &asked {
        let wanted = format!("reply {id} {}", reverse(text));
        if !lines.iter().any(|l| l.trim() == wanted) {
            return Err(Failure::wrong(
                format!("`{wanted}`: the request in hand answered after SIGTERM"),
                format!("no such line; the output was {:?}", lines),
            )
            .because("the server must keep its workers (and itself) running until every request in hand is answered"));
        }
    }
    if exit != Exit::Code(0) {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        return Err(Failure::wrong(
            "the server to exit with status 0 once the requests in hand are answered",
            format!("it ended with {exit}{said}"),
        )
        .because(why_it_ended(run, &server, exit, Signal::SIGTERM)));
    }
    let left = leftovers(run);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no FIFO and no shared-memory object left once the server has exited",
            format!("it left behind {}", left.join(" and ")),
        )
        .because("the server must remove what it made when it stops: remove_file for the FIFO and shm_unlink for the status object, in `impl Drop for Server`. Both are names that outlive the process"));
    }
    let stray: Vec<i32> = procfs::descendants(checker_pid())
        .iter()
        .map(|s| s.pid)
        .collect();
    if !stray.is_empty() {
        return Err(Failure::wrong(
            "no worker left once the server has exited",
            format!("processes {stray:?} are still there"),
        )
        .because("the server must wait for (reap) every worker before it exits"));
    }
    Ok(())
}

fn no_zombies_after_burst(run: &mut Run) -> Outcome {
    let mut server = start_server(run, "self-pipe")?;
    let n = run.rng.random_range(20..=28);
    let asked = requests(&mut run.rng, n);
    send_requests(run, &asked)?;
    let workers = workers_at_gate(run, &mut server, n)?;
    let server_pid = Pid::from_raw(server.pid);

    // Stop the server, let every worker end, then wake it: it gets one
    // SIGCHLD for all of them, since a pending signal is one bit.
    kill(server_pid, Signal::SIGSTOP).map_err(|e| Failure::internal(format!("kill: {e}")))?;
    let stopped = run.poll(Duration::from_secs(3), || {
        procfs::stat(server.pid)
            .is_some_and(|s| s.state == 'T')
            .then_some(())
    });
    if stopped.is_none() {
        let _ = kill(server_pid, Signal::SIGCONT);
        return Err(Failure::internal("the server did not stop on SIGSTOP"));
    }
    server.close_stdin();
    let all_ended = run.poll(Duration::from_secs(5), || {
        workers
            .iter()
            .all(|&w| procfs::stat(w).is_none_or(|s| s.is_zombie()))
            .then_some(())
    });
    let _ = kill(server_pid, Signal::SIGCONT);
    if all_ended.is_none() {
        return Err(run.timed_out("every worker to end once the gate opened"));
    }

    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(
            run.line(&mut server, &format!("{n} lines `reply ID TEXT`"))?
                .text,
        );
    }
    for (id, text) in &asked {
        let wanted = format!("reply {id} {}", reverse(text));
        if !replies.iter().any(|l| l.trim() == wanted) {
            return Err(Failure::wrong(
                format!("`{wanted}`"),
                format!("the replies were {replies:?}"),
            ));
        }
    }

    // Now every worker has ended: the server must reap them all, while it
    // keeps running.
    let reaped = run.poll(Duration::from_secs(3), || {
        procfs::children(server.pid).is_empty().then_some(())
    });
    if let Ok(exit) = server.wait(Instant::now()) {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        return Err(Failure::wrong(
            "the server to keep running after its workers ended",
            format!("it ended with {exit}{said}"),
        )
        .because(why_it_ended(run, &server, exit, Signal::SIGCHLD)));
    }
    if reaped.is_none() {
        let zombies = zombie_children(server.pid);
        return Err(Failure::wrong(
            format!("all {n} workers reaped while the server still runs"),
            format!(
                "{} of them are still zombies 3 s later: {zombies:?}",
                zombies.len()
            ),
        )
        .because("signals do not queue: the server got one SIGCHLD for all its workers, and reaped only one child for it. On SIGCHLD, loop waitpid(-1, WNOHANG) until it reports StillAlive or ECHILD"));
    }

    kill(server_pid, Signal::SIGTERM).map_err(|e| Failure::internal(format!("kill: {e}")))?;
    let _ = run.rest(&mut server, "the server's last line")?;
    match run.wait(&mut server)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to exit with status 0 on SIGTERM",
                format!("it ended with {other}"),
            )
            .because(why_it_ended(run, &server, other, Signal::SIGTERM)));
        }
    }
    let left = leftovers(run);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "nothing left once the server has exited",
            format!("it left behind {}", left.join(" and ")),
        ));
    }
    Ok(())
}

/// Sends SIGUSR1 to a process from a thread of its own until stopped.
struct Storm {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Storm {
    fn start(pid: i32) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let pid = Pid::from_raw(pid);
                while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < 200_000 {
                    if kill(pid, Signal::SIGUSR1).is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(20));
                }
            })
        };
        Storm {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops sending; returns how many signals were sent.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop();
    }
}

const UNSAFE_HANDLER: &str = "the signal handler does work that is not async-signal-safe. It ran in the middle of the program's own println!, and printing (like allocating, or taking any lock) from the handler found stdout taken by the very code it interrupted. The handler may only add to an atomic and write one byte to the self-pipe (libc::write); print from the main loop";

fn signal_storm(run: &mut Run) -> Outcome {
    let lines: u64 = run.rng.random_range(20_000..=30_000);
    let mut storm = run.spawn("storm", &[lines.to_string()])?;
    let line = run.line(&mut storm, "the line `storm pid=P ready`")?.text;
    if field_num(&line, "pid") != Some(storm.pid as i64) || !line.ends_with("ready") {
        return Err(Failure::wrong(
            format!("`storm pid={} ready`", storm.pid),
            format!("`{line}`"),
        ));
    }
    let mut sender = Storm::start(storm.pid);

    let mut expected = 0u64;
    loop {
        match storm.next_line(run.deadline) {
            Ok(Some(l)) => {
                let text = l.text;
                if text == format!("line {expected}") && expected < lines {
                    expected += 1;
                    continue;
                }
                if expected == lines && text.starts_with("storm done") {
                    break;
                }
                let sent = sender.stop();
                return Err(Failure::wrong(
                    if expected < lines {
                        format!("`line {expected}`")
                    } else {
                        "`storm done lines=N handled=H`".to_string()
                    },
                    format!("`{text}`, while the checker had sent {sent} SIGUSR1 so far"),
                )
                .because(if text.contains("line") {
                    "a line went missing or was cut: something written from the handler mixed with the program's own output".to_string()
                } else {
                    format!("the program printed something else: {UNSAFE_HANDLER}")
                }));
            }
            Ok(None) => {
                let sent = sender.stop();
                let exit = run.wait(&mut storm)?;
                let stderr = stderr_of(run, storm.pid);
                let mut f = Failure::wrong(
                    format!("{lines} lines while signals arrive"),
                    format!(
                        "the program ended with {exit} after `line {}`, while the checker had sent {sent} SIGUSR1",
                        expected.saturating_sub(1)
                    ),
                );
                if stderr.contains("cannot unwind")
                    || stderr.contains("already borrowed")
                    || stderr.contains("already mutably borrowed")
                    || exit == Exit::Signal(Signal::SIGABRT)
                {
                    f = f.because(UNSAFE_HANDLER);
                } else if exit == Exit::Signal(Signal::SIGUSR1) {
                    f = f.because("SIGUSR1 has no handler, so its default action killed the program: Signals::self_pipe must install on_signal for every signal it is given");
                } else if let Some(err) = error_line(run, storm.pid) {
                    f.happened.push_str(&format!(" (`{err}`)"));
                    if err.contains("EINTR") || err.contains("nterrupted") {
                        f = f.because("a system call interrupted by a signal (EINTR) was treated as an error: retry it");
                    }
                }
                return Err(f);
            }
            Err(_) => {
                let sent = sender.stop();
                return Err(run
                    .timed_out(&format!(
                        "{lines} lines (got {expected}) while the checker sent {sent} SIGUSR1"
                    ))
                    .because(format!("the program stopped making progress. If it is blocked on a futex, {UNSAFE_HANDLER}")));
            }
        }
    }
    let sent = sender.stop();
    if sent == 0 {
        return Err(Failure::internal("no signal could be sent"));
    }
    storm.close_stdin();
    run.expect_success(&mut storm)
}
