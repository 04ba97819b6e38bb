//! Pipes as /proc shows them: who holds which end, who is blocked on
//! which pipe, and the cause of a hang in one sentence.

use crate::pid::Pid;
use std::collections::BTreeMap;

use crate::diagnose::syscall_name;
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Kind};

/// A process blocked in read() or write() on a pipe, and who holds the
/// other end of that pipe.
struct Stuck {
    pid: Pid,
    comm: String,
    /// The system call: read, write, splice...
    call: &'static str,
    writing: bool,
    fd: i32,
    /// Processes holding the other end: write ends for a reader, read
    /// ends for a writer. The checker is left out (it holds the program's
    /// stdin, stdout and stderr).
    others: Vec<Pid>,
}

/// Every descendant blocked in read() or write() on a pipe, right now.
fn stuck_on_pipes() -> Vec<Stuck> {
    let procs = procfs::descendants(checker_pid());
    let mut out = Vec::new();
    for s in &procs {
        let b = procfs::blocked(s.pid);
        let Some((nr, args)) = b.syscall else {
            continue;
        };
        let wchan = b.wchan.unwrap_or_default();
        let call = syscall_name(nr).unwrap_or("?");
        let (writing, fd) = match syscall_name(nr) {
            Some("read" | "readv") => (false, args[0]),
            Some("write" | "writev") => (true, args[0]),
            // std::io::copy splices between a pipe and a file: splice(in,
            // off_in, out, ...) waits either for data in or for room out.
            Some("splice") if wchan.contains("readable") => (false, args[0]),
            Some("splice") if wchan.contains("writable") => (true, args[2]),
            _ => continue,
        };
        let fd = fd as i64 as i32;
        let Some(target) = procfs::fd_target(s.pid, fd) else {
            continue;
        };
        if !target.starts_with("pipe:") {
            continue;
        }
        let others = procs
            .iter()
            .filter(|p| {
                procfs::fds(p.pid).into_iter().any(|(f, t)| {
                    t == target
                        && procfs::fd_access(p.pid, f)
                            .is_some_and(|a| if writing { a != 1 } else { a != 0 })
                })
            })
            .map(|p| p.pid)
            .collect();
        out.push(Stuck {
            pid: s.pid,
            comm: s.comm.clone(),
            call,
            writing,
            fd,
            others,
        });
    }
    out
}

fn name_pid(pid: Pid, program: Pid, stuck: &Stuck) -> String {
    if pid == stuck.pid {
        format!(
            "process {pid} (the {} itself)",
            if stuck.writing { "writer" } else { "reader" }
        )
    } else if pid == program {
        format!("process {pid} (the program)")
    } else {
        format!("process {pid}")
    }
}

fn names(pids: &[Pid], program: Pid, stuck: &Stuck) -> String {
    let v: Vec<String> = pids.iter().map(|&p| name_pid(p, program, stuck)).collect();
    match v.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A wait that ended without what the checker waited for (a time-out, or
/// every process stuck), with the reason in one sentence when a pipe is it:
/// a reader whose pipe is still open for writing somewhere, a writer on a
/// full pipe. `program` is the pid the checker started. Other failures
/// pass unchanged.
pub(super) fn with_pipe_cause(failure: Failure, program: Pid) -> Failure {
    if failure.kind != Kind::TimedOut || failure.why.is_some() {
        return failure;
    }
    let stuck = stuck_on_pipes();
    // A reader whose pipe a process of the student's still holds open for
    // writing: the classic "no end of file".
    if let Some(s) = stuck.iter().find(|s| !s.writing && !s.others.is_empty()) {
        let who = if s.pid == program {
            format!("process {}, the program", s.pid)
        } else {
            format!("process {}, `{}`", s.pid, s.comm)
        };
        return failure.because(format!(
            "your reader ({who}) waits in {}() on a pipe (its fd {}) whose write end is still open in {}: \
             it will never see end of file while that end stays open",
            s.call,
            s.fd,
            names(&s.others, program, s)
        ));
    }
    if let Some(s) = stuck.iter().find(|s| s.writing) {
        let readers = if s.others.is_empty() {
            String::new()
        } else {
            format!(
                " (its read end is open in {})",
                names(&s.others, program, s)
            )
        };
        let who = if s.pid == program {
            format!("the program (process {})", s.pid)
        } else {
            format!("process {} (`{}`)", s.pid, s.comm)
        };
        return failure.because(format!(
            "{who} is blocked in {}() on a full pipe{readers}: nobody reads it. A pipe holds 64 KiB; \
             past that, a writer waits for a reader",
            s.call
        ));
    }
    failure
}

/// The fix for the cause [`with_pipe_cause`] found, as the failure's hint.
/// Without a diagnosed cause the failure stays as it is: the advice would
/// name a cause the checker has not seen.
pub(super) fn with_advice(f: Failure, advice: &str) -> Failure {
    if f.why.is_some() && f.hint.is_none() {
        f.hint(advice)
    } else {
        f
    }
}

/// The pipe ends a process holds beyond fds 0, 1 and 2: target -> access.
pub(super) fn pipe_ends(pid: Pid) -> (BTreeMap<i32, (String, u32)>, Vec<String>) {
    let mut pipes = BTreeMap::new();
    let mut other = Vec::new();
    for (fd, target) in procfs::fds(pid).into_iter().filter(|(fd, _)| *fd > 2) {
        if target.starts_with("pipe:") {
            let access = procfs::fd_access(pid, fd).unwrap_or(2);
            pipes.insert(fd, (target, access));
        } else {
            other.push(format!("{fd} ({target})"));
        }
    }
    (pipes, other)
}

pub(super) fn describe_ends(ends: &BTreeMap<i32, (String, u32)>) -> String {
    if ends.is_empty() {
        return "no pipe".into();
    }
    ends.iter()
        .map(|(fd, (t, a))| {
            let mode = match a {
                0 => "read end",
                1 => "write end",
                _ => "both ends",
            };
            format!("fd {fd}: {mode} of {t}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
