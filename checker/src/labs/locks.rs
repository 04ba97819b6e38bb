//! Lab 06 — locks: critical sections shared by processes.
//!
//! The programs start their workers and hold them at a gate (they read
//! stdin to its end); the checker releases them all at once, so they really
//! race. Enough workers and additions run that a missing or misplaced lock
//! loses updates every time. The checker writes the starting total itself
//! (a random number, in the shared memory segment or in the file) and reads
//! the result there after the program has exited: printed totals are
//! ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::Rng;

use crate::diagnose;
use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario};

pub static LAB: Lab = Lab {
    number: 6,
    slug: "locks",
    title: "Locks: critical sections between processes",
    scenarios: &[
        Scenario {
            name: "counter-mutex",
            points: 3,
            limit: Duration::from_secs(12),
            does: "puts a random total in a shared memory segment, runs `counter mutex N M` and releases its N workers at once; each adds 1 to the total M times (millions of additions)",
            expects: "exactly N x M more in the segment, read there by the checker, and the program to finish",
            hints: &[
                "An addition is three steps: read the total, add one, write it back. If another process writes between your read and your write, its addition is lost. Hold the lock across all three.",
                "`SharedMutex::init` must set the attribute `PTHREAD_PROCESS_SHARED` (`pthread_mutexattr_setpshared`) before `pthread_mutex_init`; without it the mutex only works between threads of one process.",
                "`lock` calls `pthread_mutex_lock` and returns a guard whose `Drop` calls `pthread_mutex_unlock`. In `add_locked`, keep the guard alive until after the `store`.",
            ],
            max_procs: 16,
            run: counter_mutex,
        },
        Scenario {
            name: "counter-flock",
            points: 3,
            limit: Duration::from_secs(12),
            does: "writes a random total in `total.txt`, runs `counter file N M` and releases its N workers at once; each adds 1 to the total in the file M times",
            expects: "exactly N x M more in `total.txt`, read by the checker after the program has exited",
            hints: &[
                "Lock the file (`flock` with LOCK_EX, nix's `Flock::lock`) before reading the total, and unlock it only after writing the new total back.",
                "flock locks belong to the open file description: every worker must `open` the file itself, after fork. A descriptor inherited over fork, or a `try_clone` (dup), shares the parent's lock instead of having its own.",
                "`Flock::lock` takes the `File` and gives it back on `unlock()`; retry when it fails with EINTR.",
            ],
            max_procs: 16,
            run: counter_flock,
        },
        Scenario {
            name: "counter-atomic",
            points: 2,
            limit: Duration::from_secs(12),
            does: "puts a random total in a shared memory segment, runs `counter atomic N M` and releases its N workers at once",
            expects: "exactly N x M more in the segment, with no lock: one atomic addition each time",
            hints: &[
                "`counter.total` is an `AtomicU64`: `fetch_add(1, ...)` reads, adds and writes in one indivisible step.",
                "A `load` followed by a `store` is two steps, even on an atomic: another process can add in between, and its addition is lost.",
            ],
            max_procs: 16,
            run: counter_atomic,
        },
        Scenario {
            name: "lines-stay-whole",
            points: 3,
            limit: Duration::from_secs(10),
            does: "runs `lines N K LEN`: N printers, each printing K lines of LEN copies of its letter, every line in small pieces",
            expects: "N x K lines, each made of one letter only, exactly LEN long",
            hints: &[
                "A line is written in several small write() calls: another process can write between two of them. The whole line is the critical section.",
                "In `print_lines`, take the lock before `write_slowly` and keep the guard until the line is written.",
            ],
            max_procs: 16,
            run: lines_stay_whole,
        },
        Scenario {
            name: "lock-only-around-line",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `lines N K LEN` and looks at the order in which the printers' lines come",
            expects: "whole lines, and the printers taking turns: the lock held for one line at a time, not for all of a printer's lines",
            hints: &[
                "Hold the lock for the critical section only: the line. The work between two lines (`work_outside`) must run without it, in parallel with the others.",
                "Take the lock inside the loop, once per line, and let the guard go at the end of each turn.",
            ],
            max_procs: 16,
            run: lock_only_around_line,
        },
    ],
    fixtures: &[
        Fixture {
            name: "no-lock",
            caught_by: "counter-mutex",
            says: "were lost",
        },
        Fixture {
            name: "unlock-before-write-back",
            caught_by: "counter-mutex",
            says: "were lost",
        },
        Fixture {
            name: "mutex-not-process-shared",
            caught_by: "counter-mutex",
            says: "PTHREAD_PROCESS_SHARED",
        },
        Fixture {
            name: "flock-on-inherited-descriptor",
            caught_by: "counter-flock",
            says: "open file description",
        },
        Fixture {
            name: "file-unlock-before-write-back",
            caught_by: "counter-flock",
            says: "were lost",
        },
        Fixture {
            name: "atomic-load-then-store",
            caught_by: "counter-atomic",
            says: "two steps",
        },
        Fixture {
            name: "lines-no-lock",
            caught_by: "lines-stay-whole",
            says: "mixes",
        },
        Fixture {
            name: "lock-held-for-all-lines",
            caught_by: "lock-only-around-line",
            says: "one printer after the other",
        },
    ],
    variants: &[],
};

