//! Many workers at once: fan-out and join, reaping as they end, and the
//! stdout buffer that fork copies.

use crate::pid::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use super::leftovers;
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Outcome, Run, quote_lines};

const WORK_MS: u64 = 300;

pub fn parallel_fan_out(run: &mut Run) -> Outcome {
    let n: usize = run.rng.random_range(4..=6);
    let mut p = run.spawn("fanout", &[n.to_string(), WORK_MS.to_string()])?;
    let program = p.pid;
    let mut workers = Vec::new();
    for _ in 0..n {
        let line = run
            .line(&mut p, &format!("{n} lines `worker I pid=W started`"))?
            .text;
        let Some(pid) = Pid::field(&line, "pid") else {
            return Err(Failure::wrong(
                "a line `worker I pid=W started`",
                format!("`{line}`"),
            ));
        };
        workers.push(pid);
    }
    let exit = run.wait(&mut p)?;
    let took = p.exited_at().unwrap_or_else(std::time::Instant::now) - p.started;

    // Workers still running after the parent exited were never waited for.
    let orphans: Vec<Pid> = leftovers()
        .iter()
        .filter(|s| !s.is_zombie())
        .map(|s| s.pid)
        .collect();
    let adopted: Vec<Pid> = run
        .monitor
        .ever_seen()
        .iter()
        .filter(|s| workers.contains(&s.pid) && s.ppid == checker_pid())
        .map(|s| s.pid)
        .collect();
    if !orphans.is_empty() || !adopted.is_empty() {
        let mut who = orphans.clone();
        who.extend(adopted.iter().filter(|p| !orphans.contains(p)));
        return Err(Failure::wrong(
            "the parent to exit only after every worker has ended",
            format!("the parent exited while workers {who:?} were still running"),
        )
        .because(
            "the parent never waited for its workers: join every pid you started before returning",
        ));
    }

    let rest: Vec<String> = run
        .rest(&mut p, "the parent's last line")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let at_once = run.monitor.max_alive_at_once(|s| workers.contains(&s.pid));
    let serial = Duration::from_millis(WORK_MS * n as u64);
    if took > serial.mul_f64(0.6) {
        return Err(Failure::wrong(
            format!("{n} workers of {WORK_MS} ms to finish in well under {} ms", serial.as_millis()),
            format!("the program took {} ms; at most {at_once} worker(s) were alive at once", took.as_millis()),
        )
        .because(if at_once <= 1 {
            "the workers ran one at a time: the parent waited for each worker before it started the next (start and join in the same loop)"
        } else {
            "the workers did not all run at the same time"
        }));
    }
    let seen: BTreeSet<Pid> = run
        .monitor
        .ever_seen()
        .iter()
        .filter(|s| s.ppid == program)
        .map(|s| s.pid)
        .collect();
    if let Some(fake) = workers.iter().find(|w| !seen.contains(w)) {
        return Err(Failure::wrong(
            "every worker pid to be a child process of the program",
            format!("the checker never saw a child with pid {fake}"),
        ));
    }
    if at_once < n {
        return Err(Failure::wrong(
            format!("all {n} workers alive at the same time"),
            format!("at most {at_once} were alive at once"),
        ));
    }
    if !rest
        .iter()
        .any(|l| l.contains(&format!("{n} workers joined")))
    {
        return Err(Failure::wrong(
            format!("the parent to print `... {n} workers joined in ... ms`"),
            format!("it printed {}", quote_lines(&rest)),
        ));
    }
    match exit {
        crate::process::Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong("exit status 0", format!("{other}"))),
    }
}

