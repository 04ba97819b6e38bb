//! Lab 01 — processes: fork, exit and wait.
//!
//! The programs hold their children at a gate (they read stdin to its end)
//! so the checker can look at them in /proc while they are alive: pids are
//! checked against the kernel, not taken on trust. Inputs are random.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::pid::Pid;
use nix::sys::signal::{Signal, kill};
use rand::Rng;
use rand::seq::SliceRandom;

mod endings;
mod fanout;

use crate::labs::Lab;
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant, field_num, quote_lines};

pub static LAB: Lab = Lab {
    number: 1,
    slug: "fork",
    title: "Processes: fork, exit and wait",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "fork-returns-twice",
            points: 2,
            limit: Duration::from_secs(5),
            does: "runs `twice`, which forks once, and looks at both processes in /proc while the child is held",
            expects: "a parent line and a child line whose pids are the real parent and child, the child reaped, exit status 0",
            hints: &[
                "`fork()` returns in both processes: `ForkResult::Parent { child }` in the parent, `ForkResult::Child` in the child. `start` returns the pid in the parent only.",
                "In the child, run `work`, flush stdout, then end the process with `libc::_exit(status)`. If the child returns from `start`, it goes on running the code of the parent.",
                "`join` is `waitpid(pid, None)`: loop while it fails with EINTR, and map `WaitStatus::Exited(_, code)` to `Ending::Exited(code)`.",
            ],
            max_procs: 16,
            run: returns_twice,
        },
        Scenario {
            name: "memory-is-copied",
            points: 2,
            limit: Duration::from_secs(5),
            does: "runs `copied TOTAL A1 A2 ...`: every worker adds its number to a global TOTAL",
            expects: "each worker to see TOTAL + its own number only, and the parent to still see TOTAL",
            hints: &[
                "After fork the child has a copy of the parent's memory. Each worker's addition lands in its own copy, so the parent's TOTAL never changes.",
                "If the worker's pid is the parent's pid, `start` ran the work itself instead of in a child.",
            ],
            max_procs: 16,
            run: memory_is_copied,
        },
        Scenario {
            name: "exit-status-reaches-parent",
            points: 2,
            limit: Duration::from_secs(5),
            does: "runs `exitcodes A B ...` (each worker exits with A + B) and kills one worker with a signal",
            expects: "the parent to report each worker's sum from its exit status, and the killed worker as killed by that signal",
            hints: &[
                "`waitpid` tells how the child ended: `WaitStatus::Exited(pid, code)` or `WaitStatus::Signaled(pid, signal, core)`. Report both.",
                "An exit status is one byte (0 to 255): enough for a small result, not for a real answer. Later labs use pipes for that.",
            ],
            max_procs: 16,
            run: exit_status_reaches_parent,
        },
        Scenario {
            name: "parallel-fan-out",
            points: 2,
            limit: Duration::from_secs(8),
            does: "runs `fanout N 300`: N workers that each take 300 ms",
            expects: "all N workers alive at once, the whole run well under N x 300 ms, and the parent waiting for every worker before it exits",
            hints: &[
                "Start every job first, keep the pids, and only then join them. Joining inside the loop that starts them runs one job at a time.",
                "A parent that returns without joining leaves its workers running as orphans: join every pid you started.",
            ],
            max_procs: 16,
            run: fanout::parallel_fan_out,
        },
        Scenario {
            name: "no-zombies",
            points: 2,
            limit: Duration::from_secs(5),
            does: "runs `reaper MS...`: workers sleep for different times, the parent reaps them with join_any",
            expects: "each worker reaped as soon as it ends (in the order they end), and no zombie left while the parent still runs",
            hints: &[
                "A child that has exited stays a zombie until its parent waits for it. `join_any` must block until some child ends: `waitpid(None, None)`.",
                "`waitpid` fails with ECHILD when there is no child left: that is when `join_any` returns `Ok(None)`. Do not use WNOHANG here.",
            ],
            max_procs: 16,
            run: fanout::no_zombies,
        },
        Scenario {
            name: "flush-before-fork",
            points: 1,
            limit: Duration::from_secs(5),
            does: "runs `prompt TEXT N`, which prints TEXT without a newline, then starts N workers",
            expects: "TEXT to appear exactly once, and N workers with pids of their own",
            hints: &[
                "stdout keeps text in a buffer in the process's memory until a newline or a flush. fork copies that buffer too.",
                "Flush stdout (`std::io::stdout().flush()`) in `start`, before calling fork.",
            ],
            max_procs: 16,
            run: fanout::flush_before_fork,
        },
        Scenario {
            name: "every-ending-reported",
            points: 2,
            limit: Duration::from_secs(8),
            does: "runs `endings` with workers that exit with a code of their own, panic, or are killed by the checker, each at its own time; sends the waiting parent SIGUSR1 (its handler has no SA_RESTART)",
            expects: "each ending reported (a panic as exit status 101), the parent asleep while it waits, waiting again after EINTR, and the parent's exit handler run once, by the parent only",
            hints: &[
                "join must block (waitpid without WNOHANG) and wait again when waitpid fails with EINTR: a signal handler ran, the child is still there.",
                "The child must never run the parent's code: catch a panic of the work (catch_unwind, status 101) and end with libc::_exit, which skips the exit handlers and the stdio buffers of the parent's copy.",
            ],
            max_procs: 16,
            run: endings::every_ending,
        },
        Scenario {
            name: "fork-fails-half-way",
            points: 2,
            limit: Duration::from_secs(8),
            does: "runs `limited N K`: run_parallel gets N jobs, but only K forks succeed (the next fails with EAGAIN, as at the process limit); the K workers wait at a gate",
            expects: "run_parallel to wait for the K workers it started, then return the fork error; no child left behind",
            hints: &[
                "fork fails with EAGAIN when the process limit is reached. The children already started are yours: join them before you return the error.",
                "`pids.push(start(job)?)` returns at the first failure and leaves the others running. Match on start's result instead.",
            ],
            max_procs: 16,
            run: endings::fork_fails,
        },
    ],
    fixtures: &[
        Fixture {
            name: "child-falls-through",
            caught_by: "fork-returns-twice",
            says: "went on running the parent's code",
        },
        Fixture {
            name: "runs-work-in-parent",
            caught_by: "memory-is-copied",
            says: "ran the work itself",
        },
        Fixture {
            name: "signal-reported-as-exit",
            caught_by: "exit-status-reaches-parent",
            says: "killed by",
        },
        Fixture {
            name: "waits-inside-loop",
            caught_by: "parallel-fan-out",
            says: "one at a time",
        },
        Fixture {
            name: "never-waits",
            caught_by: "parallel-fan-out",
            says: "never waited",
        },
        Fixture {
            name: "join-any-does-not-block",
            caught_by: "no-zombies",
            says: "zombie",
        },
        Fixture {
            name: "no-flush-before-fork",
            caught_by: "flush-before-fork",
            says: "flush",
        },
        Fixture {
            name: "exit-instead-of-_exit",
            caught_by: "every-ending-reported",
            says: "ended with exit",
        },
        Fixture {
            name: "panic-escapes-child",
            caught_by: "every-ending-reported",
            says: "panic escaped",
        },
        Fixture {
            name: "join-gives-up-on-eintr",
            caught_by: "every-ending-reported",
            says: "EINTR",
        },
        Fixture {
            name: "join-spins-with-wnohang",
            caught_by: "every-ending-reported",
            says: "busy loop",
        },
        Fixture {
            name: "fork-error-leaves-children",
            caught_by: "fork-fails-half-way",
            says: "unjoined",
        },
        Fixture {
            name: "lazy-iterator-join",
            caught_by: "memory-is-copied",
            says: "one at a time",
        },
    ],
    variants: &[Variant {
        name: "raw-libc",
        design: "libc::fork and libc::waitpid with the W* macros, and run_parallel reaping with waitpid(-1) in whatever order the children end",
    }],
};

