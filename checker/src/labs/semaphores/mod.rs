//! Lab 07 — counting semaphores.
//!
//! The checker is the printer: every job, while it prints, is connected to
//! a Unix socket the checker listens on, and stays connected until the
//! checker lets it go. So the checker counts exactly how many jobs print at
//! once (and knows their real pids, from SO_PEERCRED), decides when each
//! one finishes, and sees in /proc that every other job is blocked in
//! sem_wait (a futex) rather than printing. For the bounded buffer, the
//! checker chooses every item, holds the consumers at a gate, and counts
//! what comes out.

mod buffer;
mod mid_copy;
mod printers;

use crate::pid::Pid;
use std::time::Duration;

use crate::diagnose::syscall_name;
use crate::labs::Lab;
use crate::procfs;
use crate::scenario::{Fixture, Scenario, Variant};

use buffer::{buffer_under_stress, full_buffer_blocks};
use mid_copy::held_mid_copy;
use printers::{named_printers, printer_pool};

pub static LAB: Lab = Lab {
    number: 7,
    slug: "semaphores",
    title: "Semaphores: printers, named and unnamed, a bounded buffer",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "printer-pool",
            points: 3,
            limit: Duration::from_secs(15),
            does: "runs `pool JOBS PRINTERS` (7 jobs and 3 printers, or close): the checker is the printer, and decides when each job has finished printing",
            expects: "never more jobs printing than printers, all printers busy whenever jobs wait, every job printed once by a child process, and the program to exit with 0",
            hints: &[
                "Make one semaphore with as many units as printers (`Semaphore::shared(printers)`), then fork every job. A job takes a unit before printing and gives it back after.",
                "`Semaphore::shared` maps memory shared with the children (`given::Shared`) and calls `libc::sem_init(ptr, 1, value)`: pshared = 1, or the children each get a semaphore of their own.",
                "`wait` is `libc::sem_wait` in a loop that goes round again on EINTR; `post` is `libc::sem_post`. `acquire` waits and returns a Permit whose Drop posts.",
            ],
            max_procs: 16,
            run: printer_pool,
        },
        Scenario {
            name: "named-printers",
            points: 3,
            limit: Duration::from_secs(15),
            does: "runs `spool PRINTERS`, which creates a named semaphore, then starts `job N` programs one at a time (unrelated processes that open it by name) and lets them finish in a random order",
            expects: "a named semaphore under LAB_IPC_PREFIX while the spool runs, a job to say `every printer is busy` exactly when try_wait finds no printer, never more jobs printing than printers, and no semaphore left once the spool has exited",
            hints: &[
                "`Semaphore::create` is `libc::sem_open(name, O_CREAT | O_EXCL, 0o600, value)`, `open` is `sem_open(name, 0)`; both fail with `SEM_FAILED`, and the cause is in errno.",
                "`try_wait` is `libc::sem_trywait`: it fails with EAGAIN when the count is zero, which is `Ok(false)`, not an error.",
                "The name outlives every process until someone calls `sem_unlink`: the creator's Drop must close (`sem_close`) and unlink it, a handle from `open` only closes it.",
            ],
            max_procs: 24,
            run: named_printers,
        },
        Scenario {
            name: "full-buffer-blocks",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `buffer CAPACITY 2 2` with a small capacity and more items than fit, holding the consumers at a gate",
            expects: "the producers to block in sem_wait while the buffer is full (nothing overwritten), then, once the consumers go, every item taken exactly once",
            hints: &[
                "A bounded buffer needs two counting semaphores: `empty` (free slots, starts at the capacity) and `full` (items, starts at 0).",
                "`put` waits on `empty`, writes the slot, then posts `full`; `take` waits on `full`, reads the slot, then posts `empty`.",
            ],
            max_procs: 16,
            run: full_buffer_blocks,
        },
        Scenario {
            name: "buffer-under-stress",
            points: 3,
            limit: Duration::from_secs(30),
            does: "runs `buffer CAPACITY 4 4` three times: 4 producers put about 130 000 messages chosen by the checker, 4 consumers take them at the same time, and the checker pauses running processes at random moments",
            expects: "every item taken exactly once: none lost, none taken twice, none made up",
            hints: &[
                "Several producers (and several consumers) change `tail` (and `head`) at the same time: read the index, use the slot and move the index on while holding a third semaphore, the mutex, that starts at 1.",
                "Hold the mutex only around the slot and the index, never while waiting on `empty` or `full`: a producer that sleeps holding the mutex keeps every consumer out.",
            ],
            max_procs: 16,
            run: buffer_under_stress,
        },
        Scenario {
            name: "held-mid-copy",
            points: 2,
            limit: Duration::from_secs(20),
            does: "runs `buffer CAPACITY 2 2` twice: once holding a producer halfway through copying a message into a slot (consumers waiting), once holding a consumer halfway through copying one out (the buffer full, producers waiting); every other process goes on meanwhile",
            expects: "nobody else to use the ring while a copy is half done (they wait on the mutex), then every item taken exactly once",
            hints: &[
                "The copy into the slot (`Slot::store`) and out of it (`Slot::load`) belong inside the mutex, with the index: a slot announced with `full` before it is whole, or given back with `empty` before it is copied out, is read torn or overwritten.",
                "Post `full` (in put) and `empty` (in take) only after the mutex is released, once the copy is done.",
            ],
            max_procs: 16,
            run: held_mid_copy,
        },
    ],
    fixtures: &[
        Fixture {
            name: "never-posted",
            caught_by: "printer-pool",
            says: "never posted",
        },
        Fixture {
            name: "four-printers",
            caught_by: "printer-pool",
            says: "at once",
        },
        Fixture {
            name: "never-unlinked",
            caught_by: "named-printers",
            says: "sem_unlink",
        },
        Fixture {
            name: "try-wait-blocks",
            caught_by: "named-printers",
            says: "try_wait",
        },
        Fixture {
            name: "put-does-not-wait",
            caught_by: "full-buffer-blocks",
            says: "full",
        },
        Fixture {
            name: "no-mutex",
            caught_by: "buffer-under-stress",
            says: "mutex",
        },
        Fixture {
            name: "wait-as-try-wait-loop",
            caught_by: "printer-pool",
            says: "busy loop",
        },
        Fixture {
            name: "try-acquire-then-some",
            caught_by: "named-printers",
            says: "posts one too many",
        },
        Fixture {
            name: "put-copies-outside-mutex",
            caught_by: "held-mid-copy",
            says: "outside the mutex",
        },
        Fixture {
            name: "take-frees-slot-before-copy",
            caught_by: "held-mid-copy",
            says: "given back before it is copied out",
        },
        Fixture {
            name: "opener-unlinks",
            caught_by: "named-printers",
            says: "removed the name",
        },
    ],
    variants: &[Variant {
        name: "shared-via-sem-open",
        design: "the semaphores shared with forked children are named ones (sem_open with a unique name, unlinked at once) instead of sem_init in shared memory",
    }],
};

