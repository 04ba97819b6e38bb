//! Lab 08 — deadlock: two locks in opposite orders, lock ordering, the
//! dining philosophers, try-lock with back-off, a lock with a time-out, and
//! the kernel's EDEADLK.
//!
//! The programs take kernel file locks (flock, fcntl), which `/proc/locks`
//! shows: who holds each lock and who waits for it. Started with `--gate`,
//! they stop after every lock they take (and when they eat, work or back
//! off) until the checker writes a line on their stdin. The checker drives
//! them with these gates: it lets everyone take a first lock before anyone
//! asks for a second one, so that a wrong order deadlocks every time, and
//! it sees a deadlock as it happens (every live process waiting for a lock
//! another one holds), naming the circle.

mod dinner;
mod pairs;

use crate::pid::Pid;
use nix::fcntl::{Flock, FlockArg};
use std::time::{Duration, Instant};

use crate::diagnose;
use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant};

pub static LAB: Lab = Lab {
    number: 8,
    slug: "deadlock",
    title: "Deadlock: lock ordering and back-off",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "opposite-order",
            points: 3,
            limit: Duration::from_secs(8),
            does: "runs `pair 1 2` and `pair 2 1` together (the same two locks, named in opposite orders), lets both take their first lock, then both go on",
            expects: "both to finish, each holding L1 and L2 while it works: no deadlock, whatever order the locks are named in",
            hints: &[
                "Two processes that take the same two locks in opposite orders can each hold one and wait for the other for ever. Make every process take them in the same order.",
                "In `lock_both`, compare the ranks: lock the one with the lower rank first, then the other, whatever order the caller passed them in.",
                "Keep both guards alive until the caller drops them: `let _ = lock.lock()?` releases the lock at once.",
            ],
            max_procs: 4,
            run: pairs::opposite_order,
        },
        Scenario {
            name: "dining-philosophers",
            points: 3,
            limit: Duration::from_secs(12),
            does: "seats 5 philosophers (5 processes, 5 fork locks): first gated so that each takes a first fork before anyone takes a second, then twice more with random think and eat times",
            expects: "every philosopher to eat all its meals holding both its forks, to think holding none, never to eat at the same time as a neighbour, and nobody to deadlock",
            hints: &[
                "If every philosopher takes the left fork first, all five can hold one fork and wait for the right one: a circle.",
                "The forks are locks with ranks: take the lower-ranked fork first (`lock_both`). The last philosopher then reaches for fork 0 before fork 4, and the circle cannot close.",
                "`dine`: for each meal, think, take both forks with `lock_both`, `pace.eat(meal)`, then drop the guards.",
            ],
            max_procs: 8,
            run: dinner::dining_philosophers,
        },
        Scenario {
            name: "slow-neighbour",
            points: 2,
            limit: Duration::from_secs(6),
            does: "holds one of a philosopher's forks itself, as a neighbour who eats for a long time, and seats that philosopher (one meal); then, with gates, takes a philosopher's second fork once it holds its first",
            expects: "the philosopher to wait asleep (no busy loop) while the fork is taken, then to eat as soon as the checker lets go, and finish",
            hints: &[
                "A philosopher whose fork is taken waits. lock() blocks in flock, asleep; a try_lock loop must sleep between tries.",
                "Holding one fork while you wait for the other is fine if every philosopher takes the lower-ranked fork first: no circle can form.",
            ],
            max_procs: 4,
            run: dinner::slow_neighbour,
        },
        Scenario {
            name: "back-off",
            points: 2,
            limit: Duration::from_secs(10),
            does: "holds L2 itself for a while against `pair --backoff MS 1 2`; then runs `pair --backoff MS 1 2` and `pair --backoff MS 2 1` (opposite orders, on purpose) and lets both take their first lock before either tries the second",
            expects: "no busy loop while the checker holds the lock; both to finish; whoever backs off holds no lock while it waits",
            hints: &[
                "Try-lock with back-off: take the first lock, try the second for a while (`try_lock_for`); if it stays busy, release the first, wait a random time, and start again.",
                "Drop the first guard *before* `given::back_off`: a process that backs off while still holding its lock leaves the other one waiting for it.",
            ],
            max_procs: 4,
            run: pairs::back_off,
        },
        Scenario {
            name: "lock-timeout",
            points: 2,
            limit: Duration::from_secs(8),
            does: "holds L7 itself and runs `waitlock L7 MS`, once keeping the lock, once releasing it while the program waits",
            expects: "`gave up on L7` no sooner than MS ms when the lock stays busy, asleep between tries, and `got L7` as soon as the checker lets go of it",
            hints: &[
                "`try_lock_for`: call `try_lock` in a loop until it succeeds or the deadline passes; sleep a few milliseconds between tries.",
                "A blocking `lock()` never gives up, and a single `try_lock()` gives up at once: the time-out is the loop around `try_lock`.",
            ],
            max_procs: 4,
            run: pairs::lock_timeout,
        },
        Scenario {
            name: "kernel-detects-deadlock",
            points: 2,
            limit: Duration::from_secs(8),
            does: "runs `records 1 2` and `records 2 1` (fcntl record locks in opposite orders) and lets both lock their first record before either asks for the second",
            expects: "the kernel to refuse one lock with EDEADLK, that process to release its record and retry, and both to finish",
            hints: &[
                "For fcntl record locks the kernel checks for a circle: the F_SETLKW that would close it fails with EDEADLK instead of waiting.",
                "In `lock_records`, on `Err(Errno::EDEADLK)` drop the record you hold, call `given::back_off`, and start again from the first record.",
            ],
            max_procs: 4,
            run: pairs::kernel_detects_deadlock,
        },
    ],
    fixtures: &[
        Fixture {
            name: "locks-in-named-order",
            caught_by: "opposite-order",
            says: "and waits for L",
        },
        Fixture {
            name: "forks-dropped-before-eating",
            caught_by: "dining-philosophers",
            says: "dropped too early",
        },
        Fixture {
            name: "left-fork-first",
            caught_by: "dining-philosophers",
            says: "and waits for fork-",
        },
        Fixture {
            name: "keeps-first-lock-on-failure",
            caught_by: "back-off",
            says: "still holds",
        },
        Fixture {
            name: "gives-up-at-once",
            caught_by: "lock-timeout",
            says: "gave up",
        },
        Fixture {
            name: "ignores-edeadlk",
            caught_by: "kernel-detects-deadlock",
            says: "EDEADLK",
        },
        Fixture {
            name: "try-lock-spins",
            caught_by: "lock-timeout",
            says: "busy loop",
        },
        Fixture {
            name: "thinks-holding-forks",
            caught_by: "dining-philosophers",
            says: "while it thinks",
        },
        Fixture {
            name: "retries-record-holding-first",
            caught_by: "kernel-detects-deadlock",
            says: "still holds",
        },
        Fixture {
            name: "spins-for-second-fork",
            caught_by: "slow-neighbour",
            says: "busy loop",
        },
        Fixture {
            name: "backs-off-without-waiting",
            caught_by: "back-off",
            says: "busy loop",
        },
    ],
    variants: &[Variant {
        name: "odd-even-philosophers",
        design: "no ranks at the table: even seats take the left fork first, odd seats the right one",
    }],
};