/// The segment the memory methods keep their total in.
fn segment(run: &Run) -> PathBuf {
    PathBuf::from(format!(
        "/dev/shm/{}counter",
        run.sandbox.ipc_prefix.trim_start_matches('/')
    ))
}

/// A size for the segment: more than the counter needs (8 bytes of total,
/// then the mutex).
const SEGMENT_BYTES: usize = 4096;

/// The counter scenarios' sizes: enough workers and additions that an
/// unprotected read-modify-write loses updates on every run, even when the
/// machine is busy and the workers get little time together.
fn sizes(run: &mut Run, per_worker: std::ops::RangeInclusive<u64>) -> (usize, u64, u64) {
    let n = run.rng.random_range(3..=4);
    let m = run.rng.random_range(per_worker);
    let start = run.rng.random_range(1_000..1_000_000);
    (n, m, start)
}

/// Waits until the program has started `n` workers (held at the gate),
/// runs `before` on their pids while they wait, then closes the program's
/// stdin so they all start at once. Returns the workers' pids.
fn release_workers<T>(
    run: &mut Run,
    p: &mut Proc,
    n: usize,
    before: impl FnOnce(&[i32]) -> T,
) -> Result<(Vec<i32>, T), Failure> {
    let program = p.pid;
    let live_children = || -> Vec<i32> {
        procfs::children(program)
            .into_iter()
            .filter(|&c| procfs::stat(c).is_some_and(|s| !s.is_zombie()))
            .collect()
    };
    let seen = run.poll(Duration::from_secs(5), || {
        let kids = live_children();
        if kids.len() >= n {
            return Some(Some(kids));
        }
        if procfs::stat(program).is_none_or(|s| s.is_zombie()) {
            return Some(None);
        }
        None
    });
    match seen {
        Some(Some(_)) => {
            // A moment more, in case a runaway fork adds more.
            std::thread::sleep(Duration::from_millis(20));
            let kids = live_children();
            if kids.len() != n {
                return Err(Failure::wrong(
                    format!("{n} worker processes"),
                    format!("the program has {} children", kids.len()),
                ));
            }
            let seen = before(&kids);
            p.close_stdin();
            Ok((kids, seen))
        }
        Some(None) => {
            let exit = run.wait(p)?;
            Err(Failure::wrong(
                format!("{n} worker processes waiting for the start"),
                format!("the program ended ({exit}) before starting them"),
            ))
        }
        None => Err(run.timed_out(&format!("{n} worker processes to start"))),
    }
}

const NOT_SHARED: &str = "A pthread mutex that is not marked PTHREAD_PROCESS_SHARED waits on a futex private to its own \
     process, so an unlock in another process never wakes it: set the attribute with \
     pthread_mutexattr_setpshared before pthread_mutex_init";

/// Waits for the program to exit with status 0. A hang with workers asleep
/// in futex() is the classic mutex that is not process-shared.
fn finish(run: &Run, p: &mut Proc, workers: &[i32]) -> Outcome {
    match p.wait(run.deadline) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(other) => {
            let failure = Failure::wrong(
                format!("{} to exit with status 0", p.name),
                format!("it ended with {other}"),
            );
            // The same bug, caught by glibc instead of hanging: a lock taken
            // in one process looks owned by a stranger in another.
            let stderr = p
                .captures()
                .1
                .text_at_end(std::time::Instant::now() + Duration::from_secs(1));
            Err(if stderr.contains("pthread_mutex_lock") {
                failure.because(format!(
                    "{NOT_SHARED}; glibc noticed and aborted the workers"
                ))
            } else {
                failure
            })
        }
        Err(_) => {
            let in_futex: Vec<i32> = workers
                .iter()
                .copied()
                .filter(|&w| {
                    procfs::stat(w).is_some_and(|s| !s.is_zombie())
                        && procfs::blocked(w)
                            .syscall
                            .is_some_and(|(nr, _)| diagnose::syscall_name(nr) == Some("futex"))
                })
                .collect();
            let failure = run.timed_out(&format!("{} to finish", p.name));
            Err(if in_futex.is_empty() {
                failure
            } else {
                failure.because(format!(
                    "workers {in_futex:?} sleep in futex(), waiting for a lock that another process released long ago. {NOT_SHARED}"
                ))
            })
        }
    }
}