/// How long a stuck state must last before the checker calls it stuck. A
/// correct program never shows it at all (a woken process is running, not
/// in futex), so this is only a margin.
pub const STUCK_FOR: Duration = Duration::from_millis(300);

/// Whether `pid` is asleep in futex(), where sem_wait blocks.
pub fn in_sem_wait(pid: Pid) -> bool {
    let Some(s) = procfs::stat(pid) else {
        return false;
    };
    if s.state != 'S' {
        return false;
    }
    procfs::blocked(pid)
        .syscall
        .is_some_and(|(nr, _)| syscall_name(nr) == Some("futex"))
}

/// Whether `pid` is asleep in `call` (e.g. "wait4", "read").
pub fn blocked_in(pid: Pid, call: &str) -> bool {
    procfs::stat(pid).is_some_and(|s| s.state == 'S')
        && procfs::blocked(pid)
            .syscall
            .is_some_and(|(nr, _)| syscall_name(nr) == Some(call))
}

pub fn alive(pid: Pid) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The live children of `pid`.
pub fn live_children(pid: Pid) -> Vec<Pid> {
    procfs::children(pid)
        .into_iter()
        .filter(|&c| alive(c))
        .collect()
}

pub fn list(pids: &[Pid]) -> String {
    let v: Vec<String> = pids.iter().map(Pid::to_string).collect();
    v.join(", ")
}
