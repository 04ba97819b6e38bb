//! Lab 07 — counting semaphores.
//!
//! You write three things:
//!
//! - [`Semaphore`], a safe wrapper around POSIX semaphores: named ones
//!   (`sem_open`, found by name by unrelated programs) and unnamed ones
//!   (`sem_init` in memory shared with forked children), with [`Permit`],
//!   a guard that gives the semaphore back when dropped;
//! - [`printer_pool`], the printers of the tutorials this course grew from: many jobs, few printers,
//!   never more jobs printing than there are printers;
//! - [`BoundedBuffer`], a fixed-size queue in shared memory where producers
//!   wait while it is full and consumers wait while it is empty.
//!
//! The programs in `src/bin/` are given: each one calls your code, and the
//! checker runs them (`cargo lab check 7`). Edit this file only.

use std::ffi::CString;

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;

pub mod given;

use given::Shared;

// ANCHOR: semaphore
/// A POSIX counting semaphore: a number that never goes below zero.
///
/// [`wait`](Semaphore::wait) takes one unit, blocking while the count is
/// zero; [`post`](Semaphore::post) gives one back and wakes one waiter.
///
/// What dropping it does depends on how it was made:
///
/// - [`Semaphore::create`]: closes it, then removes its name
///   (`sem_unlink`), so no program can open it any more. Programs that
///   opened it before keep using it until they close it.
/// - [`Semaphore::open`]: closes it only; the name stays.
/// - [`Semaphore::shared`]: in the process that made it, destroys it
///   (`sem_destroy`) and unmaps its memory. Forked children end with
///   `_exit` and never drop it.
pub struct Semaphore {
    sem: *mut libc::sem_t,
    kind: Kind,
}

enum Kind {
    /// From `sem_open`. `unlink_by` is the pid that removes the name.
    Named {
        name: CString,
        unlink_by: Option<i32>,
    },
    /// From `sem_init` inside `memory`, by process `creator`.
    Unnamed {
        // Kept only to be unmapped (dropped) after sem_destroy.
        _memory: Shared<libc::sem_t>,
        creator: i32,
    },
}
// ANCHOR_END: semaphore

// ANCHOR: create
impl Semaphore {
    /// Creates the named semaphore `name` (`/something`) with `value` units.
    /// Fails if it exists already. Dropping the result unlinks the name.
    pub fn create(name: &str, value: u32) -> Result<Semaphore> {
        let cname = CString::new(name).context("a name without NUL bytes")?;
        // SAFETY: cname is a valid C string; sem_open takes the mode and
        // the initial value as extra arguments when O_CREAT is given.
        let sem = unsafe {
            libc::sem_open(
                cname.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                value as libc::c_uint,
            )
        };
        if sem == libc::SEM_FAILED {
            let e = Errno::last();
            if e == Errno::EEXIST {
                bail!(
                    "sem_open({name}): a semaphore of that name exists already \
                     (left behind by an earlier run? remove /dev/shm/sem.{})",
                    name.trim_start_matches('/')
                );
            }
            return Err(e).with_context(|| format!("sem_open({name}, O_CREAT | O_EXCL)"));
        }
        Ok(Semaphore {
            sem,
            kind: Kind::Named {
                name: cname,
                unlink_by: Some(given::me()),
            },
        })
    }

    // ANCHOR: open
    /// Opens the existing named semaphore `name`. Dropping it closes it.
    pub fn open(name: &str) -> Result<Semaphore> {
        let cname = CString::new(name).context("a name without NUL bytes")?;
        // SAFETY: cname is a valid C string; without O_CREAT, sem_open
        // takes no extra arguments.
        let sem = unsafe { libc::sem_open(cname.as_ptr(), 0) };
        if sem == libc::SEM_FAILED {
            return Err(Errno::last()).with_context(|| format!("sem_open({name})"));
        }
        Ok(Semaphore {
            sem,
            kind: Kind::Named {
                name: cname,
                unlink_by: None,
            },
        })
    }
    // ANCHOR_END: open