/// The lost-update failure: what was expected, what is there, and why.
fn lost(place: &str, start: u64, n: usize, m: u64, found: u64, why: String) -> Failure {
    let expected = start + n as u64 * m;
    let happened = if found < expected {
        format!(
            "it is {found}: {} of the {} additions were lost",
            expected - found,
            n as u64 * m
        )
    } else {
        format!("it is {found}: {} more than that", found - expected)
    };
    Failure::wrong(
        format!("{place} to hold {start} + {n} x {m} = {expected}"),
        happened,
    )
    .because(why)
}

fn counter_in_memory(run: &mut Run, method: &str, why: &str) -> Outcome {
    let (n, m, start) = sizes(run, 2_000_000..=2_500_000);
    let path = segment(run);
    let mut bytes = vec![0u8; SEGMENT_BYTES];
    bytes[..8].copy_from_slice(&start.to_ne_bytes());
    std::fs::write(&path, &bytes)
        .map_err(|e| Failure::internal(format!("creating {}: {e}", path.display())))?;

    let mut p = run.spawn("counter", &[method.into(), n.to_string(), m.to_string()])?;
    let (workers, ()) = release_workers(run, &mut p, n, |_| ())?;
    finish(run, &mut p, &workers)?;

    let bytes = std::fs::read(&path).map_err(|e| {
        Failure::wrong(
            format!("the segment {} to still exist", path.display()),
            format!("it cannot be read: {e}"),
        )
        .because("the program must not remove a segment it did not create")
    })?;
    let Some(total) = bytes
        .get(..8)
        .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
    else {
        return Err(Failure::wrong(
            "the segment to keep its size",
            format!("it has {} bytes", bytes.len()),
        ));
    };
    if total != start + n as u64 * m {
        return Err(lost(
            "the shared segment",
            start,
            n,
            m,
            total,
            why.to_string(),
        ));
    }
    Ok(())
}

fn counter_mutex(run: &mut Run) -> Outcome {
    counter_in_memory(
        run,
        "mutex",
        "two workers read the same total and both wrote back that total + 1, so one addition \
         was lost. The lock must be held from before the read until after the write back: \
         is the lock taken at all, and is the guard still alive at the store?",
    )
}

fn counter_atomic(run: &mut Run) -> Outcome {
    counter_in_memory(
        run,
        "atomic",
        "a load followed by a store is two steps, even on an atomic: between them another worker \
         adds, and the store overwrites its addition. fetch_add does both in one indivisible step",
    )
}

fn counter_flock(run: &mut Run) -> Outcome {
    let (n, m, start) = sizes(run, 1_500..=2_500);
    let path = run.sandbox.tmp.join("total.txt");
    std::fs::write(&path, format!("{start}\n"))
        .map_err(|e| Failure::internal(format!("creating {}: {e}", path.display())))?;

    let mut p = run.spawn("counter", &["file".into(), n.to_string(), m.to_string()])?;
    // While they wait at the gate, each worker has opened total.txt: does
    // each have an open file description of its own?
    let file = path.display().to_string();
    let (workers, sharing) = release_workers(run, &mut p, n, |workers| {
        shared_descriptions(workers, &file)
    })?;
    finish(run, &mut p, &workers)?;

    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::wrong(
            "total.txt to still be there",
            format!("it cannot be read: {e}"),
        )
    })?;
    let Ok(total) = text.trim().parse::<u64>() else {
        return Err(Failure::wrong(
            "total.txt to hold a number",
            format!("it holds {:?}", text.chars().take(80).collect::<String>()),
        )
        .because(
            "two workers wrote at the same time: the write must happen with the file locked",
        ));
    };
    if total != start + n as u64 * m {
        let why = match sharing {
            Some((a, b)) => format!(
                "workers {a} and {b} have total.txt open through one and the same open file description \
                 (the parent's, inherited over fork or duplicated with try_clone/dup). A flock lock belongs \
                 to the open file description, so they all hold \"the\" lock at once. Each worker must open \
                 the file itself, after fork"
            ),
            None => "two workers read the same total and both wrote back that total + 1, so one addition \
                     was lost. Lock the file before reading the total and unlock it only after writing \
                     the new total back"
                .to_string(),
        };
        return Err(lost("total.txt", start, n, m, total, why));
    }
    Ok(())
}

