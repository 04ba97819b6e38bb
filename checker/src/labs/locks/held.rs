//! The lock held on purpose: the checker stops a worker (SIGSTOP) while it
//! is inside its critical section, which it knows because the total stops
//! moving, and watches the other workers. Waiting for a lock must be
//! sleeping: a worker that spins burns the CPU the holder needs, and on a
//! loaded machine the holder may be descheduled at any moment.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::pid::Pid;
use nix::sys::signal::{Signal, kill};

use super::{SEGMENT_BYTES, release_workers, segment};
use crate::peers::waiting::{described, spinning};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};

fn alive(pid: Pid) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

pub fn held_lock_puts_others_to_sleep(run: &mut Run) -> Outcome {
    held_in_memory(run)?;
    held_in_file(run)
}

fn held_in_memory(run: &mut Run) -> Outcome {
    let path = segment(run);
    let mut bytes = vec![0u8; SEGMENT_BYTES];
    bytes[..8].copy_from_slice(&run.rng.random_range(1_000..1_000_000u64).to_ne_bytes());
    std::fs::write(&path, &bytes)
        .map_err(|e| Failure::internal(format!("creating {}: {e}", path.display())))?;
    let total = || {
        std::fs::read(&path)
            .ok()
            .map(|b| b[..8.min(b.len())].to_vec())
    };
    held(run, "mutex", &total, "the mutex", MUTEX_HINT)
}

fn held_in_file(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join("total.txt");
    std::fs::write(
        &path,
        format!("{}\n", run.rng.random_range(1_000..1_000_000u64)),
    )
    .map_err(|e| Failure::internal(format!("creating {}: {e}", path.display())))?;
    let total = || std::fs::read(&path).ok();
    held(run, "file", &total, "the file lock", FILE_HINT)
}

/// Runs `counter METHOD 3 M` with far more additions than it has time
/// for, catches a holder, and ends the program: the totals themselves are
/// the other scenarios' business.
fn held(
    run: &mut Run,
    method: &str,
    total: &dyn Fn() -> Option<Vec<u8>>,
    lock: &str,
    hint: &str,
) -> Outcome {
    let n = 3;
    let m: u64 = 1_000_000_000;
    let mut p = run.spawn("counter", &[method.into(), n.to_string(), m.to_string()])?;
    let (workers, ()) = release_workers(run, &mut p, n, |_| ())?;
    let caught = catch_the_holder(run, &workers, total, lock, hint, method == "file");
    for &w in &workers {
        run.resume(w);
        let _ = kill(nix::unistd::Pid::from(w), Signal::SIGKILL);
    }
    let _ = kill(nix::unistd::Pid::from(p.pid), Signal::SIGKILL);
    let _ = run.wait(&mut p);
    caught
}

const MUTEX_HINT: &str = "`lock` calls pthread_mutex_lock, which puts the caller to sleep \
     until the mutex is free; do not loop on pthread_mutex_trylock";
const FILE_HINT: &str = "lock with a blocking LOCK_EX (`Flock::lock(file, \
     FlockArg::LockExclusive)`), which sleeps until the lock is free; do not loop on \
     LOCK_NB";

/// Stops a worker at random moments until one is caught holding the lock
/// (the total stops moving while it is stopped), then expects every other
/// worker to sleep. Lets the stopped worker go again in every case.
fn catch_the_holder(
    run: &mut Run,
    workers: &[Pid],
    total: &dyn Fn() -> Option<Vec<u8>>,
    lock: &str,
    hint: &str,
    kill_holder: bool,
) -> Outcome {
    for _ in 0..60 {
        let live: Vec<Pid> = workers.iter().copied().filter(|&w| alive(w)).collect();
        if live.len() < 2 {
            return Ok(());
        }
        let w = *live.choose(&mut run.rng).expect("two workers");
        run.stop(w);
        let before = total();
        run.pause(Duration::from_millis(100));
        if before.is_none() || total() != before {
            // Another worker added meanwhile: w was not holding the lock.
            run.resume(w);
            let gap = run.rng.random_range(1..30);
            run.pause(Duration::from_millis(gap));
            continue;
        }
        let others: Vec<Pid> = live.into_iter().filter(|&o| o != w && alive(o)).collect();
        let spun = spinning(run, &others, Duration::from_millis(600));
        if total() != before {
            // Someone added after all: they were only slow to get a CPU,
            // and w was not holding the lock. Try again.
            run.resume(w);
            continue;
        }
        if !kill_holder {
            run.resume(w);
        }
        if let Some((o, spent)) = spun {
            return Err(Failure::wrong(
                format!("the other workers to sleep while worker {w} holds {lock}"),
                format!(
                    "the checker stopped worker {w} inside its critical section (the total \
                     stopped moving); worker {o}: {}",
                    described(&spent)
                ),
            )
            .because(format!(
                "the workers wait for {lock} in a busy loop (trying again and again) instead \
                 of blocking: they burn the CPU that the holder needs to finish and let go"
            ))
            .hint(hint));
        }
        if kill_holder {
            return others_go_on(run, w, total, lock);
        }
        return Ok(());
    }
    Ok(())
}

/// Kills the worker `w`, stopped while it holds the lock: the lock must
/// die with it, and the other workers go on.
fn others_go_on(run: &Run, w: Pid, total: &dyn Fn() -> Option<Vec<u8>>, lock: &str) -> Outcome {
    let _ = kill(nix::unistd::Pid::from(w), Signal::SIGKILL);
    run.activity.touch();
    let before = total();
    let moved = run.poll(Duration::from_secs(3), || (total() != before).then_some(()));
    if moved.is_some() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("the other workers to go on once worker {w}, holding {lock}, is killed"),
        format!(
            "the checker killed worker {w} (SIGKILL) inside its critical section, and for 3 s \
             after that no other worker added anything"
        ),
    )
    .because(
        "the lock outlived the process that held it. A lock the kernel knows as a lock \
         (flock, fcntl) is released when its holder's descriptors close, as they do when it \
         dies; a lock made of something else (a lock file created with O_EXCL, a flag in the \
         file) stays there for ever",
    )
    .hint("lock total.txt itself with flock(LOCK_EX) (or fcntl): the kernel releases it if the holder dies"))
}

/// Watches `/proc/locks` while the workers run, for two processes holding
/// a shared (read) lock on one file at the same time.
pub struct SharedLocks {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<Vec<Pid>>>,
}

impl SharedLocks {
    pub fn watch(path: &Path) -> Result<SharedLocks, Failure> {
        let inode = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lock watch".into())
            .spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let mut holders: Vec<Pid> = procfs::file_locks()
                        .into_iter()
                        .filter(|l| l.inode == inode && !l.waiting && !l.write)
                        .map(|l| l.pid)
                        .collect();
                    // /proc/locks can show one lock twice (see file_locks).
                    holders.sort_unstable();
                    holders.dedup();
                    if holders.len() >= 2 {
                        return Some(holders);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                None
            });
        let thread = thread.map_err(|e| {
            Failure::internal(format!("starting the thread that watches locks: {e}"))
        })?;
        Ok(SharedLocks { stop, thread })
    }

    /// The pids seen holding shared locks at once, if any.
    pub fn seen(self) -> Option<Vec<Pid>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}