    // ANCHOR: shared
    /// Makes an unnamed semaphore with `value` units, in memory shared with
    /// every child this process forks afterwards.
    pub fn shared(value: u32) -> Result<Semaphore> {
        let memory = Shared::<libc::sem_t>::zeroed()?;
        // pshared = 1: the semaphore is used by several processes, so it
        // must live in shared memory (a thread-only one could not).
        // SAFETY: the memory is a fresh sem_t that nobody uses yet.
        if unsafe { libc::sem_init(memory.as_ptr(), 1, value) } != 0 {
            return Err(Errno::last()).context("sem_init");
        }
        Ok(Semaphore {
            sem: memory.as_ptr(),
            kind: Kind::Unnamed {
                _memory: memory,
                creator: given::me(),
            },
        })
    }
    // ANCHOR_END: shared

    // ANCHOR: wait
    /// Takes one unit, blocking while there is none.
    pub fn wait(&self) -> Result<()> {
        loop {
            // SAFETY: self.sem stays valid as long as self.
            if unsafe { libc::sem_wait(self.sem) } == 0 {
                return Ok(());
            }
            match Errno::last() {
                // A signal handler ran while we waited: wait again.
                Errno::EINTR => continue,
                e => return Err(e).context("sem_wait"),
            }
        }
    }

    /// Takes one unit if there is one, without blocking: `Ok(false)` if the
    /// count was zero.
    pub fn try_wait(&self) -> Result<bool> {
        loop {
            // SAFETY: as in wait.
            if unsafe { libc::sem_trywait(self.sem) } == 0 {
                return Ok(true);
            }
            match Errno::last() {
                Errno::EAGAIN => return Ok(false),
                Errno::EINTR => continue,
                e => return Err(e).context("sem_trywait"),
            }
        }
    }

    /// Gives one unit back, waking one waiter if there is one.
    pub fn post(&self) -> Result<()> {
        // SAFETY: as in wait.
        if unsafe { libc::sem_post(self.sem) } != 0 {
            return Err(Errno::last()).context("sem_post");
        }
        Ok(())
    }
    // ANCHOR_END: wait

    // ANCHOR: acquire
    /// Waits for a unit and returns a [`Permit`] that posts it back when
    /// dropped, even on an early return with `?`.
    pub fn acquire(&self) -> Result<Permit<'_>> {
        self.wait()?;
        Ok(Permit { sem: self })
    }

    /// Like [`acquire`](Semaphore::acquire), without blocking: `None` if
    /// no unit is free.
    pub fn try_acquire(&self) -> Result<Option<Permit<'_>>> {
        // `then`, not `then_some`: then_some(Permit {..}) would build the
        // permit even when try_wait failed, and its drop would post a unit
        // that was never taken.
        Ok(self.try_wait()?.then(|| Permit { sem: self }))
    }
    // ANCHOR_END: acquire
}
// ANCHOR_END: create

// ANCHOR: drop
impl Drop for Semaphore {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Named { name, unlink_by } => {
                // SAFETY: self.sem came from sem_open and is closed once.
                unsafe { libc::sem_close(self.sem) };
                if *unlink_by == Some(given::me()) {
                    // SAFETY: name is a valid C string.
                    unsafe { libc::sem_unlink(name.as_ptr()) };
                }
            }
            Kind::Unnamed { creator, .. } => {
                if *creator == given::me() {
                    // SAFETY: made by sem_init here; the children that used
                    // it have been waited for by now.
                    unsafe { libc::sem_destroy(self.sem) };
                }
                // _memory is unmapped right after this.
            }
        }
    }
}
// ANCHOR_END: drop

// ANCHOR: permit
/// One unit of a semaphore, held: posted back when dropped.
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.sem.post() {
            eprintln!("pid {}: giving a permit back: {e:#}", given::me());
        }
    }
}
// ANCHOR_END: permit

// ANCHOR: printer_pool
/// Runs `jobs` print jobs, each in a child process of its own, all started
/// at once, with only `printers` printers: never more than `printers` jobs
/// print (call [`given::print`]) at the same time. Waits for every job.
pub fn printer_pool(jobs: usize, printers: u32) -> Result<()> {
    let free = Semaphore::shared(printers)?;
    let mut pids = Vec::with_capacity(jobs);
    for job in 0..jobs {
        let free = &free;
        let started = given::start_fallible(move || {
            // Held until the end of this closure, even if print fails.
            let _printer = free.acquire()?;
            given::print(job)
        });
        match started {
            Ok(pid) => pids.push(pid),
            Err(e) => {
                // Do not leave the jobs we did start behind.
                let _ = given::join_all(&pids);
                return Err(e);
            }
        }
    }
    given::join_all(&pids)
}
// ANCHOR_END: printer_pool

