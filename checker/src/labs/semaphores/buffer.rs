//! The bounded buffer: every item chosen by the checker, and counted when
//! it comes out.

use std::time::{Duration, Instant};

use crate::pid::Pid;
use nix::sys::signal::{Signal, kill};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::printers::still_running;
use super::{STUCK_FOR, alive, blocked_in, in_sem_wait, list, live_children};
use crate::process::Exit;
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};

/// The messages the producers put: message `i` of producer `p` is
/// `p{p}-{i}-` and then hex digits, up to a random length of at most the
/// buffer's 64 bytes. The digits come from a keyed hash of (p, i), so the
/// checker tells a real message from a torn or made-up one without
/// keeping them all.
pub struct Messages {
    key: u64,
    producers: usize,
    per_producer: usize,
}

/// SplitMix64: a cheap, good mixing of 64 bits.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Messages {
    pub fn new(run: &mut Run, producers: usize, per_producer: usize) -> Messages {
        Messages {
            key: run.rng.random(),
            producers,
            per_producer,
        }
    }

    fn total(&self) -> usize {
        self.producers * self.per_producer
    }

    fn message(&self, p: usize, i: usize) -> String {
        use std::fmt::Write;
        let mut h = mix(self.key ^ ((p as u64) << 40) ^ i as u64);
        let mut m = format!("p{p}-{i}-");
        let len = m.len() + 1 + (h % (64 - m.len() as u64)) as usize;
        while m.len() < len {
            h = mix(h);
            let _ = write!(m, "{h:016x}");
        }
        m.truncate(len);
        m
    }

    /// Writes `items-P.txt` for every producer.
    pub fn write(&self, run: &Run) -> Outcome {
        for p in 0..self.producers {
            let mut text = String::with_capacity(self.per_producer * 40);
            for i in 0..self.per_producer {
                text.push_str(&self.message(p, i));
                text.push('\n');
            }
            let path = run.sandbox.tmp.join(format!("items-{p}.txt"));
            std::fs::write(&path, text)
                .map_err(|e| Failure::internal(format!("writing {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Which message `line` is, if it is one.
    fn index(&self, line: &str) -> Option<usize> {
        let mut parts = line.strip_prefix('p')?.splitn(3, '-');
        let p: usize = parts.next()?.parse().ok()?;
        let i: usize = parts.next()?.parse().ok()?;
        (p < self.producers && i < self.per_producer && self.message(p, i) == line)
            .then_some(p * self.per_producer + i)
    }

    fn name(&self, index: usize) -> String {
        self.message(index / self.per_producer, index % self.per_producer)
    }
}

/// Compares what the consumers took with what was sent.
pub fn check_taken(run: &Run, consumers: usize, sent: &Messages, why_wrong: &str) -> Outcome {
    let mut counts = vec![0u32; sent.total()];
    let mut made_up = Vec::new();
    let mut taken_total = 0usize;
    for c in 0..consumers {
        let path = run.sandbox.tmp.join(format!("taken-{c}.txt"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::wrong(
                format!("consumer {c} to write taken-{c}.txt"),
                format!("reading it failed: {e}"),
            )
        })?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            taken_total += 1;
            match sent.index(line) {
                Some(k) => counts[k] += 1,
                None => made_up.push(line.to_string()),
            }
        }
    }
    let lost: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] == 0).collect();
    let twice: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] > 1).collect();
    if lost.is_empty() && twice.is_empty() && made_up.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!(
            "{} never taken (e.g. `{}`)",
            lost.len(),
            sent.name(lost[0])
        ));
    }
    if !twice.is_empty() {
        parts.push(format!(
            "{} taken more than once (e.g. `{}`)",
            twice.len(),
            sent.name(twice[0])
        ));
    }
    if !made_up.is_empty() {
        parts.push(format!(
            "{} taken that no producer put, torn or stale (e.g. `{}`)",
            made_up.len(),
            made_up[0]
        ));
    }
    Err(Failure::wrong(
        format!("each of the {} messages taken exactly once", sent.total()),
        format!("{taken_total} messages taken: {}", parts.join(", ")),
    )
    .because(why_wrong.to_string()))
}

