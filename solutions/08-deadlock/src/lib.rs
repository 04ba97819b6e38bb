//! Lab 08 — deadlock: two locks, many processes, and the ways out.
//!
//! You write five functions:
//!
//! - [`lock_both`] takes two locks in one global order (the resource
//!   hierarchy), whatever order the caller names them in;
//! - [`dine`] is a dining philosopher that never deadlocks;
//! - [`try_lock_for`] waits for a lock, but not for ever;
//! - [`lock_both_backoff`] takes two locks the other way out: try, and on
//!   failure let go of everything and try again later;
//! - [`lock_records`] lets the kernel find the deadlock (`EDEADLK`) and
//!   recovers from it.
//!
//! The programs in `src/bin/` and `src/given.rs` are given: the checker
//! runs the programs (`cargo lab check 8`). Edit this file only.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;

pub mod given;

use given::{FileLock, Guard, Pace, RecordGuard, RecordLock};

// ANCHOR: lock_both
/// Takes both locks, the one with the lower rank first, and returns the
/// guards in that order. Every process that follows this rule takes any
/// two locks in the same order, so no circle of waiting can form.
pub fn lock_both(a: &FileLock, b: &FileLock) -> Result<(Guard, Guard)> {
    given::distinct(a.rank(), b.rank())?;
    let (low, high) = if a.rank() < b.rank() { (a, b) } else { (b, a) };
    let first = low.lock()?;
    let second = high.lock()?;
    Ok((first, second))
}
// ANCHOR_END: lock_both

// ANCHOR: dine
/// Philosopher `seat` eats `meals` meals. Each meal needs both forks, the
/// one on the left and the one on the right, which the neighbours share.
pub fn dine(
    seat: usize,
    left: &FileLock,
    right: &FileLock,
    meals: u32,
    pace: &mut Pace,
) -> Result<()> {
    for meal in 1..=meals {
        pace.think();
        // Lowest-ranked fork first: the last philosopher reaches right
        // (fork 0) before left, which breaks the circle.
        let forks = lock_both(left, right)
            .with_context(|| format!("philosopher {seat} taking forks for meal {meal}"))?;
        pace.eat(meal);
        drop(forks);
    }
    Ok(())
}
// ANCHOR_END: dine

// ANCHOR: try_lock_for
/// Takes `lock` if it becomes free within `patience`; `None` if it does
/// not. A lock that stays busy that long is the sign of a deadlock (or of
/// a very slow holder): the caller can give up what it holds.
pub fn try_lock_for(lock: &FileLock, patience: Duration) -> Result<Option<Guard>> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(guard) = lock.try_lock()? {
            return Ok(Some(guard));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // flock has no time-out of its own: look again a little later.
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}
// ANCHOR_END: try_lock_for

// ANCHOR: backoff
/// Takes `first`, then tries `second` for up to `patience_ms`. If the
/// second stays busy, lets go of the first, backs off for a random time,
/// and starts again. The locks may be named in any order: a circle can
/// form, but nobody keeps waiting in it while holding a lock.
pub fn lock_both_backoff(
    first: &FileLock,
    second: &FileLock,
    patience_ms: u64,
) -> Result<(Guard, Guard)> {
    given::distinct(first.rank(), second.rank())?;
    let patience = Duration::from_millis(patience_ms);
    loop {
        let a = first.lock()?;
        if let Some(b) = try_lock_for(second, patience)? {
            return Ok((a, b));
        }
        // Release what we hold *before* waiting, or the other process
        // still cannot get it.
        drop(a);
        given::back_off(patience_ms);
    }
}
// ANCHOR_END: backoff

// ANCHOR: lock_records
/// Takes both records, `first` then `second`. When the kernel refuses one
/// with EDEADLK, this process is the one that would close the circle: it
/// releases what it holds, backs off, and starts again.
pub fn lock_records<'a>(
    first: &'a RecordLock,
    second: &'a RecordLock,
) -> Result<(RecordGuard<'a>, RecordGuard<'a>)> {
    given::distinct(first.record(), second.record())?;
    loop {
        let a = match first.lock() {
            Ok(a) => a,
            Err(Errno::EDEADLK) => {
                given::back_off(20);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("locking {}", first.name())),
        };
        match second.lock() {
            Ok(b) => return Ok((a, b)),
            Err(Errno::EDEADLK) => {
                drop(a);
                given::back_off(20);
            }
            Err(e) => return Err(e).with_context(|| format!("locking {}", second.name())),
        }
    }
}
// ANCHOR_END: lock_records
