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

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use rand::Rng;

use crate::diagnose;
use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario};

pub static LAB: Lab = Lab {
    number: 8,
    slug: "deadlock",
    title: "Deadlock: lock ordering and back-off",
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
            run: opposite_order,
        },
        Scenario {
            name: "dining-philosophers",
            points: 3,
            limit: Duration::from_secs(12),
            does: "seats 5 philosophers (5 processes, 5 fork locks): first gated so that each takes a first fork before anyone takes a second, then twice more with random think and eat times",
            expects: "every philosopher to eat all its meals holding both its forks, never at the same time as a neighbour, and nobody to deadlock",
            hints: &[
                "If every philosopher takes the left fork first, all five can hold one fork and wait for the right one: a circle.",
                "The forks are locks with ranks: take the lower-ranked fork first (`lock_both`). The last philosopher then reaches for fork 0 before fork 4, and the circle cannot close.",
                "`dine`: for each meal, think, take both forks with `lock_both`, `pace.eat(meal)`, then drop the guards.",
            ],
            max_procs: 8,
            run: dining_philosophers,
        },
        Scenario {
            name: "back-off",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `pair --backoff MS 1 2` and `pair --backoff MS 2 1` (opposite orders, on purpose) and lets both take their first lock before either tries the second",
            expects: "both to finish; whoever backs off holds no lock while it waits",
            hints: &[
                "Try-lock with back-off: take the first lock, try the second for a while (`try_lock_for`); if it stays busy, release the first, wait a random time, and start again.",
                "Drop the first guard *before* `given::back_off`: a process that backs off while still holding its lock leaves the other one waiting for it.",
            ],
            max_procs: 4,
            run: back_off,
        },
        Scenario {
            name: "lock-timeout",
            points: 2,
            limit: Duration::from_secs(8),
            does: "holds L7 itself and runs `waitlock L7 MS`, once keeping the lock, once releasing it while the program waits",
            expects: "`gave up on L7` no sooner than MS ms when the lock stays busy, and `got L7` as soon as the checker lets go of it",
            hints: &[
                "`try_lock_for`: call `try_lock` in a loop until it succeeds or the deadline passes; sleep a few milliseconds between tries.",
                "A blocking `lock()` never gives up, and a single `try_lock()` gives up at once: the time-out is the loop around `try_lock`.",
            ],
            max_procs: 4,
            run: lock_timeout,
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
            run: kernel_detects_deadlock,
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
    ],
    variants: &[],
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
    ["took ", "eats ", "works", "backs off"]
        .iter()
        .any(|g| event.starts_with(g))
}