/// One program the checker drives through its gates.
struct Actor {
    p: Proc,
    /// `pair 1 2 (pid 123)`.
    label: String,
    /// The event it stopped at, waiting for the checker's go.
    gate: Option<String>,
    /// Every event it reported, in order (without the `pid=P `).
    events: Vec<String>,
    exit: Option<Exit>,
    eof: bool,
}

impl Actor {
    fn start(run: &mut Run, bin: &str, args: &[String]) -> Result<Actor, Failure> {
        let p = run.spawn(bin, args)?;
        let shown: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| *a != "--gate")
            .collect();
        let label = format!("`{bin} {}` (pid {})", shown.join(" "), p.pid);
        Ok(Actor {
            p,
            label,
            gate: None,
            events: Vec::new(),
            exit: None,
            eof: false,
        })
    }

    fn live(&self) -> bool {
        !(self.exit.is_some() && self.eof)
    }

    fn release(&mut self) {
        if self.gate.take().is_some() {
            // It may have died meanwhile: its exit status tells.
            let _ = self.p.send("go\n");
        }
    }
}

/// The events at which a gated program stops.
fn is_gate(event: &str) -> bool {
    ["took ", "eats ", "works", "backs off", "thinks"]
        .iter()
        .any(|g| event.starts_with(g))
}

/// Reads what `a` printed so far (a bounded number of lines at a time);
/// returns the new events. A gate, if one came, is the last of them.
fn pump(a: &mut Actor) -> Result<Vec<String>, Failure> {
    let mut new = Vec::new();
    while !a.eof && new.len() < 200 {
        match a.p.next_line(Instant::now()) {
            Ok(Some(line)) => {
                let text = line.text.trim().to_string();
                let prefix = format!("pid={} ", a.p.pid);
                let Some(event) = text.strip_prefix(&prefix) else {
                    return Err(Failure::wrong(
                        format!("{} to print lines `pid={} EVENT`", a.label, a.p.pid),
                        format!("`{text}`"),
                    )
                    .because("the given code reports every lock taken; the lab's programs print nothing else, and run in one process each"));
                };
                let event = event.to_string();
                a.events.push(event.clone());
                new.push(event.clone());
                if is_gate(&event) {
                    a.gate = Some(event);
                    // Nothing more can come before we release it.
                    break;
                }
            }
            Ok(None) => a.eof = true,
            Err(_) => break,
        }
    }
    if a.exit.is_none() {
        if let Ok(exit) = a.p.wait(Instant::now()) {
            a.exit = Some(exit);
        }
    }
    Ok(new)
}

/// How the checker releases the programs from their gates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Only when every program is at a gate or waiting for a lock.
    WhenStill,
    /// Like `WhenStill` the first time, then each one as soon as it arrives.
    FirstThenAtOnce,
}

