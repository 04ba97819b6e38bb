//! The ring buffer in shared memory.

use super::*;

// ---------------------------------------------------------------------
// The ring buffer.

pub(super) fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Writes `in-i` for each producer; returns every message sent.
pub(super) fn write_inputs(
    run: &mut Run,
    producers: usize,
    per: (usize, usize),
) -> Result<Vec<String>, Failure> {
    let mut all = Vec::new();
    for i in 0..producers {
        let n = run.rng.random_range(per.0..=per.1);
        let mut text = String::with_capacity(n * 64);
        for k in 0..n {
            let body = format!("p{i}-{k}-{}", word(&mut run.rng, 8, 48));
            let line = format!("{body}-{:08x}", fnv(&body));
            text.push_str(&line);
            text.push('\n');
            all.push(line);
        }
        std::fs::write(run.sandbox.tmp.join(format!("in-{i}")), text)
            .map_err(|e| Failure::internal(format!("writing in-{i}: {e}")))?;
    }
    Ok(all)
}

/// Reads `producer I pid=P` lines and the gate line; returns the pids.
pub(super) fn producers_started(
    run: &Run,
    ring: &mut Proc,
    producers: usize,
) -> Result<Vec<Pid>, Failure> {
    let mut pids = Vec::new();
    for i in 0..producers {
        let line = line_within(
            run,
            ring,
            PATIENCE * 2,
            &format!("a line `producer {i} pid=P`"),
        )?;
        let Some(pid) = Pid::field(&line, "pid") else {
            return Err(Failure::wrong(
                format!("`producer {i} pid=P`"),
                format!("`{line}`"),
            ));
        };
        match procfs::stat(pid) {
            Some(s) if s.ppid == ring.pid => pids.push(pid),
            _ => {
                return Err(Failure::wrong(
                    format!(
                        "producer {i} (pid {pid}) to be a child of `ring` ({})",
                        ring.pid
                    ),
                    "it is not".to_string(),
                ));
            }
        }
    }
    let gate = line_within(run, ring, PATIENCE, "the line `gate: ...`")?;
    if !gate.starts_with("gate") {
        return Err(Failure::wrong("`gate: ...`", format!("`{gate}`")));
    }
    Ok(pids)
}

/// The CPUs the checker may run on.
pub(super) fn cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// Puts the producers on different CPUs, so that they really run at the
/// same time: what a race needs to show.
pub(super) fn spread(pids: &[Pid]) {
    let cpus = cpus();
    if cpus.len() < 2 {
        return;
    }
    for (i, &pid) in pids.iter().enumerate() {
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpus[i % cpus.len()]).is_ok() {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from(pid), &set);
        }
    }
}

pub(super) fn output_bytes(run: &Run, consumers: usize) -> u64 {
    (0..consumers)
        .filter_map(|j| std::fs::metadata(run.sandbox.tmp.join(format!("out-{j}"))).ok())
        .map(|m| m.len())
        .sum()
}

/// Waits for `ring` to exit while its consumers make progress; gives up
/// when nothing new was written for a while. `None` if it stalled.
pub(super) fn wait_with_progress(run: &Run, ring: &mut Proc, consumers: usize) -> Option<Exit> {
    const STALL: Duration = Duration::from_secs(8);
    let mut last = output_bytes(run, consumers);
    let mut since = Instant::now();
    loop {
        let step = (Instant::now() + Duration::from_millis(200)).min(run.deadline);
        if let Ok(exit) = ring.wait(step) {
            return Some(exit);
        }
        let now = output_bytes(run, consumers);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= STALL || Instant::now() >= run.deadline {
            return None;
        }
    }
}

/// Checks the consumers' files against what was sent: each message once,
/// intact.
pub(super) fn verify_set(run: &Run, sent: &[String], consumers: usize) -> Outcome {
    let mut count: HashMap<&str, u32> = sent.iter().map(|m| (m.as_str(), 0)).collect();
    let mut corrupted = Vec::new();
    let mut texts = Vec::new();
    for j in 0..consumers {
        texts.push(
            std::fs::read_to_string(run.sandbox.tmp.join(format!("out-{j}"))).unwrap_or_default(),
        );
    }
    for line in texts.iter().flat_map(|t| t.lines()) {
        match count.get_mut(line) {
            Some(c) => *c += 1,
            None => corrupted.push(line.to_string()),
        }
    }
    let lost: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|m| count[m] == 0)
        .collect();
    let twice: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|m| count[m] > 1)
        .collect();
    if lost.is_empty() && twice.is_empty() && corrupted.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!("{} never arrived (e.g. `{}`)", lost.len(), lost[0]));
    }
    if !twice.is_empty() {
        parts.push(format!(
            "{} arrived more than once (e.g. `{}`)",
            twice.len(),
            twice[0]
        ));
    }
    if !corrupted.is_empty() {
        let torn = corrupted.iter().filter(|l| {
            l.rsplit_once('-')
                .is_some_and(|(body, sum)| format!("{:08x}", fnv(body)) != *sum)
        });
        parts.push(format!(
            "{} lines are no message sent ({} with a wrong checksum; e.g. `{}`)",
            corrupted.len(),
            torn.count(),
            corrupted[0]
        ));
    }
    let why = if !lost.is_empty() && (!twice.is_empty() || !corrupted.is_empty()) {
        "two producers wrote into the same slot (one message overwritten, lost) and the consumers then read \
         a slot nobody filled again: reading `head`, filling its slot and moving `head` must be one step \
         that one producer at a time takes. Hold a lock around it (a semaphore of 1), and likewise for `tail`"
    } else if !lost.is_empty() {
        "messages vanished: a full ring must make producers wait for a free slot (a semaphore counting \
         them), never overwrite one nobody has read"
    } else if !twice.is_empty() {
        "a slot was read twice: reading `tail`, copying its slot and moving `tail` must be one step that \
         one consumer at a time takes"
    } else {
        "a slot was read while being written: a consumer may read a slot only after its producer posted `used`"
    };
    Err(Failure::wrong(
        format!(
            "each of the {} messages the producers sent, exactly once and intact",
            sent.len()
        ),
        parts.join("; "),
    )
    .because(why))
}