/// Reads what `a` printed so far; returns its new gate event, if any.
fn pump(a: &mut Actor) -> Result<Option<String>, Failure> {
    let mut new_gate = None;
    while !a.eof {
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
                if is_gate(&event) {
                    a.gate = Some(event.clone());
                    new_gate = Some(event.clone());
                }
                a.events.push(event);
                if new_gate.is_some() {
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
    Ok(new_gate)
}

/// How the checker releases the programs from their gates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Only when every program is at a gate or waiting for a lock.
    WhenStill,
    /// Like `WhenStill` the first time, then each one as soon as it arrives.
    FirstThenAtOnce,
}

/// Runs `actors` to their end through their gates. `on_gate(i, event,
/// actors)` checks each gate as it is reached, before the release. Fails
/// at once with the circle when every live program waits for a lock.
fn drive(
    run: &Run,
    actors: &mut [Actor],
    release: Release,
    why_deadlock: &str,
    mut on_gate: impl FnMut(usize, &str, &[Actor]) -> Outcome,
) -> Outcome {
    let mut at_once = false;
    let mut stuck_since: Option<Instant> = None;
    loop {
        for i in 0..actors.len() {
            if let Some(event) = pump(&mut actors[i])? {
                on_gate(i, &event, actors)?;
                if at_once {
                    actors[i].release();
                }
            }
        }
        if actors.iter().all(|a| !a.live()) {
            return Ok(());
        }
        let live: Vec<i32> = actors
            .iter()
            .filter(|a| a.exit.is_none())
            .map(|a| a.p.pid)
            .collect();
        let waiting: Vec<i32> = diagnose::lock_waits(&live)
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
fn deadlocked(actors: &[Actor], live: &[i32]) -> Failure {
    let label = |pid: i32| {
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
fn held(pid: i32, actors: &[Actor]) -> Vec<String> {
    let pids: Vec<i32> = actors.iter().map(|a| a.p.pid).collect();
    diagnose::locks_held(pid, &pids)
}

/// At a `works` or `eats` gate: the program must hold every lock in `needs`.
fn expect_holding(a: &Actor, needs: &[String], actors: &[Actor], doing: &str) -> Outcome {
    let holds = held(a.p.pid, actors);
    let missing: Vec<&String> = needs.iter().filter(|n| !holds.contains(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("{} to hold {} while it {doing}", a.label, needs.join(" and ")),
        format!(
            "/proc/locks shows it holding {}",
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

/// Two distinct ranks for L<a> and L<b>, chosen at random.
fn two_ranks(run: &mut Run) -> (u32, u32) {
    let a = run.rng.random_range(1..=4);
    let b = run.rng.random_range(5..=9);
    (a, b)
}

fn opposite_order(run: &mut Run) -> Outcome {
    let (a, b) = two_ranks(run);
    let locks = [format!("L{a}.lock"), format!("L{b}.lock")];
    let gate = "--gate".to_string();
    let mut actors = vec![
        Actor::start(run, "pair", &[gate.clone(), a.to_string(), b.to_string()])?,
        Actor::start(run, "pair", &[gate, b.to_string(), a.to_string()])?,
    ];
    drive(
        run,
        &mut actors,
        Release::WhenStill,
        UNORDERED,
        |i, event, all| {
            if event == "works" {
                expect_holding(&all[i], &locks, all, "works")?;
            }
            Ok(())
        },
    )?;
    expect_done(&mut actors)
}

const SEATS: u32 = 5;

fn dining_philosophers(run: &mut Run) -> Outcome {
    let meals: u32 = run.rng.random_range(2..=3);
    // First: gated, everyone takes a first fork before anyone a second.
    dinner(run, meals, None)?;
    // Then twice with random think and eat times, no gates.
    for _ in 0..2 {
        let seed: u64 = run.rng.random();
        dinner(run, meals, Some(seed))?;
    }
    Ok(())
}

/// One dinner of SEATS philosophers; `pace` is a seed for random times,
/// `None` for the gated run.
fn dinner(run: &mut Run, meals: u32, pace: Option<u64>) -> Outcome {
    let mut actors = Vec::new();
    for seat in 0..SEATS {
        let mut args = vec![seat.to_string(), SEATS.to_string(), meals.to_string()];
        match pace {
            None => args.insert(0, "--gate".into()),
            Some(seed) => args.extend([
                "15".into(),
                "10".into(),
                (seed + u64::from(seat)).to_string(),
            ]),
        }
        actors.push(Actor::start(run, "philosopher", &args)?);
    }
    let forks = |seat: usize| {
        let s = seat as u32;
        [
            format!("fork-{s}.lock"),
            format!("fork-{}.lock", (s + 1) % SEATS),
        ]
    };
    let n = actors.len();
    // Meals seen per seat, in order.
    let mut eaten: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    drive(
        run,
        &mut actors,
        Release::WhenStill,
        UNORDERED,
        |i, event, all| {
            let Some(meal) = event.strip_prefix("eats meal=") else {
                return Ok(());
            };
            let meal: u32 = meal.parse().unwrap_or(0);
            eaten.entry(i).or_default().push(meal);
            if pace.is_some() {
                return Ok(());
            }
            // Gated: the philosopher stays at this gate, so it still eats.
            expect_holding(&all[i], &forks(i), all, "eats")?;
            for other in [(i + 1) % n, (i + n - 1) % n] {
                if all[other]
                    .gate
                    .as_deref()
                    .is_some_and(|g| g.starts_with("eats"))
                {
                    return Err(Failure::wrong(
                        "no two neighbours eating at the same time",
                        format!("{} and {} eat at once", all[i].label, all[other].label),
                    )
                    .because(
                        "neighbours share a fork: each must hold both its forks while it eats",
                    ));
                }
            }
            Ok(())
        },
    )
    .map_err(|f| {
        if pace.is_some() {
            let mut f = f;
            f.details.push(format!(
                "(in a run without gates, with random think and eat times, seeds from {})",
                pace.unwrap_or(0)
            ));
            f
        } else {
            f
        }
    })?;
    let wanted: Vec<u32> = (1..=meals).collect();
    for (i, a) in actors.iter().enumerate() {
        let got = eaten.get(&i).cloned().unwrap_or_default();
        if got != wanted && a.exit == Some(Exit::Code(0)) {
            return Err(Failure::wrong(
                format!("{} to eat meals {wanted:?}", a.label),
                format!("it ate {got:?}"),
            ));
        }
    }
    expect_done(&mut actors)
}

/// Why processes that should back off deadlock anyway.
const WAITS_HOLDING: &str = "a process waited for its second lock while holding the first, so the two closed a circle. Only try the second lock (try_lock_for), and release the first when that fails";

fn back_off(run: &mut Run) -> Outcome {
    let (a, b) = two_ranks(run);
    let patience: u64 = run.rng.random_range(40..=80);
    let opts = [
        "--gate".to_string(),
        "--backoff".into(),
        patience.to_string(),
    ];
    let args = |x: u32, y: u32| {
        let mut v = opts.to_vec();
        v.extend([x.to_string(), y.to_string()]);
        v
    };
    let mut actors = vec![
        Actor::start(run, "pair", &args(a, b))?,
        Actor::start(run, "pair", &args(b, a))?,
    ];
    let locks = [format!("L{a}.lock"), format!("L{b}.lock")];
    let mut backed_off = 0;
    drive(
        run,
        &mut actors,
        Release::FirstThenAtOnce,
        WAITS_HOLDING,
        |i, event, all| {
            match event {
                "works" => expect_holding(&all[i], &locks, all, "works")?,
                "backs off" => {
                    backed_off += 1;
                    let holds = held(all[i].p.pid, all);
                    if !holds.is_empty() {
                        return Err(Failure::wrong(
                        format!("{} to hold no lock while it backs off", all[i].label),
                        format!("it backs off and still holds {}", holds.join(" and ")),
                    )
                    .because("the first lock must be released before backing off: while it holds it, the other process can never get it, and both go on failing for ever"));
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    expect_done(&mut actors)?;
    if backed_off == 0 {
        return Err(Failure::wrong(
            "a process to back off: each held the lock the other wanted",
            "neither reported `backs off`",
        )
        .because(
            "when try_lock_for gives up, call given::back_off after releasing the first lock",
        ));
    }
    Ok(())
}

fn lock_timeout(run: &mut Run) -> Outcome {
    let name = "L7";
    let path = run.sandbox.tmp.join(format!("{name}.lock"));
    let take = || -> Result<Flock<std::fs::File>, Failure> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Failure::internal(format!("opening {}: {e}", path.display())))?;
        Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| Failure::internal(format!("flock {}: {e}", path.display())))
    };

    // 1. The checker keeps the lock: the program must give up, in time.
    let patience: u64 = run.rng.random_range(200..=400);
    let held = take()?;
    // Before the spawn: the program cannot start its wait any earlier.
    let spawned_at = Instant::now();
    let mut p = run.spawn("waitlock", &[name.into(), patience.to_string()])?;
    let until = (Instant::now() + Duration::from_millis(patience + 4000)).min(run.deadline);
    let line = match p.next_line(until) {
        Ok(Some(line)) => line.text,
        Ok(None) => {
            return Err(Failure::wrong(
                format!("`pid={} gave up on {name} after T ms`", p.pid),
                "the program closed its output first",
            ));
        }
        Err(_) => {
            let mut f = run.timed_out(&format!(
                "waitlock to give up on {name} after {patience} ms (the checker holds it)"
            ));
            f.why = Some(format!(
                "it still waits, {} ms later: a blocking lock() never gives up. Call try_lock() in a loop until the deadline",
                patience + 4000
            ));
            return Err(f);
        }
    };
    let waited = line
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|w| w.parse::<u64>().ok());
    if !line.contains(&format!("gave up on {name}")) {
        return Err(Failure::wrong(
            format!("`gave up on {name} ...`: the checker holds {name} all along"),
            format!("`{line}`"),
        ));
    }
    let real = spawned_at.elapsed().as_millis() as u64;
    if waited.is_some_and(|w| w < patience) || real < patience {
        return Err(Failure::wrong(
            format!("waitlock to try for {patience} ms before it gives up"),
            format!("`{line}`"),
        )
        .because("it gave up before its patience ran out: keep trying (try_lock, a short sleep, again) until the deadline"));
    }
    run.expect_success(&mut p)?;

    // 2. The checker lets go while the program waits: it must get it.
    let mut p = run.spawn("waitlock", &[name.into(), "6000".into()])?;
    let hold_for = Duration::from_millis(run.rng.random_range(150..=300));
    std::thread::sleep(hold_for);
    if let Ok(Some(line)) = p.next_line(Instant::now()) {
        return Err(Failure::wrong(
            format!(
                "waitlock to keep trying for 6000 ms (the checker held {name} for {} ms)",
                hold_for.as_millis()
            ),
            format!("`{}`", line.text),
        )
        .because("it gave up at once: a single try_lock is not a time-out. Loop until the lock is yours or the deadline passes"));
    }
    drop(held);
    let what = format!("`got {name} after T ms` once the checker let go");
    let mut line = run.line(&mut p, &what)?;
    // The given code reports the lock taken first.
    while line.text.contains(&format!("took {name}")) {
        line = run.line(&mut p, &what)?;
    }
    if !line.text.contains(&format!("got {name}")) {
        return Err(Failure::wrong(
            format!(
                "`got {name}`: the checker released it after {} ms",
                hold_for.as_millis()
            ),
            format!("`{}`", line.text),
        ));
    }
    run.expect_success(&mut p)
}

fn kernel_detects_deadlock(run: &mut Run) -> Outcome {
    let (a, b) = two_ranks(run);
    let gate = "--gate".to_string();
    let mut actors = vec![
        Actor::start(
            run,
            "records",
            &[gate.clone(), a.to_string(), b.to_string()],
        )?,
        Actor::start(run, "records", &[gate, b.to_string(), a.to_string()])?,
    ];
    let bytes = [
        format!("records.db byte {a}"),
        format!("records.db byte {b}"),
    ];
    drive(
        run,
        &mut actors,
        Release::WhenStill,
        UNORDERED,
        |i, event, all| {
            match event {
                "works" => {
                    // The kernel merges neighbouring records of one owner into
                    // one range: look for each byte, not for each name.
                    let pid = all[i].p.pid;
                    let locks = procfs::file_locks();
                    let covered = |byte: u32| {
                        let byte = u64::from(byte);
                        locks.iter().any(|l| {
                            !l.waiting
                                && l.pid == pid
                                && l.kind == "POSIX"
                                && l.start <= byte
                                && l.end.is_none_or(|e| byte <= e)
                        })
                    };
                    if !(covered(a) && covered(b)) {
                        expect_holding(&all[i], &bytes, all, "works")?;
                    }
                }
                "backs off" => {
                    let holds = held(all[i].p.pid, all);
                    if !holds.is_empty() {
                        return Err(Failure::wrong(
                        format!("{} to hold no record while it backs off", all[i].label),
                        format!("it backs off and still holds {}", holds.join(" and ")),
                    )
                    .because("after EDEADLK, release the record you hold before backing off: the other process waits for it"));
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    let detected = actors
        .iter()
        .any(|x| x.events.iter().any(|e| e.starts_with("deadlock-detected")));
    if let Some(failed) = actors.iter().find(|x| x.exit != Some(Exit::Code(0))) {
        if detected {
            return Err(Failure::wrong(
                format!("{} to recover from EDEADLK and finish", failed.label),
                format!(
                    "it ended with {}",
                    failed.exit.map(|e| e.to_string()).unwrap_or_default()
                ),
            )
            .because("the kernel refused its lock with EDEADLK (\"Resource deadlock would occur\"): that is not an error to return but a signal to release the record it holds, back off, and try again"));
        }
    }
    expect_done(&mut actors)?;
    if !detected {
        return Err(Failure::wrong(
            "the kernel to refuse one lock with EDEADLK (each process held the record the other wanted)",
            "no process reported `deadlock-detected`",
        ));
    }
    Ok(())
}
