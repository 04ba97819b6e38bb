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
//! Read chapter 8 of the book first; `cargo lab hint 8` helps when stuck.

use std::time::Duration;

use anyhow::Result;

pub mod given;

use given::{FileLock, Guard, Pace, RecordGuard, RecordLock};

/// Takes both locks, the one with the lower rank first, and returns the
/// guards in that order. Every process that follows this rule takes any
/// two locks in the same order, so no circle of waiting can form.
pub fn lock_both(a: &FileLock, b: &FileLock) -> Result<(Guard, Guard)> {
    // TODO: take the lock with the lower rank first, then the other one,
    // whatever order `a` and `b` come in (check they differ with
    // `given::distinct`). Return both guards, still held.
    let _ = (a, b);
    todo!("lock_both: take the lower-ranked lock first, then the other")
}

/// Philosopher `seat` eats `meals` meals. Each meal needs both forks, the
/// one on the left and the one on the right, which the neighbours share.
pub fn dine(
    seat: usize,
    left: &FileLock,
    right: &FileLock,
    meals: u32,
    pace: &mut Pace,
) -> Result<()> {
    // TODO: for each meal from 1 to `meals`: `pace.think()`, take both
    // forks without risking a deadlock, `pace.eat(meal)`, then release them.
    let _ = (seat, left, right, meals, pace);
    todo!("dine: think, take both forks safely, eat, release; `meals` times")
}

/// Takes `lock` if it becomes free within `patience`; `None` if it does
/// not. A lock that stays busy that long is the sign of a deadlock (or of
/// a very slow holder): the caller can give up what it holds.
pub fn try_lock_for(lock: &FileLock, patience: Duration) -> Result<Option<Guard>> {
    // TODO: call `lock.try_lock()` until it gives you the guard, or until
    // `patience` has passed (then return `Ok(None)`). Sleep a few
    // milliseconds between tries.
    let _ = (lock, patience);
    todo!("try_lock_for: try the lock again and again until `patience` runs out")
}

/// Takes `first`, then tries `second` for up to `patience_ms`. If the
/// second stays busy, lets go of the first, backs off for a random time,
/// and starts again. The locks may be named in any order: a circle can
/// form, but nobody keeps waiting in it while holding a lock.
pub fn lock_both_backoff(
    first: &FileLock,
    second: &FileLock,
    patience_ms: u64,
) -> Result<(Guard, Guard)> {
    // TODO: loop: lock `first`; try `second` with `try_lock_for` for
    // `patience_ms`; on success return both guards; on failure release
    // `first`, then `given::back_off(patience_ms)`, and start again.
    let _ = (first, second, patience_ms);
    todo!("lock_both_backoff: lock, try the second, on failure release and back off")
}

/// Takes both records, `first` then `second`. When the kernel refuses one
/// with EDEADLK, this process is the one that would close the circle: it
/// releases what it holds, backs off, and starts again.
pub fn lock_records<'a>(
    first: &'a RecordLock,
    second: &'a RecordLock,
) -> Result<(RecordGuard<'a>, RecordGuard<'a>)> {
    // TODO: loop: lock `first`, then `second` (`RecordLock::lock`). When a
    // lock fails with `Errno::EDEADLK`, release what you hold, call
    // `given::back_off(20)` and start again; other errors are errors.
    let _ = (first, second);
    todo!("lock_records: take both records, recovering from EDEADLK")
}