/// The most messages a [`BoundedBuffer`] can hold.
pub const MAX_CAPACITY: usize = 64;
/// The longest message, in bytes.
pub const MESSAGE_MAX: usize = 64;

// ANCHOR: ring
/// One message, in place.
#[repr(C)]
struct Slot {
    len: usize,
    bytes: [u8; MESSAGE_MAX],
}

/// The ring of slots, in shared memory. Messages are in
/// `slots[head], slots[head + 1], ...` (wrapping around), `tail` is the
/// next slot to fill.
#[repr(C)]
struct Ring {
    head: usize,
    tail: usize,
    slots: [Slot; MAX_CAPACITY],
}

/// A queue of at most `capacity` short messages, shared by the processes
/// forked after it was made.
pub struct BoundedBuffer {
    capacity: usize,
    /// Free slots: producers wait on it while the buffer is full.
    empty: Semaphore,
    /// Filled slots: consumers wait on it while the buffer is empty.
    full: Semaphore,
    /// 1 or 0: who may touch the slots, `head` and `tail` right now.
    mutex: Semaphore,
    ring: Shared<Ring>,
}
// ANCHOR_END: ring

impl Slot {
    /// Copies `bytes` (at most [`MESSAGE_MAX`]) into the slot. The checker
    /// may hold the process halfway through ([`given::pause_point`]), to
    /// see what the others do meanwhile.
    fn store(&mut self, bytes: &[u8]) {
        let half = bytes.len() / 2;
        self.bytes[..half].copy_from_slice(&bytes[..half]);
        given::pause_point("put");
        self.bytes[half..bytes.len()].copy_from_slice(&bytes[half..]);
        self.len = bytes.len();
    }

    /// Copies the message out of the slot; the checker may hold the
    /// process halfway through, as in [`Slot::store`].
    fn load(&self) -> String {
        let len = self.len.min(MESSAGE_MAX);
        let half = len / 2;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.bytes[..half]);
        given::pause_point("take");
        out.extend_from_slice(&self.bytes[half..len]);
        String::from_utf8_lossy(&out).into_owned()
    }
}

// ANCHOR: new
impl BoundedBuffer {
    /// An empty buffer for at most `capacity` messages (1 to [`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Result<BoundedBuffer> {
        ensure!(
            (1..=MAX_CAPACITY).contains(&capacity),
            "a capacity from 1 to {MAX_CAPACITY}, not {capacity}"
        );
        Ok(BoundedBuffer {
            capacity,
            empty: Semaphore::shared(capacity as u32)?,
            full: Semaphore::shared(0)?,
            mutex: Semaphore::shared(1)?,
            ring: Shared::zeroed()?,
        })
    }

    // ANCHOR: put
    /// Adds `message` (at most [`MESSAGE_MAX`] bytes) at the tail, waiting
    /// while the buffer is full.
    pub fn put(&self, message: &str) -> Result<()> {
        let bytes = message.as_bytes();
        ensure!(
            bytes.len() <= MESSAGE_MAX,
            "a message of at most {MESSAGE_MAX} bytes, not {}",
            bytes.len()
        );
        self.empty.wait()?; // a free slot is ours now
        {
            let _mutex = self.mutex.acquire()?;
            let ring = self.ring.as_ptr();
            // SAFETY: the mapping lives as long as self, and the mutex
            // keeps every other process out of the ring.
            unsafe {
                let tail = (*ring).tail;
                (*ring).slots[tail].store(bytes);
                (*ring).tail = (tail + 1) % self.capacity;
            }
        }
        self.full.post() // one more message for the consumers
    }
    // ANCHOR_END: put

    // ANCHOR: take
    /// Removes the message at the head, waiting while the buffer is empty.
    pub fn take(&self) -> Result<String> {
        self.full.wait()?; // a message is ours now
        let message = {
            let _mutex = self.mutex.acquire()?;
            let ring = self.ring.as_ptr();
            // SAFETY: as in put.
            unsafe {
                let head = (*ring).head;
                // Copy it out before the slot can be reused.
                let message = (*ring).slots[head].load();
                (*ring).head = (head + 1) % self.capacity;
                message
            }
        };
        self.empty.post()?; // one more free slot for the producers
        Ok(message)
    }
    // ANCHOR_END: take
}
// ANCHOR_END: new
