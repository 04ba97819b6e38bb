//! Workers that end in every way, and a fork that fails half way: the
//! scenarios where the parent's own waiting is put to the test.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::pid::Pid;
use nix::sys::signal::{Signal, kill};
use rand::Rng;
use rand::seq::SliceRandom;

use super::{expect_children_of, leftovers};
use crate::peers::calls;
use crate::process::Exit;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Kind, Outcome, Run, quote_lines};

/// The system calls a parent waiting for its children sleeps in.
const WAITS: &[&str] = &["wait4", "waitid"];

/// How one worker of `endings` is told to end, and how it must be reported.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Code(i32),
    Panic,
    /// Killed by the checker at the gate.
    Killed(Signal),
}

/// A stuck wait for worker lines, explained when the evidence says the
/// parent is waiting for its first worker before starting the next.
pub fn serial_join(program: Pid, mut failure: Failure) -> Failure {
    if failure.kind != Kind::TimedOut || failure.why.is_some() {
        return failure;
    }
    let alive: Vec<Pid> = crate::procfs::children(program)
        .into_iter()
        .filter(|&c| !calls::ended(c))
        .collect();
    if alive.len() == 1 && calls::sleeping_in(program).is_some_and(|c| WAITS.contains(&c)) {
        failure = failure
            .because(format!(
                "the parent waits (in {}) for its only worker, pid {}, before it starts the \
                 next one: the jobs run one at a time. Start every job first, then join them",
                calls::sleeping_in(program).unwrap_or("wait4"),
                alive[0]
            ))
            .hint(
                "In run_parallel, the loop that starts the jobs must not wait: keep the pids in \
                 a Vec, and join them in a second loop. A lazy iterator (`.map(start).map(join)`) \
                 also joins each job as soon as it starts it: collect the pids first.",
            );
    }
    failure
}

