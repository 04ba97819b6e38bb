//! The dining philosophers: a gated dinner that provokes the circle, two
//! dinners at random paces, and a neighbour who eats for a long time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{
    Actor, Release, UNORDERED, drive, expect_done, expect_holding, held, hold_lock_file, is_gate,
};
use crate::peers::calls;
use crate::process::Exit;
use crate::scenario::{Failure, Outcome, Run};

pub const SEATS: u32 = 5;

pub fn dining_philosophers(run: &mut Run) -> Outcome {
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
            if event == "thinks" && pace.is_none() {
                // Gated: it stays at this gate, so it thinks right now.
                let holds = held(all[i].p.pid);
                if !holds.is_empty() {
                    return Err(Failure::wrong(
                        format!("{} to hold no fork while it thinks", all[i].label),
                        format!(
                            "/proc/{}/fdinfo shows it holding {} while it thinks",
                            all[i].p.pid,
                            holds.join(" and ")
                        ),
                    )
                    .because("the forks are taken before thinking (or kept from one meal to the next): held across the thinking, they keep both neighbours from eating for nothing")
                    .hint("In `dine`, think first, then take both forks, eat, and drop the guards before the next meal's thinking."));
                }
            }
            let Some(meal) = event.strip_prefix("eats meal=") else {
                return Ok(());
            };
            let meal: u32 = meal.parse().unwrap_or(0);
            eaten.entry(i).or_default().push(meal);
            if pace.is_some() {
                return Ok(());
            }
            // Gated: the philosopher stays at this gate, so it still eats.
            expect_holding(&all[i], &forks(i), "eats")?;
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

/// The checker holds one fork, as a neighbour who eats for a long time,
/// beside one philosopher: first a fork at random before it starts, then,
/// gated, the fork it needs second once it holds its first. Either way it
/// must wait asleep, and eat as soon as the fork is free.
pub fn slow_neighbour(run: &mut Run) -> Outcome {
    let seat: u32 = run.rng.random_range(0..SEATS);
    let fork = if run.rng.random_bool(0.5) {
        seat
    } else {
        (seat + 1) % SEATS
    };
    busy_before_it_starts(run, seat, fork)?;
    let seat: u32 = run.rng.random_range(0..SEATS);
    busy_once_it_holds_one(run, seat)
}

const SPINS: &str = "Wait for a busy fork with lock() (flock blocks, asleep), or, with try_lock, \
                     sleep between tries: a try_lock loop without a pause spins while the \
                     neighbour eats.";

fn busy_before_it_starts(run: &mut Run, seat: u32, fork: u32) -> Outcome {
    let name = format!("fork-{fork}");
    let held_by_us = hold_lock_file(run, &format!("fork-{fork}"))?;
    let args: Vec<String> = [seat, SEATS, 1, 0, 0, 0]
        .iter()
        .map(u32::to_string)
        .collect();
    let mut actors = vec![Actor::start(run, "philosopher", &args)?];
    let pid = actors[0].p.pid;
    let who = format!("philosopher {seat} (pid {pid})");
    // It cannot eat: it waits for the checker's fork. Waiting is sleeping.
    calls::until_sleeping_in(run, pid, &["flock"], Duration::from_millis(500));
    calls::expect_asleep_twice(
        run,
        pid,
        &who,
        &format!("{name} (its neighbour, the checker, holds it)"),
    )
    .map_err(|f| f.hint(SPINS))?;
    while let Ok(Some(line)) = actors[0].p.next_line(Instant::now()) {
        if line.text.contains("eats") {
            return Err(Failure::wrong(
                format!("{who} to wait for {name}, which the checker holds"),
                format!("`{}`", line.text),
            )
            .because("it ate without holding both its forks"));
        }
        let prefix = format!("pid={pid} ");
        let event = line.text.trim().trim_start_matches(&prefix).to_string();
        actors[0].events.push(event);
    }
    drop(held_by_us);
    drive(
        run,
        &mut actors,
        Release::WhenStill,
        UNORDERED,
        |_, _, _| Ok(()),
    )?;
    if !actors[0].events.iter().any(|e| e.contains("eats meal=1")) {
        return Err(Failure::wrong(
            format!("{who} to eat its meal once {name} was free"),
            format!("it reported {:?}", actors[0].events),
        ));
    }
    expect_done(&mut actors)
}

/// Gated: once the philosopher holds its first fork, the checker takes
/// the other one, and lets it go on: it waits holding one fork.
fn busy_once_it_holds_one(run: &mut Run, seat: u32) -> Outcome {
    let args: Vec<String> = vec![
        "--gate".into(),
        seat.to_string(),
        SEATS.to_string(),
        "1".into(),
    ];
    let mut p = run.spawn("philosopher", &args)?;
    let pid = p.pid;
    let who = format!("philosopher {seat} (pid {pid})");
    let prefix = format!("pid={pid} ");
    let mine = [seat, (seat + 1) % SEATS];
    let first = loop {
        let line = run.line(
            &mut p,
            &format!("{who} to report its first fork (`took fork-N`)"),
        )?;
        let event = line.text.trim().trim_start_matches(&prefix).to_string();
        if let Some(n) = event.strip_prefix("took fork-") {
            match n.parse::<u32>() {
                Ok(n) if mine.contains(&n) => break n,
                _ => {
                    return Err(Failure::wrong(
                        format!("{who} to take fork-{} or fork-{}", mine[0], mine[1]),
                        format!("`{}`", line.text),
                    ));
                }
            }
        }
        if event.starts_with("eats") {
            return Err(Failure::wrong(
                format!("{who} to take a fork before it eats"),
                format!("`{}`", line.text),
            ));
        }
        if is_gate(&event) {
            let _ = p.send("go\n");
        }
    };
    let other = if first == mine[0] { mine[1] } else { mine[0] };
    let held_by_us = hold_lock_file(run, &format!("fork-{other}"))?;
    let _ = p.send("go\n");
    calls::until_sleeping_in(run, pid, &["flock"], Duration::from_millis(500));
    calls::expect_asleep_twice(
        run,
        pid,
        &who,
        &format!(
            "fork-{other}, holding fork-{first} (its neighbour, the checker, holds fork-{other})"
        ),
    )
    .map_err(|f| f.hint(SPINS))?;
    drop(held_by_us);
    // Every gate open from now on.
    p.close_stdin();
    let rest: Vec<String> = run
        .rest(
            &mut p,
            &format!("{who} to eat and finish once fork-{other} is free"),
        )?
        .into_iter()
        .map(|l| l.text.trim().trim_start_matches(&prefix).to_string())
        .collect();
    let exit = run.wait(&mut p)?;
    if !rest.iter().any(|e| e == "eats meal=1") || rest.last().map(String::as_str) != Some("done") {
        return Err(Failure::wrong(
            format!("{who} to eat its meal once fork-{other} was free, then report `done`"),
            format!("it reported {rest:?}"),
        ));
    }
    if exit != Exit::Code(0) {
        return Err(Failure::wrong(
            format!("{who} to exit with status 0"),
            format!("it ended with {exit}"),
        ));
    }
    Ok(())
}
