//! Lab 06 — locks: critical sections shared by processes.
//!
//! The programs start their workers and hold them at a gate (they read
//! stdin to its end); the checker releases them all at once, so they really
//! race. Enough workers and additions run that a missing or misplaced lock
//! loses updates every time. The checker writes the starting total itself
//! (a random number, in the shared memory segment or in the file) and reads
//! the result there after the program has exited: printed totals are
//! ignored.

use crate::pid::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::Rng;

use crate::diagnose;
use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant};

mod bench;
mod held;
mod lines;

use bench::bench_figures_hold_up;
use held::{SharedLocks, held_lock_puts_others_to_sleep};
use lines::{lines_stay_whole, lock_only_around_line};

pub static LAB: Lab = Lab {
    number: 6,
    slug: "locks",
    title: "Locks: critical sections between processes",
    student: &["src/lib.rs"],
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
            name: "held-lock-puts-others-to-sleep",
            points: 2,
            limit: Duration::from_secs(40),
            does: "runs `counter mutex 3 M`, then `counter file 3 M` with M too large to finish, and stops a worker (SIGSTOP) at random moments until it catches one inside its critical section (the total stops moving), then watches the others' CPU time; the file's holder is then killed",
            expects: "the other workers asleep while the holder is stopped: blocked in the lock, not trying again and again; and, for the file, the others going on once the holder is killed",
            hints: &[
                "Waiting for a lock is sleeping: pthread_mutex_lock and a blocking flock(LOCK_EX) put the caller to sleep until the holder lets go.",
                "A loop around pthread_mutex_trylock or flock(LOCK_NB) keeps a CPU busy for nothing, and on a loaded machine steals it from the holder.",
            ],
            max_procs: 16,
            run: held_lock_puts_others_to_sleep,
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
        Scenario {
            name: "bench-figures-hold-up",
            points: 1,
            limit: Duration::from_secs(20),
            does: "runs `bench 2 M` and reads its table",
            expects: "figures that are possible: nothing lost but with `none`, total + lost = the additions, nanoseconds per addition that make the milliseconds, no method faster than it can be, and times that add up to no more than the bench ran",
            hints: &[
                "The bench is given: it times your `add_atomic`, `add_locked` and `FileTotal::add`. If a figure is impossible, one of them skips work (an addition that does not happen, a file never written).",
            ],
            max_procs: 8,
            run: bench_figures_hold_up,
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
        Fixture {
            name: "mutex-trylock-spin",
            caught_by: "held-lock-puts-others-to-sleep",
            says: "busy loop",
        },
        Fixture {
            name: "flock-nonblocking-spin",
            caught_by: "held-lock-puts-others-to-sleep",
            says: "busy loop",
        },
        Fixture {
            name: "guard-bound-to-underscore",
            caught_by: "counter-mutex",
            says: "let _ =",
        },
        Fixture {
            name: "lock-file-outlives-holder",
            caught_by: "held-lock-puts-others-to-sleep",
            says: "outlived the process that held it",
        },
        Fixture {
            name: "flock-shared-lock",
            caught_by: "counter-flock",
            says: "LOCK_SH",
        },
    ],
    variants: &[
        Variant {
            name: "fcntl-record-locks",
            design: "fcntl record locks (F_SETLKW) on the whole file instead of flock",
        },
        Variant {
            name: "futex-lock",
            design: "a lock built on a raw futex word (FUTEX_WAIT/FUTEX_WAKE, not private) instead of a pthread mutex",
        },
    ],
};

/// The segment the memory methods keep their total in.
pub(super) fn segment(run: &Run) -> PathBuf {
    PathBuf::from(format!(
        "/dev/shm/{}counter",
        run.sandbox.ipc_prefix.trim_start_matches('/')
    ))
}

/// A size for the segment: more than the counter needs (8 bytes of total,
/// then the mutex).
pub(super) const SEGMENT_BYTES: usize = 4096;

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
pub(super) fn release_workers<T>(
    run: &mut Run,
    p: &mut Proc,
    n: usize,
    before: impl FnOnce(&[Pid]) -> T,
) -> Result<(Vec<Pid>, T), Failure> {
    let program = p.pid;
    let live_children = || -> Vec<Pid> {
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
pub(super) fn finish(run: &Run, p: &mut Proc, workers: &[Pid]) -> Outcome {
    match run.wait(p) {
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
        Err(failure) => {
            let in_futex: Vec<Pid> = workers
                .iter()
                .copied()
                .filter(|&w| {
                    procfs::stat(w).is_some_and(|s| !s.is_zombie())
                        && procfs::blocked(w)
                            .syscall
                            .is_some_and(|(nr, _)| diagnose::syscall_name(nr) == Some("futex"))
                })
                .collect();
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
pub(super) fn lost(place: &str, start: u64, n: usize, m: u64, found: u64, why: String) -> Failure {
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
         is the lock taken at all, and is the guard still alive at the store? (`let _ = \
         lock.lock()?` drops the guard at once: bind it to a name, `let _guard = ...`)",
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
    let watch = SharedLocks::watch(&path)?;
    let released = release_workers(run, &mut p, n, |workers| {
        shared_descriptions(workers, &file)
    });
    let finished = released.and_then(|(workers, sharing)| {
        finish(run, &mut p, &workers)?;
        Ok(sharing)
    });
    if let Some(holders) = watch.seen() {
        return Err(Failure::wrong(
            "one worker at a time holding the lock on total.txt",
            format!(
                "/proc/locks showed processes {} holding it at the same time, as shared (READ) locks",
                holders.iter().map(Pid::to_string).collect::<Vec<_>>().join(" and ")
            ),
        )
        .because(
            "the file is locked with LOCK_SH, a shared lock: any number of processes hold one at \
             once, so it keeps nobody out of the read-modify-write",
        )
        .hint("take an exclusive lock: FlockArg::LockExclusive (LOCK_EX)"));
    }
    let sharing = finished?;

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
fn shared_descriptions(workers: &[Pid], file: &str) -> Option<(Pid, Pid)> {
    let open: BTreeMap<Pid, Vec<i32>> = workers
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