pub fn every_ending(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(4..=5);
    let signal = [Signal::SIGKILL, Signal::SIGTERM, Signal::SIGUSR2][run.rng.random_range(0..3)];
    let mut ends = vec![End::Panic, End::Killed(signal), End::Code(0)];
    while ends.len() < n {
        ends.push(End::Code(run.rng.random_range(1..=100)));
    }
    ends.shuffle(&mut run.rng);
    // Each its own time after the gate opens.
    let mut naps: Vec<u64> = (0..n as u64).map(|i| i * 80).collect();
    naps.shuffle(&mut run.rng);
    let specs: Vec<String> = ends
        .iter()
        .zip(&naps)
        .map(|(e, ms)| match e {
            End::Panic => format!("panic:{ms}"),
            End::Code(c) => format!("{c}:{ms}"),
            End::Killed(_) => format!("{}:{ms}", run.rng.random_range(1..=100)),
        })
        .collect();
    let mut p = run.spawn("endings", &specs)?;
    let program = p.pid;

    // worker index -> pid
    let mut pids: BTreeMap<usize, Pid> = BTreeMap::new();
    for _ in 0..n {
        let line = run
            .line(&mut p, &format!("{n} lines `worker I pid=W`"))
            .map_err(|f| serial_join(program, f))?
            .text;
        let index = line.split_whitespace().nth(1).and_then(|w| w.parse().ok());
        let (Some(index), Some(pid)) = (index, Pid::field(&line, "pid")) else {
            let happened = if line.starts_with("atexit ") {
                "the program ended first (its exit handler ran)".to_string()
            } else {
                format!("`{line}`")
            };
            return Err(Failure::wrong("a line `worker I pid=W`", happened));
        };
        pids.insert(index, pid);
    }
    let all: Vec<Pid> = pids.values().copied().collect();
    expect_children_of(program, &all, "each worker")?;

    // Every worker waits at the gate: the parent has nothing to do but wait.
    calls::expect_asleep_twice(run, program, "the parent", "its children").map_err(|f| {
        f.hint(
            "join must block in waitpid(pid, None) until the child ends. A loop around \
                 waitpid with WNOHANG asks again and again and burns a CPU while it waits.",
        )
    })?;
    let waiting = calls::until_sleeping_in(run, program, WAITS, Duration::from_secs(2));

    // A signal while it waits: waitpid fails with EINTR (no SA_RESTART).
    if waiting {
        kill(nix::unistd::Pid::from(program), Signal::SIGUSR1)
            .map_err(|e| Failure::internal(format!("kill({program}, SIGUSR1): {e}")))?;
        let line = run.line(&mut p, "`parent got SIGUSR1` from the parent's handler")?;
        if line.text.trim() != "parent got SIGUSR1" {
            return Err(Failure::wrong(
                "`parent got SIGUSR1` (the checker sent the parent SIGUSR1)",
                format!("`{}`", line.text),
            ));
        }
    }

    let victim_index = ends
        .iter()
        .position(|e| matches!(e, End::Killed(_)))
        .unwrap_or(0);
    let victim = pids[&victim_index];
    kill(nix::unistd::Pid::from(victim), signal)
        .map_err(|e| Failure::internal(format!("kill({victim}): {e}")))?;
    p.close_stdin();

    let rest: Vec<String> = run
        .rest(&mut p, "the parent's report of each ending")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let exit = run.wait(&mut p)?;
    let stderr = run
        .spawned
        .iter()
        .find(|s| s.pid == program)
        .map(|s| s.stderr.text())
        .unwrap_or_default();
    if exit != Exit::Code(0) {
        let mut f = Failure::wrong(
            "the parent to report every worker and exit with status 0",
            format!(
                "it ended with {exit}, having printed {}",
                quote_lines(&rest)
            ),
        );
        if waiting && (stderr.contains("EINTR") || stderr.contains("Interrupted")) {
            f = f
                .because(
                    "the checker sent the parent SIGUSR1 while it waited in waitpid; its handler \
                     ran, and waitpid failed with EINTR. join gave that up as an error instead \
                     of waiting again: the worker was still running",
                )
                .hint("In join (and join_any), call waitpid again when it fails with EINTR.");
        }
        return Err(f);
    }

    // Exit handlers belong to the parent: a child that runs them ended
    // through exit() (or a panic that unwound into the parent's code).
    let atexit: Vec<Pid> = rest
        .iter()
        .filter(|l| l.starts_with("atexit "))
        .filter_map(|l| Pid::field(l, "pid"))
        .collect();
    let by_worker: Vec<(usize, Pid)> = pids
        .iter()
        .filter(|(_, pid)| atexit.contains(pid))
        .map(|(&i, &pid)| (i, pid))
        .collect();
    if !by_worker.is_empty() {
        let only_panics = by_worker.iter().all(|(i, _)| ends[*i] == End::Panic);
        let who: Vec<Pid> = by_worker.iter().map(|(_, p)| *p).collect();
        let f = Failure::wrong(
            format!("the exit handler to run once, in the parent (pid {program})"),
            format!("it ran in worker(s) {who:?} too: `atexit pid=...` came from them"),
        );
        return Err(if only_panics {
            f.because(
                "the worker that panicked ran the parent's exit handler: its panic escaped the \
                 work closure, unwound through start() into the parent's code in the child, \
                 and ended the child the way main ends (exit, with every exit handler)",
            )
            .hint(
                "In the child, run the work inside std::panic::catch_unwind; a panic becomes \
                 status 101, and the child still ends with libc::_exit.",
            )
        } else {
            f.because(
                "the workers ended with exit (std::process::exit), which runs the exit \
                 handlers and flushes the stdio buffers of the parent's copy of the program \
                 a second time; a forked child must end with _exit",
            )
            .hint("End the child with `unsafe { libc::_exit(status) }`, after flushing stdout.")
        });
    }
    if atexit != [program] {
        return Err(Failure::wrong(
            format!("`atexit pid={program}` once, when the parent exits"),
            format!("it printed {}", quote_lines(&rest)),
        ));
    }

    for (i, end) in ends.iter().enumerate() {
        let pid = pids[&i];
        let wanted = match end {
            End::Code(c) => format!("worker pid={pid} exited with {c}"),
            End::Panic => format!("worker pid={pid} exited with 101"),
            End::Killed(s) => format!("worker pid={pid} killed by {}", s.as_str()),
        };
        if rest.iter().any(|l| l.trim() == wanted) {
            continue;
        }
        let said = rest
            .iter()
            .find(|l| l.starts_with("worker pid=") && Pid::field(l, "pid") == Some(pid))
            .map(|l| format!("`{l}`"))
            .unwrap_or_else(|| "nothing about it".into());
        let f = Failure::wrong(format!("`{wanted}`"), format!("the parent printed {said}"));
        return Err(match end {
            End::Killed(s) => f.because(format!(
                "the checker killed worker {pid} with {}: waitpid reports that as \
                 WaitStatus::Signaled, which is Ending::Killed",
                s.as_str()
            )),
            End::Panic => f.because(
                "the worker's work panicked: the child must catch it and exit with 101, as a \
                 Rust program that panics does",
            ),
            End::Code(_) => f,
        });
    }
    Ok(())
}