/// Every pid in `pids` is alive and a child of `parent`, right now.
fn expect_children_of(parent: Pid, pids: &[Pid], who: &str) -> Outcome {
    for &pid in pids {
        if pid == parent {
            return Err(Failure::wrong(
                format!("{who} to run in a child process"),
                format!("{who} printed pid {pid}, the parent's own pid"),
            )
            .because("start() ran the work itself, in the parent: it must fork and run the work in the child"));
        }
        match procfs::stat(pid) {
            Some(s) if s.ppid == parent && !s.is_zombie() => {}
            Some(s) => {
                return Err(Failure::wrong(
                    format!("pid {pid} to be a live child of the program (pid {parent})"),
                    format!(
                        "pid {pid} is {} with parent {}",
                        state_name(s.state),
                        s.ppid
                    ),
                ));
            }
            None => {
                return Err(Failure::wrong(
                    format!("pid {pid} to be a live child of the program (pid {parent})"),
                    format!("there is no process {pid}"),
                ));
            }
        }
    }
    Ok(())
}

fn state_name(state: char) -> &'static str {
    match state {
        'Z' | 'X' => "a zombie",
        'T' | 't' => "stopped",
        'R' => "running",
        _ => "sleeping",
    }
}

/// What is left under the checker once the program has exited.
fn leftovers() -> Vec<procfs::Stat> {
    procfs::descendants(checker_pid())
}

