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
//! Read chapter 7 of the book first; `cargo lab hint 7` helps when stuck.
//!
//! nix has no binding for POSIX semaphores: call `libc::sem_*` directly,
//! inside `unsafe` blocks, here and nowhere else. After a failed call,
//! `nix::errno::Errno::last()` tells why.

use std::ffi::CString;

use anyhow::Result;

pub mod given;

use given::Shared;

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
// The starter does not use the fields yet; your code will.
#[allow(dead_code)]
pub struct Semaphore {
    sem: *mut libc::sem_t,
    kind: Kind,
}

#[allow(dead_code)]
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

impl Semaphore {
    /// Creates the named semaphore `name` (`/something`) with `value` units.
    /// Fails if it exists already. Dropping the result unlinks the name.
    pub fn create(name: &str, value: u32) -> Result<Semaphore> {
        // TODO: `libc::sem_open(cname.as_ptr(), O_CREAT | O_EXCL, 0o600 as
        // c_uint, value as c_uint)` with `cname = CString::new(name)?`. It
        // returns `libc::SEM_FAILED` on failure (errno says why: EEXIST if
        // the name is taken). Remember to unlink by this process: `given::me()`.
        let _ = (name, value);
        todo!("Semaphore::create: sem_open with O_CREAT | O_EXCL")
    }

    /// Opens the existing named semaphore `name`. Dropping it closes it.
    pub fn open(name: &str) -> Result<Semaphore> {
        // TODO: `libc::sem_open(cname.as_ptr(), 0)`; this handle never unlinks.
        let _ = name;
        todo!("Semaphore::open: sem_open of an existing name")
    }

    /// Makes an unnamed semaphore with `value` units, in memory shared with
    /// every child this process forks afterwards.
    pub fn shared(value: u32) -> Result<Semaphore> {
        // TODO: map a `Shared::<libc::sem_t>::zeroed()`, then
        // `libc::sem_init(memory.as_ptr(), 1, value)`: pshared = 1, since
        // several processes use it. Keep the mapping inside the Semaphore.
        let _ = value;
        todo!("Semaphore::shared: sem_init with pshared = 1 in shared memory")
    }

    /// Takes one unit, blocking while there is none.
    pub fn wait(&self) -> Result<()> {
        // TODO: `libc::sem_wait(self.sem)`; on -1, call it again if errno
        // is EINTR (a signal handler ran), otherwise fail.
        todo!("Semaphore::wait: sem_wait, again on EINTR")
    }

    /// Takes one unit if there is one, without blocking: `Ok(false)` if the
    /// count was zero.
    pub fn try_wait(&self) -> Result<bool> {
        // TODO: `libc::sem_trywait(self.sem)`: EAGAIN means "zero", not an error.
        todo!("Semaphore::try_wait: sem_trywait, EAGAIN is Ok(false)")
    }

    /// Gives one unit back, waking one waiter if there is one.
    pub fn post(&self) -> Result<()> {
        // TODO: `libc::sem_post(self.sem)`.
        todo!("Semaphore::post: sem_post")
    }

    /// Waits for a unit and returns a [`Permit`] that posts it back when
    /// dropped, even on an early return with `?`.
    pub fn acquire(&self) -> Result<Permit<'_>> {
        // TODO: wait, then return `Permit { sem: self }`.
        todo!("Semaphore::acquire: wait, then a Permit")
    }

    /// Like [`acquire`](Semaphore::acquire), without blocking: `None` if
    /// no unit is free.
    pub fn try_acquire(&self) -> Result<Option<Permit<'_>>> {
        // TODO: try_wait; a Permit if it took a unit.
        todo!("Semaphore::try_acquire: try_wait, then maybe a Permit")
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // TODO: a named semaphore: `sem_close`, then `sem_unlink(name)` if
        // this process is `unlink_by`. An unnamed one: `sem_destroy` in the
        // process that made it (the memory is unmapped after this runs).
        todo!("Drop for Semaphore: close, unlink or destroy")
    }
}

/// One unit of a semaphore, held: posted back when dropped.
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // TODO: post the semaphore. Drop cannot return an error: print it.
        let _ = self.sem;
        todo!("Drop for Permit: post the semaphore")
    }
}

/// Runs `jobs` print jobs, each in a child process of its own, all started
/// at once, with only `printers` printers: never more than `printers` jobs
/// print (call [`given::print`]) at the same time. Waits for every job.
pub fn printer_pool(jobs: usize, printers: u32) -> Result<()> {
    // TODO: one shared semaphore with a unit per printer; start every job
    // with `given::start_fallible` (the child acquires a printer, then calls
    // `given::print(job)`); finally `given::join_all` the pids.
    let _ = (jobs, printers);
    todo!("printer_pool: a semaphore of printers, one child per job")
}

/// The most messages a [`BoundedBuffer`] can hold.
pub const MAX_CAPACITY: usize = 64;
/// The longest message, in bytes.
pub const MESSAGE_MAX: usize = 64;

/// One message, in place.
#[allow(dead_code)]
#[repr(C)]
struct Slot {
    len: usize,
    bytes: [u8; MESSAGE_MAX],
}

/// The ring of slots, in shared memory. Messages are in
/// `slots[head], slots[head + 1], ...` (wrapping around), `tail` is the
/// next slot to fill.
#[allow(dead_code)]
#[repr(C)]
struct Ring {
    head: usize,
    tail: usize,
    slots: [Slot; MAX_CAPACITY],
}

/// A queue of at most `capacity` short messages, shared by the processes
/// forked after it was made.
#[allow(dead_code)]
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

// Until `put` and `take` call them, these are unused.
#[allow(dead_code)]
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

impl BoundedBuffer {
    /// An empty buffer for at most `capacity` messages (1 to [`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Result<BoundedBuffer> {
        // TODO: check the capacity; three shared semaphores (how many units
        // does each start with?) and a zeroed `Shared<Ring>`.
        let _ = capacity;
        todo!("BoundedBuffer::new: three semaphores and a shared ring")
    }

    /// Adds `message` (at most [`MESSAGE_MAX`] bytes) at the tail, waiting
    /// while the buffer is full.
    pub fn put(&self, message: &str) -> Result<()> {
        // TODO: check the length; wait for a free slot; under the mutex,
        // copy the bytes into the slot at `tail` with `Slot::store` and move
        // `tail` on (through `self.ring.as_ptr()`, in `unsafe`); then post
        // that there is one more message.
        let _ = message;
        todo!("BoundedBuffer::put: empty, mutex, write, full")
    }

    /// Removes the message at the head, waiting while the buffer is empty.
    pub fn take(&self) -> Result<String> {
        // TODO: the mirror image of put. Copy the message out of the slot
        // (`Slot::load`) before you let go of the mutex.
        todo!("BoundedBuffer::take: full, mutex, read, empty")
    }
}