pub fn full_buffer_blocks(run: &mut Run) -> Outcome {
    let capacity: usize = run.rng.random_range(2..=5);
    let per_producer: usize = run.rng.random_range(capacity + 3..=capacity + 10);
    let (producers, consumers) = (2, 2);
    let sent = Messages::new(run, producers, per_producer);
    sent.write(run)?;
    let mut p = run.spawn(
        "buffer",
        &[
            capacity.to_string(),
            producers.to_string(),
            consumers.to_string(),
        ],
    )?;
    let program = p.pid;
    // The consumers wait at the gate (reading stdin). Once the buffer is
    // full, the producers must sleep in sem_wait.
    let mut calm_since: Option<Instant> = None;
    loop {
        still_running(&mut p, "the program to wait for its consumers")?;
        let children = procfs::children(program);
        let exited: Vec<Pid> = children.iter().copied().filter(|&c| !alive(c)).collect();
        if !exited.is_empty() {
            return Err(Failure::wrong(
                format!(
                    "the producers to wait once {capacity} items fill the buffer, while no consumer takes any"
                ),
                format!(
                    "process(es) {} finished while the consumers were held: {} items went into a buffer of {capacity} slots",
                    list(&exited),
                    sent.total()
                ),
            )
            .because(
                "put did not wait while the buffer was full, so it overwrote items nobody had \
                 taken: it must first wait on the semaphore that counts free slots",
            ));
        }
        let at_gate = children.iter().filter(|&&c| blocked_in(c, "read")).count();
        let asleep = children.iter().filter(|&&c| in_sem_wait(c)).count();
        if children.len() == producers + consumers
            && at_gate == consumers
            && asleep == producers
            && blocked_in(program, "wait4")
        {
            let since = *calm_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(100) {
                break;
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
    p.close_stdin();
    run.rest(&mut p, "the program to finish")?;
    run.expect_success(&mut p)?;
    check_taken(
        run,
        consumers,
        &sent,
        "the semaphores must count free slots (empty, from the capacity) and items (full, from \
         0): put waits on empty and posts full, take waits on full and posts empty",
    )
}

/// Rounds of the stress test: a race that shows in one run out of ten on
/// a very busy machine still shows in one of the three.
pub const STRESS_ROUNDS: usize = 3;

pub fn buffer_under_stress(run: &mut Run) -> Outcome {
    for _ in 0..STRESS_ROUNDS {
        stress_round(run)?;
    }
    Ok(())
}

pub fn stress_round(run: &mut Run) -> Outcome {
    let capacity: usize = run.rng.random_range(16..=64);
    let per_producer: usize = run.rng.random_range(30_000..=35_000);
    let (producers, consumers) = (4, 4);
    for c in 0..consumers {
        let _ = std::fs::remove_file(run.sandbox.tmp.join(format!("taken-{c}.txt")));
    }
    let sent = Messages::new(run, producers, per_producer);
    sent.write(run)?;
    let mut p = run.spawn(
        "buffer",
        &[
            capacity.to_string(),
            producers.to_string(),
            consumers.to_string(),
        ],
    )?;
    let program = p.pid;
    p.close_stdin();
    let why = "two processes used the ring at the same time: both read the same tail (or head), \
               so one item overwrote another and a slot was taken twice. Hold the mutex (a \
               semaphore starting at 1) while reading and moving the index";
    let mut stuck_since: Option<Instant> = None;
    loop {
        if let Ok(exit) = p.wait(Instant::now()) {
            if exit != Exit::Code(0) {
                return Err(Failure::wrong(
                    "the program to exit with status 0",
                    format!("it ended with {exit}"),
                ));
            }
            break;
        }
        // Stuck: the parent waits for its children and every child sleeps
        // in sem_wait. With correct semaphores someone can always go on.
        let children = live_children(program);
        let stuck = blocked_in(program, "wait4")
            && !children.is_empty()
            && children.iter().all(|&c| in_sem_wait(c));
        if stuck {
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STUCK_FOR {
                return Err(Failure::wrong(
                    "every consumer to take its end marker and finish",
                    format!(
                        "processes {} wait in sem_wait forever, while the program waits for them",
                        list(&children)
                    ),
                )
                .because(format!(
                    "items were lost (at least one consumer's end marker): {why}"
                )));
            }
        } else {
            stuck_since = None;
        }
        if Instant::now() >= run.deadline {
            return Err(run.timed_out("the program to finish"));
        }
        // Stop a running producer or consumer for a moment, wherever it
        // is, as a busy machine's scheduler does at any instruction. A
        // buffer with its mutex does not mind; one without is caught in
        // the middle of a put or a take, load or no load.
        let running: Vec<Pid> = children
            .iter()
            .copied()
            .filter(|&c| procfs::stat(c).is_some_and(|s| s.state == 'R'))
            .collect();
        if let Some(&victim) = running.choose(&mut run.rng) {
            let victim = nix::unistd::Pid::from(victim);
            let _ = kill(victim, Signal::SIGSTOP);
            std::thread::sleep(Duration::from_micros(300));
            let _ = kill(victim, Signal::SIGCONT);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    run.rest(&mut p, "the program's last line")?;
    check_taken(run, consumers, &sent, why)
}
