//! The programs that fork: workers writing slots of memory they share
//! with their parent, and the lost update.

use crate::pid::Pid;
use rand::Rng;

use super::segment::{address_in, average, expect_shared, peek_words, texts};
use crate::scenario::{Failure, Outcome, Run, field_num, quote_lines};

pub fn each_worker_owns_a_slot(run: &mut Run) -> Outcome {
    let n: usize = run.rng.random_range(3..=5);
    // Random grades from 1 to 7, as in the tutorials this course grew from, with averages that differ,
    // so that a value in the wrong slot tells whose it is.
    let (courses, wanted) = loop {
        let courses: Vec<Vec<u32>> = (0..n)
            .map(|_| {
                let len = run.rng.random_range(20..=40);
                (0..len).map(|_| run.rng.random_range(1..=7)).collect()
            })
            .collect();
        let wanted: Vec<f64> = courses.iter().map(|c| average(c)).collect();
        let mut bits: Vec<u64> = wanted.iter().map(|a| a.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        if bits.len() == n {
            break (courses, wanted);
        }
    };
    let args: Vec<String> = courses
        .iter()
        .map(|c| c.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
        .collect();
    let mut p = run.spawn("averages", &args)?;
    let program = p.pid;

    let first = run
        .line(&mut p, "a first line `parent pid=P slots at 0xADDRESS`")?
        .text;
    let Some(addr) = address_in(&first).filter(|_| first.starts_with("parent ")) else {
        return Err(Failure::wrong(
            "a first line `parent pid=P slots at 0xADDRESS`",
            format!("`{first}`"),
        ));
    };

    let mut workers: Vec<(usize, Pid)> = Vec::new();
    let mut printed: Vec<Option<String>> = vec![None; n];
    for _ in 0..2 * n {
        let line = run
            .line(
                &mut p,
                &format!(
                    "{n} lines `worker I pid=W wrote slot I`, then {n} lines `course I average A`"
                ),
            )?
            .text;
        let words: Vec<&str> = line.split_whitespace().collect();
        let index = words.get(1).and_then(|w| w.parse::<usize>().ok());
        match (words.first(), index) {
            (Some(&"worker"), Some(i)) if i < n => {
                let pid = Pid::field(&line, "pid").unwrap_or(Pid::from_raw(-1));
                workers.push((i, pid));
            }
            (Some(&"course"), Some(i)) if i < n => printed[i] = words.get(3).map(|w| w.to_string()),
            _ => {
                return Err(Failure::wrong(
                    format!(
                        "lines `worker I pid=W wrote slot I` and `course I average A`, I from 0 to {}",
                        n - 1
                    ),
                    format!("`{line}`"),
                ));
            }
        }
    }

    let mut pids: Vec<Pid> = workers.iter().map(|w| w.1).collect();
    pids.sort_unstable();
    pids.dedup();
    if workers.len() != n || pids.len() != n || pids.contains(&program) || pids[0].as_raw() <= 0 {
        return Err(Failure::wrong(
            format!("{n} workers, each a process of its own (not the parent, pid {program})"),
            format!("workers {workers:?} (index, pid)"),
        ));
    }

    // The parent is now held after printing the averages: look at its memory.
    expect_shared(program, addr, 8 * n as u64, "the slots")?;
    if let Some(slots) = peek_words(program, addr, n) {
        for (i, &got) in slots.iter().enumerate() {
            if got == wanted[i].to_bits() {
                continue;
            }
            let got_f = f64::from_bits(got);
            let whose = wanted.iter().position(|w| w.to_bits() == got);
            let failure = Failure::wrong(
                format!(
                    "slot {i}, in the parent's memory, to hold course {i}'s average {:.3}",
                    wanted[i]
                ),
                format!(
                    "it holds {}",
                    if got == 0 {
                        "0 (nothing was written there)".to_string()
                    } else {
                        format!("{got_f:.3}")
                    }
                ),
            );
            return Err(match whose {
                Some(k) => failure.because(format!(
                    "that is course {k}'s average: the worker for course {k} wrote slot {i}. Each worker must write only its own slot: slot i for course i"
                )),
                None if got == 0 => failure.because(format!(
                    "no write to slot {i} reached the parent: worker {i} must store its average in its own slot, words()[{i}], of the shared mapping"
                )),
                None => failure.because("each worker must store `average(grades).to_bits()` in its own slot"),
            });
        }
    }
    for (i, want) in wanted.iter().enumerate() {
        let want_text = format!("{want:.3}");
        if printed[i].as_deref() != Some(want_text.as_str()) {
            return Err(Failure::wrong(
                format!("`course {i} average {want_text}`"),
                format!("average {}", printed[i].as_deref().unwrap_or("missing")),
            )
            .because("course_averages must return what the parent reads in the slots, in the order of the courses"));
        }
    }
    p.close_stdin();
    run.expect_success(&mut p)
}

pub fn lost_update_shown(run: &mut Run) -> Outcome {
    let n: u64 = 4;
    let m: u64 = run.rng.random_range(200_000..400_000);
    let mut p = run.spawn("lost-update", &[n.to_string(), m.to_string()])?;
    let program = p.pid;
    let first = run
        .line(&mut p, "a first line `parent pid=P counters at 0xADDRESS`")?
        .text;
    let Some(addr) = address_in(&first).filter(|_| first.starts_with("parent ")) else {
        return Err(Failure::wrong(
            "a first line `parent pid=P counters at 0xADDRESS`",
            format!("`{first}`"),
        ));
    };
    let totals = run
        .line(&mut p, "a line `racy=R atomic=A expected=E`")?
        .text;
    let (Some(racy), Some(atomic), Some(expected)) = (
        field_num(&totals, "racy"),
        field_num(&totals, "atomic"),
        field_num(&totals, "expected"),
    ) else {
        return Err(Failure::wrong(
            "a line `racy=R atomic=A expected=E`",
            format!("`{totals}`"),
        ));
    };
    let (racy, atomic, expected) = (racy as u64, atomic as u64, expected as u64);
    if expected != n * m {
        return Err(Failure::wrong(
            format!("expected={}", n * m),
            format!("`{totals}`"),
        ));
    }
    expect_shared(program, addr, 16, "the counters")?;
    if atomic != n * m {
        return Err(Failure::wrong(
            format!("the atomic total to be exactly {n} x {m} = {}", n * m),
            format!("`{totals}`"),
        )
        .because("fetch_add loses nothing, so some workers' additions never reached the parent's memory: the mapping must be MAP_SHARED and made before fork"));
    }
    if racy == 0 || racy > n * m {
        return Err(Failure::wrong(
            format!("a racy total between 1 and {}", n * m),
            format!("`{totals}`"),
        ));
    }
    let in_memory = peek_words(program, addr, 2).unwrap_or_else(|| vec![racy, atomic]);
    if in_memory != [racy, atomic] {
        let words = in_memory;
        return Err(Failure::wrong(
            format!(
                "the parent's memory at {addr:#x} to hold the totals it printed, {racy} and {atomic}"
            ),
            format!("it holds {} and {}", words[0], words[1]),
        ));
    }
    let rest = {
        p.close_stdin();
        texts(run.rest(&mut p, "the program to finish")?)
    };
    let lost = n * m - racy;
    let wanted = format!("lost {lost} updates");
    if !rest.contains(&wanted) {
        return Err(Failure::wrong(
            format!("`{wanted}`"),
            format!("it printed {}", quote_lines(&rest)),
        ));
    }
    run.expect_success(&mut p)
}