pub(super) fn ring_every_message_once(run: &mut Run) -> Outcome {
    // Three runs of `ring` rather than one long one: how the scheduler
    // places the processes is decided early in a run, and now and then it
    // keeps the producers from ever running at the same moment.
    for _ in 0..3 {
        ring_round(run)?;
    }
    Ok(())
}

/// One run of `ring` with some 20 000 messages.
pub(super) fn ring_round(run: &mut Run) -> Outcome {
    // Four producers, two on each of two CPUs: enough that some of them
    // really run at the same moment, even on a busy machine.
    let producers = 4;
    let consumers = run.rng.random_range(2..=3);
    let capacity = run.rng.random_range(8..=32);
    let per = 20_000 / producers;
    let sent = write_inputs(run, producers, (per - 200, per + 200))?;
    let args = [producers, consumers, capacity].map(|n| n.to_string());
    let mut ring = run.spawn("ring", &args)?;
    let pids = producers_started(run, &mut ring, producers)?;
    spread(&pids);
    ring.close_stdin();
    let exit = wait_with_progress(run, &mut ring, consumers);
    verify_set(run, &sent, consumers)?;
    match exit {
        Some(Exit::Code(0)) => Ok(()),
        Some(other) => Err(Failure::wrong(
            "`ring` to exit with status 0",
            format!("it ended with {other}"),
        )),
        None => Err(run.timed_out("`ring` to finish: its consumers stopped making progress")),
    }
}

/// The producers' state: blocked in futex, exited, or neither.
pub(super) enum Producers {
    AllBlocked,
    Finished(usize, Pid),
    Busy(Vec<String>),
}

pub(super) fn producers_state(pids: &[Pid]) -> Producers {
    let mut busy = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        match procfs::stat(pid) {
            None => return Producers::Finished(i, pid),
            Some(s) if s.is_zombie() => return Producers::Finished(i, pid),
            Some(s) => {
                let call = procfs::blocked(pid)
                    .syscall
                    .and_then(|(nr, _)| syscall_name(nr));
                if s.state != 'S' || call != Some("futex") {
                    busy.push(format!(
                        "producer {i} (pid {pid}) is in state {} ({})",
                        s.state,
                        call.map(|c| format!("in {c}()"))
                            .unwrap_or_else(|| "running".into())
                    ));
                }
            }
        }
    }
    if busy.is_empty() {
        Producers::AllBlocked
    } else {
        Producers::Busy(busy)
    }
}

pub(super) fn ring_full_blocks_producers(run: &mut Run) -> Outcome {
    let producers = run.rng.random_range(2..=3);
    let consumers = 2;
    let capacity = run.rng.random_range(2..=4);
    let sent = write_inputs(run, producers, (20, 40))?;
    let args = [producers, consumers, capacity].map(|n| n.to_string());
    let mut ring = run.spawn("ring", &args)?;
    let pids = producers_started(run, &mut ring, producers)?;
    // Twice in a row, some time apart: all blocked, none gone.
    let mut last = Producers::Busy(vec!["not looked at yet".into()]);
    let mut settled = 0;
    let until = Instant::now() + PATIENCE * 2;
    while Instant::now() < until.min(run.deadline) {
        last = producers_state(&pids);
        match last {
            Producers::AllBlocked => {
                settled += 1;
                if settled == 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            Producers::Finished(..) => break,
            Producers::Busy(_) => {
                settled = 0;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    match last {
        Producers::AllBlocked => {}
        Producers::Finished(i, pid) => {
            return Err(Failure::wrong(
                format!("producer {i} (pid {pid}) to wait: the ring holds {capacity} messages and no consumer runs yet"),
                format!("it finished all its messages ({} in all were sent) while nobody took any", sent.len()),
            )
            .because(
                "the ring overwrote (or dropped) messages instead of making the producer wait: `push` must take a \
                 permit of the semaphore counting free slots (sem_wait blocks at 0) before writing, and `pop` gives it back",
            ));
        }
        Producers::Busy(states) => {
            return Err(stalled(
                run,
                format!("every producer blocked in a semaphore wait (futex) on the full ring ({capacity} slots)"),
                states.join("; "),
            )
            .because("a producer that loops until a slot frees burns a CPU; wait on a semaphore instead"));
        }
    }
    ring.close_stdin();
    let exit = wait_with_progress(run, &mut ring, consumers);
    verify_set(run, &sent, consumers)?;
    match exit {
        Some(Exit::Code(0)) => Ok(()),
        Some(other) => Err(Failure::wrong(
            "`ring` to exit with status 0",
            format!("it ended with {other}"),
        )),
        None => Err(run.timed_out("`ring` to finish once the consumers run")),
    }
}
