//! Two processes, two locks: opposite orders, back-off, a lock with a
//! time-out, and the kernel's EDEADLK.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{Actor, Release, UNORDERED, drive, expect_done, expect_holding, held, hold_lock_file};
use crate::diagnose;
use crate::peers::calls;
use crate::process::Exit;
use crate::scenario::{Failure, Outcome, Run};

/// Two distinct ranks for L<a> and L<b>, chosen at random.
fn two_ranks(run: &mut Run) -> (u32, u32) {
    let a = run.rng.random_range(1..=4);
    let b = run.rng.random_range(5..=9);
    (a, b)
}

pub fn opposite_order(run: &mut Run) -> Outcome {
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
                expect_holding(&all[i], &locks, "works")?;
            }
            Ok(())
        },
    )?;
    expect_done(&mut actors)
}

/// Why processes that should back off deadlock anyway.
const WAITS_HOLDING: &str = "a process waited for its second lock while holding the first, so the two closed a circle. Only try the second lock (try_lock_for), and release the first when that fails";

pub fn back_off(run: &mut Run) -> Outcome {
    let (a, b) = two_ranks(run);
    let patience: u64 = run.rng.random_range(40..=80);
    backs_off_asleep(run, a, b, patience)?;
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
                "works" => expect_holding(&all[i], &locks, "works")?,
                "backs off" => {
                    backed_off += 1;
                    let holds = held(all[i].p.pid);
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

pub fn lock_timeout(run: &mut Run) -> Outcome {
    let name = "L7";

    // 1. The checker keeps the lock: the program must give up, in time.
    let patience: u64 = run.rng.random_range(200..=400);
    let held = hold_lock_file(run, name)?;
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
    // While the checker holds it, the program waits: asleep between tries.
    let began = Instant::now();
    calls::expect_asleep_twice(run, p.pid, "waitlock", &format!("{name} (the checker holds it)"))
        .map_err(|f| {
            f.hint("In try_lock_for, sleep a few milliseconds between two try_lock calls: flock has no time-out, but the loop around it must not spin.")
        })?;
    if let Ok(Some(line)) = p.next_line(Instant::now()) {
        return Err(Failure::wrong(
            format!(
                "waitlock to keep trying for 6000 ms (the checker held {name} for {} ms)",
                began.elapsed().as_millis()
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
                began.elapsed().as_millis()
            ),
            format!("`{}`", line.text),
        ));
    }
    run.expect_success(&mut p)
}

pub fn kernel_detects_deadlock(run: &mut Run) -> Outcome {
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
    let mut refused = [0usize; 2];
    drive(
        run,
        &mut actors,
        Release::WhenStill,
        UNORDERED,
        |i, event, all| {
            if event.starts_with("deadlock-detected") {
                refused[i] += 1;
                let holds = held(all[i].p.pid);
                if refused[i] >= 3 && !holds.is_empty() {
                    return Err(Failure::wrong(
                        format!("{} to release its record after EDEADLK, and try again later", all[i].label),
                        format!(
                            "the kernel refused it {} times, and it still holds {}",
                            refused[i],
                            holds.join(" and ")
                        ),
                    )
                    .because("after EDEADLK it asked again at once, still holding its first record: the circle is still there, so the kernel refuses again and again (a busy loop). EDEADLK means: give up what you hold")
                    .hint("On EDEADLK, drop the guard of the record you hold, call given::back_off, and start again from the first record."));
                }
            }
            match event {
                "works" => {
                    // The kernel merges neighbouring records of one owner into
                    // one range: look for each byte, not for each name.
                    let pid = all[i].p.pid;
                    let locks: Vec<_> = diagnose::held_locks(pid)
                        .into_iter()
                        .map(|h| h.lock)
                        .collect();
                    let covered = |byte: u32| {
                        let byte = u64::from(byte);
                        locks.iter().any(|l| {
                            l.kind == "POSIX" && l.start <= byte && l.end.is_none_or(|e| byte <= e)
                        })
                    };
                    if !(covered(a) && covered(b)) {
                        expect_holding(&all[i], &bytes, "works")?;
                    }
                }
                "backs off" => {
                    let holds = held(all[i].p.pid);
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

/// The checker holds L<b> for a while; `pair --backoff MS a b` tries,
/// backs off and tries again meanwhile: asleep most of the time, never in
/// a busy loop. Then the checker lets go, and the program must finish.
fn backs_off_asleep(run: &mut Run, a: u32, b: u32, patience: u64) -> Outcome {
    let held_by_us = hold_lock_file(run, &format!("L{b}"))?;
    let args = [
        "--backoff".to_string(),
        patience.to_string(),
        a.to_string(),
        b.to_string(),
    ];
    let mut actors = vec![Actor::start(run, "pair", &args)?];
    let label = actors[0].label.clone();
    calls::expect_asleep_twice(run, actors[0].p.pid, &label, &format!("L{b} (the checker holds it)"))
    .map_err(|f| {
        f.hint("When the second lock stays busy, release the first and call given::back_off (it sleeps); try the second with try_lock_for, which sleeps between tries, not with one try_lock in a loop.")
    })?;
    drop(held_by_us);
    drive(
        run,
        &mut actors,
        Release::FirstThenAtOnce,
        WAITS_HOLDING,
        |_, _, _| Ok(()),
    )?;
    expect_done(&mut actors)
}