pub fn no_zombies(run: &mut Run) -> Outcome {
    // Gaps of 250 ms: on a loaded machine a worker may start late, so the
    // order they end in is only likely, not certain (see below).
    let mut naps: Vec<u64> = vec![50, 300, 550, 800];
    // Any order but the sorted one, so that "in the order started" and "in
    // the order ended" differ.
    while naps.windows(2).all(|w| w[0] < w[1]) {
        naps.shuffle(&mut run.rng);
    }
    let args: Vec<String> = naps.iter().map(u64::to_string).collect();
    let mut p = run.spawn("reaper", &args)?;
    let program = p.pid;

    // pid -> (index, nap). The workers' lines and the parent's `reaped`
    // lines may come in any order: a short worker can end before the
    // last one has started.
    let mut workers: BTreeMap<Pid, (usize, u64)> = BTreeMap::new();
    let mut reaped = Vec::new();
    loop {
        let line = run
            .line(
                &mut p,
                "a line `worker I pid=W sleeps MS ms` per worker, `reaped pid=W ...` lines, then `all reaped by pid=P`",
            )?
            .text;
        if line.starts_with("all reaped") {
            break;
        }
        if line.starts_with("reaped ") {
            reaped.push(line);
            continue;
        }
        let index = line
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<usize>().ok());
        let (Some(index), Some(pid)) = (index, Pid::field(&line, "pid")) else {
            return Err(Failure::wrong(
                "a line `worker I pid=W sleeps MS ms`",
                format!("`{line}`"),
            ));
        };
        let Some(&nap) = naps.get(index) else {
            return Err(Failure::wrong(
                "worker numbers from the argument list",
                format!("`{line}`"),
            ));
        };
        workers.insert(pid, (index, nap));
    }
    if workers.len() != naps.len() {
        return Err(Failure::wrong(
            format!(
                "{} workers, each with its line `worker I pid=W sleeps MS ms`",
                naps.len()
            ),
            format!("{} before `all reaped`", workers.len()),
        ));
    }

    // The parent is now held at the gate. Wait until every worker has ended,
    // then none may be a zombie.
    let longest = Duration::from_millis(naps.iter().max().copied().unwrap_or(0) + 2000);
    let ended = run.poll(longest, || {
        workers
            .keys()
            .all(|&w| procfs::stat(w).is_none_or(|s| s.is_zombie()))
            .then_some(())
    });
    if ended.is_none() {
        return Err(run.timed_out("every worker to end"));
    }
    let zombies: Vec<Pid> = workers
        .keys()
        .copied()
        .filter(|&w| procfs::stat(w).is_some_and(|s| s.is_zombie() && s.ppid == program))
        .collect();
    if !zombies.is_empty() {
        return Err(Failure::wrong(
            "no zombie child while the parent still runs",
            format!("workers {zombies:?} are zombies: they exited and the parent, still running, never waited for them"),
        )
        .because("join_any returned before any child had ended (WNOHANG?), so the parent stopped waiting too soon; a zombie stays until its parent waits for it"));
    }

    let mut order = Vec::new();
    for line in &reaped {
        let pid = Pid::field(line, "pid").unwrap_or(Pid::from_raw(-1));
        let Some(&(index, _)) = workers.get(&pid) else {
            return Err(Failure::wrong(
                "`reaped pid=W exited with I` for the workers",
                format!("`{line}`"),
            ));
        };
        let wanted = format!("reaped pid={pid} exited with {index}");
        if line.trim() != wanted {
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
        }
        order.push(pid);
    }
    // A machine under load may start a worker late and change the order
    // they end in; what no load explains is the order they were started
    // in (or its reverse) while the naps say otherwise.
    let mut by_end: Vec<Pid> = workers.keys().copied().collect();
    by_end.sort_by_key(|w| workers[w].1);
    let mut by_start: Vec<Pid> = workers.keys().copied().collect();
    by_start.sort_by_key(|w| workers[w].0);
    let reversed: Vec<Pid> = by_start.iter().rev().copied().collect();
    if order != by_end && (order == by_start || order == reversed) {
        return Err(Failure::wrong(
            format!("the workers reaped in the order they end: {by_end:?}"),
            format!("reaped {order:?}, the order they were started in{}", if order == reversed { ", reversed" } else { "" }),
        )
        .because("join_any waits for one particular child (the next in a list) instead of any child: waitpid(-1) returns whichever ends first"));
    }
    p.close_stdin();
    run.expect_success(&mut p)
}

pub fn flush_before_fork(run: &mut Run) -> Outcome {
    let text = format!("note-{:08x}", run.rng.random::<u32>());
    let n: usize = run.rng.random_range(3..=5);
    let mut p = run.spawn("prompt", &[text.clone(), n.to_string()])?;
    let program = p.pid;
    let lines: Vec<String> = run
        .rest(&mut p, "the program to finish")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    run.expect_success(&mut p)?;
    let all = lines.join("\n");
    let count = all.matches(&text).count();
    if count != 1 {
        return Err(Failure::wrong(
            format!("`{text}` printed once"),
            format!("it appeared {count} times"),
        )
        .because(if count > 1 {
            "the text was still in stdout's buffer when fork copied the process, so every child printed its copy: flush stdout before fork"
        } else {
            "the program never printed it"
        }));
    }
    let pids: BTreeSet<Pid> = lines
        .iter()
        .filter(|l| l.contains("worker"))
        .filter_map(|l| Pid::field(l, "pid"))
        .collect();
    if pids.len() != n || pids.contains(&program) {
        return Err(Failure::wrong(
            format!("{n} workers, each with a pid of its own"),
            format!("worker pids {pids:?} (the program is {program})"),
        ));
    }
    Ok(())
}