pub fn fork_fails(run: &mut Run) -> Outcome {
    let k: usize = run.rng.random_range(2..=3);
    let n = k + run.rng.random_range(2..=3);
    let mut p = run.spawn("limited", &[n.to_string(), k.to_string()])?;
    let program = p.pid;
    let mut workers = Vec::new();
    // A line of the parent's that comes before the workers are released
    // is the evidence that it returned without joining them.
    let mut early: Option<String> = None;
    while workers.len() < k {
        let line = run
            .line(&mut p, &format!("{k} lines `worker I pid=W started`"))
            .map_err(|f| serial_join(program, f))?
            .text;
        if !line.starts_with("worker ") {
            early.get_or_insert(line);
            continue;
        }
        let Some(pid) = Pid::field(&line, "pid") else {
            return Err(Failure::wrong(
                "a line `worker I pid=W started`",
                format!("`{line}`"),
            ));
        };
        workers.push(pid);
    }

    // Fork number k+1 fails now. The workers wait at the gate: the parent
    // must wait for them before it returns the error.
    let joined = run.poll(Duration::from_secs(3), || {
        if let Some(line) = early.take().or_else(|| run_next_line(&mut p)) {
            return Some(Err(line));
        }
        if calls::ended(program) {
            return Some(Err(String::new()));
        }
        calls::sleeping_in(program)
            .filter(|c| WAITS.contains(c))
            .map(|_| Ok(()))
    });
    match joined {
        Some(Ok(())) => expect_children_of(program, &workers, "each worker")?,
        Some(Err(line)) => {
            let still: Vec<Pid> = workers
                .iter()
                .copied()
                .filter(|&w| !calls::ended(w))
                .collect();
            let said = if line.is_empty() {
                "the program ended".to_string()
            } else {
                format!("the program printed `{line}`")
            };
            return Err(Failure::wrong(
                format!(
                    "run_parallel to wait for the {k} workers it started before it returns fork's error"
                ),
                format!("{said} while workers {still:?} were still running"),
            )
            .because(format!(
                "fork failed for job {} (the process limit); run_parallel returned (or panicked) \
                 at once, leaving the {k} children it had started behind, unjoined",
                k + 1
            ))
            .hint(
                "When start fails half way, join every pid already started, then return the \
                 error (`?` on start inside the loop returns before that).",
            ));
        }
        None => {
            return Err(Failure::wrong(
                "the parent to wait for its workers (in waitpid) once fork has failed",
                format!(
                    "it was neither waiting nor finished: {}",
                    calls::sleeping_in(program).unwrap_or("running")
                ),
            ));
        }
    }
    p.close_stdin();
    let rest: Vec<String> = run
        .rest(&mut p, "the parent's last lines")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let exit = run.wait(&mut p)?;
    if exit == Exit::Code(3) {
        return Err(Failure::internal(
            "the `limited` program could not make fork fail on this system (seccomp)",
        ));
    }
    let Some(failed) = rest.iter().find(|l| l.starts_with("run_parallel ")) else {
        return Err(Failure::wrong(
            "`run_parallel failed: ...`",
            format!("it printed {}", quote_lines(&rest)),
        ));
    };
    if !failed.starts_with("run_parallel failed") {
        return Err(Failure::wrong(
            format!("run_parallel to fail: fork failed for job {}", k + 1),
            format!("`{failed}`"),
        )
        .because("an error from start must reach the caller of run_parallel"));
    }
    let adopted: Vec<Pid> = run
        .monitor
        .ever_seen()
        .iter()
        .filter(|s| workers.contains(&s.pid) && s.ppid == checker_pid())
        .map(|s| s.pid)
        .collect();
    if !adopted.is_empty() || !rest.iter().any(|l| l == "no child left") {
        return Err(Failure::wrong(
            "every worker joined by the parent",
            format!(
                "it printed {}{}",
                quote_lines(&rest),
                if adopted.is_empty() {
                    String::new()
                } else {
                    format!("; workers {adopted:?} were left to the checker")
                }
            ),
        ));
    }
    let left = leftovers();
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no process left once the program has exited",
            format!("{} left", left.len()),
        ));
    }
    match exit {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong("exit status 0", other.to_string())),
    }
}

/// A line the program has printed already, if any, without waiting.
fn run_next_line(p: &mut crate::process::Proc) -> Option<String> {
    match p.next_line(std::time::Instant::now()) {
        Ok(Some(line)) => Some(line.text),
        _ => None,
    }
}