/// Two workers none of whose descriptors for `file` is its own: every one
/// of them is shared with another worker (the same open file description).
fn shared_descriptions(workers: &[i32], file: &str) -> Option<(i32, i32)> {
    let open: BTreeMap<i32, Vec<i32>> = workers
        .iter()
        .map(|&w| {
            let fds = procfs::fds(w)
                .into_iter()
                .filter(|(_, target)| target == file)
                .map(|(fd, _)| fd)
                .collect();
            (w, fds)
        })
        .collect();
    for (&a, fds_a) in &open {
        if fds_a.is_empty() {
            continue;
        }
        let mut partner = None;
        let all_shared = fds_a.iter().all(|&fa| {
            open.iter().filter(|(b, _)| **b != a).any(|(&b, fds_b)| {
                let same = fds_b
                    .iter()
                    .any(|&fb| procfs::same_open_file(a, fa, b, fb) == Some(true));
                if same {
                    partner = Some(b);
                }
                same
            })
        });
        if all_shared {
            return partner.map(|b| (a, b));
        }
    }
    None
}

/// What `lines` printed: the lines, once the program has exited cleanly.
fn run_lines(run: &mut Run, n: usize, k: usize, len: usize) -> Result<Vec<String>, Failure> {
    let mut p = run.spawn("lines", &[n.to_string(), k.to_string(), len.to_string()])?;
    let (workers, ()) = release_workers(run, &mut p, n, |_| ())?;
    let lines: Vec<String> = run
        .rest(&mut p, "the printers to finish")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    finish(run, &mut p, &workers)?;
    Ok(lines)
}

/// Every line whole: LEN copies of one of the N letters, K lines each.
fn expect_whole(lines: &[String], n: usize, k: usize, len: usize) -> Outcome {
    let letters: Vec<char> = (0..n).map(|i| (b'A' + i as u8) as char).collect();
    for (i, line) in lines.iter().enumerate() {
        let first = line.chars().next().unwrap_or(' ');
        let uniform = letters.contains(&first) && line.chars().all(|c| c == first);
        if !uniform || line.len() != len {
            let shown: String = line.chars().take(100).collect();
            let more = if line.len() > 100 { "..." } else { "" };
            let what = if uniform {
                format!(
                    "line {} is {} letters long: `{shown}{more}`",
                    i + 1,
                    line.len()
                )
            } else {
                format!("line {} mixes letters: `{shown}{more}`", i + 1)
            };
            return Err(Failure::wrong(
                format!("every line to be {len} copies of one letter"),
                what,
            )
            .because(
                "another printer wrote in the middle of a line: a line goes out in several small \
                 write() calls, so the whole line is the critical section. Hold the lock from its \
                 first piece to its last",
            ));
        }
    }
    for letter in &letters {
        let count = lines.iter().filter(|l| l.starts_with(*letter)).count();
        if count != k {
            return Err(Failure::wrong(
                format!("{k} lines of {letter}"),
                format!("{count} lines of {letter}, {} lines in all", lines.len()),
            ));
        }
    }
    Ok(())
}

fn lines_stay_whole(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(6..=8);
    let k = run.rng.random_range(10..=14);
    let len = run.rng.random_range(60..=120);
    let lines = run_lines(run, n, k, len)?;
    expect_whole(&lines, n, k, len)
}

fn lock_only_around_line(run: &mut Run) -> Outcome {
    let n = run.rng.random_range(4..=6);
    let k = run.rng.random_range(8..=12);
    let len = run.rng.random_range(40..=80);
    let lines = run_lines(run, n, k, len)?;
    expect_whole(&lines, n, k, len)?;
    // Runs of lines from the same printer. With the lock held for one line
    // at a time, printers take turns; held for all of a printer's lines,
    // the output is exactly one run per printer.
    let mut runs = 0;
    let mut previous = None;
    for line in &lines {
        let letter = line.chars().next();
        if letter != previous {
            runs += 1;
            previous = letter;
        }
    }
    if runs <= n {
        return Err(Failure::wrong(
            "the printers to take turns: the lock held for one line, then released",
            format!(
                "{} lines came in {runs} blocks, one printer after the other",
                lines.len()
            ),
        )
        .because(
            "each printer kept the lock for all its lines, so the others could not even do their \
             work outside the critical section meanwhile. Take the lock inside the loop, for the \
             line only",
        ));
    }
    Ok(())
}