/// Fails if `line` is not present among `lines`.
fn expect_line(lines: &[String], wanted: &str, program: &str) -> Outcome {
    if lines.iter().any(|l| l.trim() == wanted) {
        Ok(())
    } else {
        Err(Failure::wrong(
            format!("{program} to print `{wanted}`"),
            format!("it printed {}", quote_lines(lines)),
        ))
    }
}

fn returns_twice(run: &mut Run) -> Outcome {
    let mut p = run.spawn("twice", &[])?;
    let program = p.pid;
    let mut parent_line = None;
    let mut child_line = None;
    for _ in 0..2 {
        let line = run
            .line(
                &mut p,
                "a `parent pid=P child=C` line and a `child pid=C ppid=P` line",
            )?
            .text;
        if line.starts_with("parent pid=") {
            if let Some(first) = parent_line.replace(line.clone()) {
                return Err(fell_through(&first, &line, program));
            }
        } else if line.starts_with("child pid=") {
            child_line = Some(line);
        } else {
            return Err(Failure::wrong(
                "a `parent ...` or `child ...` line",
                format!("`{line}`"),
            ));
        }
    }
    let (parent_line, child_line) = (
        parent_line.unwrap_or_default(),
        child_line.unwrap_or_default(),
    );
    let said_parent = Pid::field(&parent_line, "pid").unwrap_or(Pid::from_raw(-1));
    let said_child = Pid::field(&parent_line, "child").unwrap_or(Pid::from_raw(-1));
    let child = Pid::field(&child_line, "pid").unwrap_or(Pid::from_raw(-1));
    let childs_parent = Pid::field(&child_line, "ppid").unwrap_or(Pid::from_raw(-1));
    if said_parent != program {
        return Err(Failure::wrong(
            format!("the parent's line to say pid={program}, the pid the checker started"),
            format!("`{parent_line}`"),
        ));
    }
    if said_child != child || childs_parent != program {
        return Err(Failure::wrong(
            "the parent's child= to be the child's pid, and the child's ppid= the parent's pid",
            format!("`{parent_line}` and `{child_line}`"),
        )
        .because("fork returns the child's pid in the parent; in the child, getpid() and getppid() tell who is who"));
    }
    expect_children_of(program, &[child], "the child")?;

    p.close_stdin();
    let rest: Vec<String> = run
        .rest(&mut p, "the program to finish")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    if let Some(extra) = rest.iter().find(|l| l.starts_with("parent pid=")) {
        return Err(fell_through(&parent_line, extra, program));
    }
    expect_line(
        &rest,
        &format!("parent: child {child} exited with 0"),
        "the parent",
    )?;
    run.expect_success(&mut p)?;
    let left = leftovers();
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no process left once the program has exited",
            format!(
                "{} process(es) still there: {:?}",
                left.len(),
                left.iter().map(|s| s.pid).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}

fn fell_through(first: &str, second: &str, program: Pid) -> Failure {
    Failure::wrong(
        format!("one `parent ...` line, from the program (pid {program})"),
        format!("two: `{first}` and `{second}`"),
    )
    .because(
        "the child returned from start() and went on running the parent's code. \
         The child must end with _exit once its work is done",
    )
}

fn memory_is_copied(run: &mut Run) -> Outcome {
    let total: i64 = run.rng.random_range(100..1000);
    let n = run.rng.random_range(3..=5);
    let mut addends: Vec<i64> = (1..100).collect();
    addends.shuffle(&mut run.rng);
    addends.truncate(n);
    let mut args = vec![total.to_string()];
    args.extend(addends.iter().map(i64::to_string));

    let mut p = run.spawn("copied", &args)?;
    let program = p.pid;
    let mut workers = Vec::new();
    for _ in 0..n {
        let line = run
            .line(
                &mut p,
                &format!("{n} lines `worker pid=W added A, total=T`"),
            )
            .map_err(|f| endings::serial_join(program, f))?
            .text;
        let (Some(pid), Some(seen)) = (Pid::field(&line, "pid"), field_num(&line, "total")) else {
            return Err(Failure::wrong(
                "a line `worker pid=W added A, total=T`",
                format!("`{line}`"),
            ));
        };
        let added = line
            .split_whitespace()
            .skip_while(|w| *w != "added")
            .nth(1)
            .and_then(|w| w.trim_end_matches(',').parse::<i64>().ok());
        expect_children_of(program, &[pid], "each worker")?;
        let Some(added) = added.filter(|a| addends.contains(a)) else {
            return Err(Failure::wrong(
                format!("a worker for each of {addends:?}"),
                format!("`{line}`"),
            ));
        };
        if seen != total + added {
            return Err(Failure::wrong(
                format!("the worker that added {added} to see total={}", total + added),
                format!("`{line}`"),
            )
            .because("every worker starts from its own copy of TOTAL; if they see each other's additions, they share the parent's memory, so they did not run in separate processes"));
        }
        workers.push(pid);
    }
    expect_children_of(program, &workers, "each worker")?;
    let distinct: BTreeSet<Pid> = workers.iter().copied().collect();
    if distinct.len() != workers.len() {
        return Err(Failure::wrong(
            "a different pid for each worker",
            format!("pids {workers:?}"),
        ));
    }

    p.close_stdin();
    let rest: Vec<String> = run
        .rest(&mut p, "the parent's last line")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    expect_line(
        &rest,
        &format!("parent pid={program} total={total}"),
        "the parent",
    )?;
    run.expect_success(&mut p)
}

fn exit_status_reaches_parent(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(3..=4);
    let pairs: Vec<(i32, i32)> = (0..n)
        .map(|_| (run.rng.random_range(0..=100), run.rng.random_range(0..=100)))
        .collect();
    let args: Vec<String> = pairs
        .iter()
        .flat_map(|(a, b)| [a.to_string(), b.to_string()])
        .collect();
    let mut p = run.spawn("exitcodes", &args)?;
    let program = p.pid;

    // pid -> the sum that worker must exit with.
    let mut sums: BTreeMap<Pid, i32> = BTreeMap::new();
    let mut unclaimed = pairs.clone();
    for _ in 0..n {
        let line = run
            .line(&mut p, &format!("{n} lines `worker pid=W adds A + B`"))
            .map_err(|f| endings::serial_join(program, f))?
            .text;
        let words: Vec<&str> = line.split_whitespace().collect();
        let pid = Pid::field(&line, "pid");
        let pair = match words.as_slice() {
            [_, _, "adds", a, "+", b] => a.parse().ok().zip(b.parse().ok()),
            _ => None,
        };
        let (Some(pid), Some(pair)) = (pid, pair) else {
            return Err(Failure::wrong(
                "a line `worker pid=W adds A + B`",
                format!("`{line}`"),
            ));
        };
        let Some(at) = unclaimed.iter().position(|&x| x == pair) else {
            return Err(Failure::wrong(
                format!("one worker for each pair of {pairs:?}"),
                format!("`{line}`"),
            ));
        };
        unclaimed.remove(at);
        sums.insert(pid, pair.0 + pair.1);
    }
    let pids: Vec<Pid> = sums.keys().copied().collect();
    expect_children_of(program, &pids, "each worker")?;

    // Kill one worker ourselves: only a parent that really waits for it can
    // report how it ended.
    let victim = pids[run.rng.random_range(0..pids.len())];
    let signal = [Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGINT][run.rng.random_range(0..3)];
    kill(nix::unistd::Pid::from(victim), signal)
        .map_err(|e| Failure::internal(format!("kill({victim}): {e}")))?;
    p.close_stdin();

    let rest: Vec<String> = run
        .rest(&mut p, "the parent's report")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    for (&pid, &sum) in &sums {
        let wanted = if pid == victim {
            format!("worker pid={pid} killed by {}", signal.as_str())
        } else {
            format!("worker pid={pid} exited with {sum}")
        };
        if !rest.iter().any(|l| l.trim() == wanted) {
            let said = rest
                .iter()
                .find(|l| Pid::field(l, "pid") == Some(pid))
                .map(|l| format!("`{l}`"))
                .unwrap_or_else(|| "nothing about it".into());
            let mut failure = Failure::wrong(
                format!("the parent to print `{wanted}`"),
                format!("it printed {said}"),
            );
            if pid == victim {
                failure = failure.because(format!(
                    "the checker killed worker {pid} with {}; waitpid reports that as WaitStatus::Signaled, which must become Ending::Killed",
                    signal.as_str()
                ));
            }
            return Err(failure);
        }
    }
    let finished: Vec<i32> = sums
        .iter()
        .filter(|(pid, _)| **pid != victim)
        .map(|(_, s)| *s)
        .collect();
    let average = f64::from(finished.iter().sum::<i32>()) / finished.len() as f64;
    expect_line(
        &rest,
        &format!("average of {} sums: {average:.2}", finished.len()),
        "the parent",
    )?;
    run.expect_success(&mut p)
}