/// Runs `actors` to their end through their gates. `on_event(i, event,
/// actors)` checks each event as it comes (a gate before its release).
/// Fails at once with the circle when every live program waits for a lock.
fn drive(
    run: &Run,
    actors: &mut [Actor],
    release: Release,
    why_deadlock: &str,
    mut on_event: impl FnMut(usize, &str, &[Actor]) -> Outcome,
) -> Outcome {
    let mut at_once = false;
    let mut stuck_since: Option<Instant> = None;
    loop {
        for i in 0..actors.len() {
            let events = pump(&mut actors[i])?;
            for event in &events {
                on_event(i, event, actors)?;
            }
            if at_once && events.last().is_some_and(|e| is_gate(e)) {
                actors[i].release();
            }
        }
        if actors.iter().all(|a| !a.live()) {
            return Ok(());
        }
        let live: Vec<Pid> = actors
            .iter()
            .filter(|a| a.exit.is_none())
            .map(|a| a.p.pid)
            .collect();
        let waiting: Vec<Pid> = diagnose::lock_waits(&live)
            .iter()
            .map(|w| w.waiter)
            .collect();
        let still = actors
            .iter()
            .filter(|a| a.exit.is_none())
            .all(|a| a.gate.is_some() || waiting.contains(&a.p.pid));
        if still && !live.is_empty() {
            if actors.iter().any(|a| a.gate.is_some()) {
                for a in actors.iter_mut() {
                    a.release();
                }
                if release == Release::FirstThenAtOnce {
                    at_once = true;
                }
                stuck_since = None;
            } else {
                // Everyone alive waits for a lock. Make sure it lasts (a
                // circle does) before calling it a deadlock.
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(60) {
                    return Err(deadlocked(actors, &live).because(why_deadlock));
                }
            }
        } else {
            stuck_since = None;
        }
        if Instant::now() >= run.deadline {
            let what: Vec<String> = actors
                .iter()
                .filter(|a| a.live())
                .map(|a| a.label.clone())
                .collect();
            return Err(run.timed_out(&format!("{} to finish", what.join(" and "))));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The failure for a deadlock seen as it happens: who holds what and
/// waits for what.
fn deadlocked(actors: &[Actor], live: &[Pid]) -> Failure {
    let label = |pid: Pid| {
        actors
            .iter()
            .find(|a| a.p.pid == pid)
            .map(|a| a.label.clone())
            .unwrap_or_else(|| format!("process {pid}"))
    };
    let circle = diagnose::lock_cycle(live, &label).unwrap_or_else(|| {
        let waits: Vec<String> = diagnose::lock_waits(live)
            .iter()
            .map(|w| {
                format!(
                    "{} waits for {} held by {}",
                    label(w.waiter),
                    w.lock,
                    label(w.holder)
                )
            })
            .collect();
        waits.join("; ")
    });
    Failure::wrong(
        "every process to get its locks and finish",
        format!("a deadlock: {circle}"),
    )
}

/// Why processes deadlock when they do not all take their locks in one order.
const UNORDERED: &str = "each process holds a lock the next one in the circle waits for, so none of them can ever go on. Take the locks in one global order (lowest rank first), whatever order they are named in";

/// Fails unless every actor reported `done` and exited with status 0.
fn expect_done(actors: &mut [Actor]) -> Outcome {
    for a in actors.iter_mut() {
        match a.exit {
            Some(Exit::Code(0)) => {}
            other => {
                let how = other
                    .map(|e| e.to_string())
                    .unwrap_or("still running".into());
                return Err(Failure::wrong(
                    format!("{} to finish with exit status 0", a.label),
                    format!("it ended with {how}"),
                ));
            }
        }
        if a.events.last().map(String::as_str) != Some("done") {
            return Err(Failure::wrong(
                format!("{} to print `pid={} done` last", a.label, a.p.pid),
                format!("its last line was {:?}", a.events.last()),
            ));
        }
    }
    Ok(())
}

/// The locks `pid` holds right now, by file name.
fn held(pid: Pid) -> Vec<String> {
    diagnose::locks_held(pid)
}

/// At a `works` or `eats` gate: the program must hold every lock in `needs`.
fn expect_holding(a: &Actor, needs: &[String], doing: &str) -> Outcome {
    let holds = held(a.p.pid);
    let missing: Vec<&String> = needs.iter().filter(|n| !holds.contains(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("{} to hold {} while it {doing}", a.label, needs.join(" and ")),
        format!(
            "/proc/{}/fdinfo shows it holding {}",
            a.p.pid,
            if holds.is_empty() {
                "no lock".to_string()
            } else {
                holds.join(" and ")
            }
        ),
    )
    .because(format!(
        "not held while it {doing}: {}. A guard dropped too early (`let _ = lock.lock()?` drops it at once), or a lock never taken",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" and ")
    )))
}

/// Takes the lock file `NAME.lock` in the scenario's directory for the
/// checker itself, without waiting (it is free when this is called): a
/// lock the program must then wait for, or give up on.
fn hold_lock_file(run: &Run, name: &str) -> Result<Flock<std::fs::File>, Failure> {
    let path = run.sandbox.tmp.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Failure::internal(format!("opening {}: {e}", path.display())))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Failure::internal(format!("flock {}: {e}", path.display())))
}
