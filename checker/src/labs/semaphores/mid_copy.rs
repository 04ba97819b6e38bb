//! Races provoked on purpose in the bounded buffer: a producer held
//! halfway through copying its message into a slot, then a consumer held
//! halfway through copying one out (gates in the given `Slot::store` and
//! `Slot::load`). With the copy inside the mutex, everybody else waits;
//! with the copy outside it, another process uses the ring meanwhile, and
//! the message the held process copies is torn or overwritten.

use crate::pid::Pid;
use std::time::{Duration, Instant};

use rand::Rng;

use super::buffer::{Messages, check_taken};
use super::{alive, blocked_in, in_sem_wait, list};
use crate::peers::gate::Gate;
use crate::process::Proc;
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};

pub fn held_mid_copy(run: &mut Run) -> Outcome {
    held_in(run, Copy::Put)?;
    held_in(run, Copy::Take)
}

#[derive(Clone, Copy, PartialEq)]
enum Copy {
    Put,
    Take,
}

impl Copy {
    fn gate(self) -> &'static str {
        match self {
            Copy::Put => "put",
            Copy::Take => "take",
        }
    }

    fn who(self) -> &'static str {
        match self {
            Copy::Put => "producer",
            Copy::Take => "consumer",
        }
    }

    fn into_or_out(self) -> &'static str {
        match self {
            Copy::Put => "into",
            Copy::Take => "out of",
        }
    }
}

fn ended(pid: Pid) -> bool {
    !alive(pid)
}

fn held_in(run: &mut Run, copy: Copy) -> Outcome {
    let capacity: usize = run.rng.random_range(2..=4);
    let per_producer: usize = run.rng.random_range(capacity + 2..=capacity + 6);
    let (producers, consumers) = (2, 2);
    for c in 0..consumers {
        let _ = std::fs::remove_file(run.sandbox.tmp.join(format!("taken-{c}.txt")));
    }
    let sent = Messages::new(run, producers, per_producer);
    sent.write(run)?;
    let mut gate = Gate::open(run, copy.gate())?;
    let mut p = run.spawn(
        "buffer",
        &[
            capacity.to_string(),
            producers.to_string(),
            consumers.to_string(),
        ],
    )?;
    let program = p.pid;
    match copy {
        // Consumers wait for items from the start: a message announced
        // before it is whole is taken at once.
        Copy::Put => p.close_stdin(),
        // The buffer full first, producers waiting for a free slot: a
        // slot given back before it is copied out is filled at once.
        Copy::Take => {
            wait_until_full(run, program, producers, consumers)?;
            p.close_stdin();
        }
    }
    let held = gate.wait_for_one(run, Duration::from_secs(8), || ended(program));
    let mut meanwhile = Vec::new();
    if let Some(a) = held {
        meanwhile = hold_until_calm(run, &mut gate, program, a);
        gate.release_all(run);
    } else {
        gate.release_all(run);
    }
    let why = held.map(|a| {
        let who = copy.who();
        let held = format!(
            "the checker held {who} {a} halfway through copying a message {} a slot",
            copy.into_or_out()
        );
        let causes = "a slot is used outside the mutex: announced (full) before it is whole, or \
                      given back before it is copied out (empty)";
        if meanwhile.is_empty() {
            format!(
                "messages were damaged. {}, and nobody used the ring meanwhile, as it \
                 should be; the damage came at another moment. Possible causes: {causes}",
                capitalised(&held)
            )
        } else {
            format!(
                "{held}, and meanwhile {} {} copied messages {} slots too: the copy is done \
                 outside the mutex, so two processes use the ring at once ({causes})",
                if meanwhile.len() == 1 {
                    copy.who()
                } else {
                    "processes"
                },
                list(&meanwhile),
                copy.into_or_out()
            )
        }
    });
    let add_why = |f: Failure| match &why {
        Some(w) => f.because(w.clone()).hint(
            "hold the mutex from before you read the index until the message is copied; \
             post `full` (in put) or `empty` (in take) only after letting go of it",
        ),
        None => f,
    };
    finish(run, &mut p).map_err(add_why)?;
    let generic = "each message must be taken exactly once: the semaphores count items and \
                   free slots, and the mutex keeps one process at a time in the ring";
    check_taken(run, consumers, &sent, generic).map_err(|f| match &why {
        Some(w) => f.because(w.clone()).hint(
            "hold the mutex from before you read the index until the message is copied; \
             post `full` (in put) or `empty` (in take) only after letting go of it",
        ),
        None => f,
    })
}

/// Waits for `p` to end with status 0.
fn finish(run: &Run, p: &mut Proc) -> Outcome {
    run.rest(p, "the program to finish")?;
    run.expect_success(p)
}

/// Keeps `a` at the gate, lets every other process through, until every
/// other process of the program sleeps (for 300 ms) or 5 s pass. Returns
/// the processes that went through the gate meanwhile.
fn hold_until_calm(run: &Run, gate: &mut Gate, program: Pid, a: Pid) -> Vec<Pid> {
    let mut passed = Vec::new();
    let mut calm_since: Option<Instant> = None;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && Instant::now() < run.deadline {
        for pid in gate.pass_all_but(run, a) {
            if !passed.contains(&pid) {
                passed.push(pid);
            }
        }
        let others: Vec<Pid> = procfs::children(program)
            .into_iter()
            .filter(|&c| c != a && alive(c))
            .collect();
        let asleep = |pid: Pid| {
            procfs::stat(pid).is_some_and(|s| s.state == 'S')
                && procfs::blocked(pid).syscall.is_some()
        };
        if asleep(program) && others.iter().all(|&c| asleep(c)) {
            let since = *calm_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(300) {
                break;
            }
        } else {
            calm_since = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    passed
}

/// Waits until the buffer is full: the producers asleep in sem_wait, the
/// consumers at their gate (reading stdin), the parent in wait4.
fn wait_until_full(run: &Run, program: Pid, producers: usize, consumers: usize) -> Outcome {
    let mut calm_since: Option<Instant> = None;
    loop {
        if ended(program) {
            return Err(Failure::wrong(
                "the program to wait for its consumers",
                "it ended first",
            ));
        }
        let children = procfs::children(program);
        let at_gate = children.iter().filter(|&&c| blocked_in(c, "read")).count();
        let asleep = children.iter().filter(|&&c| in_sem_wait(c)).count();
        if children.len() == producers + consumers
            && at_gate == consumers
            && asleep == producers
            && blocked_in(program, "wait4")
        {
            let since = *calm_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(100) {
                return Ok(());
            }
        } else {
            calm_since = None;
        }
        if Instant::now() >= run.deadline {
            return Err(run.timed_out(
                "the producers blocked in sem_wait on a full buffer, the consumers at their gate",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
